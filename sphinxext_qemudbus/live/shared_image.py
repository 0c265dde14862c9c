"""``conform --listen`` and ``org.qemu.Display1.Listener.Unix.Map``: the console image in shared
memory, checked as a careful client uses it.

A Map listener gets the file descriptor of the console surface with ``ScanoutMap`` (once per
surface) and damaged rectangles with ``UpdateMap``.  `SharedImage` checks what it is given: the
descriptor is a regular file (QEMU passes a memfd) large enough for ``offset + stride * height``,
it can be mapped read-only, every ``UpdateMap`` lies inside the surface of the latest
``ScanoutMap`` (a surface change without a new ``ScanoutMap`` shows as an update outside it).

The pixels are compared with those a plain listener on the same console receives in
``Scanout``/``Update`` (`PlainImage`), when both are at rest (`same_pixels`).  They are read with
``pread`` on the descriptor, never through a mapping: the memfd is not sealed against shrinking,
and a peer that shrinks it while a client reads a mapping kills the client with SIGBUS, as it kills
QEMU (the registry's trust notes say so).  A shrunk file is a finding, and costs the tool nothing.

Everything here is bounded: an image larger than `MAX_IMAGE` bytes is checked for its sizes and
not compared; the plain images of one run hold at most `MAX_PIXELS_HELD` bytes together
(`PixelBudget`); copying rows takes at most as many steps as the smaller of an image's row length
and its height (`pack_rows`), so a hostile 1-pixel-wide image of millions of rows costs no more
than a square one of the same size.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import stat
from dataclasses import dataclass, field
from typing import Union

#: The largest image (stride * height) whose pixels are kept or compared.
MAX_IMAGE = 64 << 20
#: Bytes of pixels the plain images of one run hold at once (a peer may export many consoles).
MAX_PIXELS_HELD = 128 << 20
#: Bytes read from a shared surface with one ``pread`` when comparing.
_READ_CHUNK = 1 << 20

Pixels = Union[bytes, bytearray, memoryview]


def bytes_per_pixel(pixman_format: int) -> int:
    """A pixman format code keeps bits per pixel in its top byte (``PIXMAN_FORMAT_BPP``)."""
    return (((pixman_format >> 24) & 0xFF) + 7) // 8


def pack_rows(source: Pixels, stride: int, row: int, height: int) -> bytearray:
    """``height`` rows of ``row`` bytes that lie ``stride`` bytes apart in ``source``, packed
    together (the caller has checked that ``source`` holds them), in at most min(height, row)
    steps: row by row, or byte column by byte column."""
    view = memoryview(source)
    if stride == row or height <= 1:
        return bytearray(view[: row * height])
    packed = bytearray(row * height)
    if height <= row:
        for y in range(height):
            packed[y * row : (y + 1) * row] = view[y * stride : y * stride + row]
    else:
        last = stride * (height - 1)
        for x in range(row):
            packed[x::row] = view[x : x + last + 1 : stride]
    return packed


def _write_rows(target: bytearray, start: int, stride: int, packed: Pixels, row: int, height: int) -> None:
    """Write ``height`` packed rows of ``row`` bytes into ``target`` at ``start``, ``stride`` bytes
    apart: the inverse of `pack_rows`, in as few steps."""
    if stride == row or height <= 1:
        target[start : start + row * height] = packed
        return
    view = memoryview(packed)
    if height <= row:
        for y in range(height):
            target[start + y * stride : start + y * stride + row] = view[y * row : (y + 1) * row]
    else:
        last = stride * (height - 1)
        for x in range(row):
            target[start + x : start + x + last + 1 : stride] = view[x::row]


class PixelBudget:
    """The bytes of pixels the plain images of one run hold together."""

    def __init__(self, limit: int = MAX_PIXELS_HELD) -> None:
        self.limit = limit
        self.held = 0

    def resize(self, old: int, new: int) -> bool:
        """Let an image go from ``old`` to ``new`` bytes, if that stays within the bound."""
        if new > old and self.held - old + new > self.limit:
            return False
        self.held += new - old
        return True


@dataclass
class SharedImage:
    """The latest ``ScanoutMap`` of one Map listener: its descriptor (owned here) and geometry,
    and what was seen."""

    fd: int = -1
    offset: int = 0
    width: int = 0
    height: int = 0
    stride: int = 0
    pixman_format: int = 0
    #: What the latest descriptor was: "memfd", "regular file", or what else it was.
    kind: str = ""
    seals: int | None = None
    scanouts: int = 0
    updates: int = 0
    updates_outside: int = 0
    #: Findings about this listener (its descriptors, rectangles, flags, pixels).
    problems: int = 0
    #: Something changed since the pixels were last compared.
    changed: bool = False

    def scanout(self, fd: int, offset: int, width: int, height: int, stride: int, pixman_format: int) -> list[str]:
        """Take a ``ScanoutMap`` and its descriptor ``fd`` (owned here from now on: kept while it
        can be compared, else closed): check it, and that it maps read-only; what is wrong."""
        self.close()
        self.scanouts += 1
        self.changed = True
        self.offset, self.width, self.height, self.stride = offset, width, height, stride
        self.pixman_format = pixman_format
        problems = self._examine(fd)
        if self.fd != fd:
            _close(fd)
        return problems

    def _examine(self, fd: int) -> list[str]:
        try:
            info = os.fstat(fd)
        except OSError as error:
            return [f"ScanoutMap's descriptor cannot be examined: {error.strerror}"]
        self.kind = _kind(fd, info)
        if not stat.S_ISREG(info.st_mode):
            return [f"ScanoutMap passed a {self.kind}, not a regular file or memfd"]
        bpp = bytes_per_pixel(self.pixman_format)
        if self.stride < self.width * bpp:
            return [f"ScanoutMap has stride {self.stride}, less than width {self.width} x {bpp} bytes"]
        needed = self.needed
        if needed > info.st_size:
            return [
                f"ScanoutMap's file holds {info.st_size} bytes; offset {self.offset} + stride {self.stride} x "
                f"height {self.height} is {needed}"
            ]
        problems = []
        if info.st_size:
            # Mapped to show that a client can map it read-only, and unmapped at once: nothing is
            # ever read through the mapping (a shrunk file would kill the reader with SIGBUS).
            try:
                mapped = mmap.mmap(fd, info.st_size, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ)
            except (OSError, ValueError, OverflowError) as error:
                problems.append(f"ScanoutMap's descriptor cannot be mapped read-only: {error}")
            else:
                mapped.close()
        self.seals = _seals(fd)
        self.fd = fd
        return problems

    @property
    def needed(self) -> int:
        """The bytes the surface spans in its file: ``offset + stride * height``."""
        return self.offset + self.stride * self.height

    def update(self, x: int, y: int, width: int, height: int) -> list[str]:
        """Take an ``UpdateMap``: it must lie inside the latest ``ScanoutMap``'s surface."""
        self.updates += 1
        self.changed = True
        if not self.scanouts:
            return ["UpdateMap arrived before any ScanoutMap"]
        inside = x >= 0 and y >= 0 and width >= 0 and height >= 0
        if inside and x + width <= self.width and y + height <= self.height:
            return []
        self.updates_outside += 1
        return [
            f"UpdateMap ({x},{y} {width}x{height}) lies outside the mapped surface ({self.width}x{self.height}): "
            "the surface changed without a new ScanoutMap"
        ]

    def shrunk(self) -> str | None:
        """How the file shrank below the surface since ``ScanoutMap``, or None."""
        try:
            size = os.fstat(self.fd).st_size
        except OSError as error:
            return f"the shared surface cannot be examined any more: {error.strerror}"
        if size >= self.needed:
            return None
        return (
            f"the shared surface shrank to {size} bytes after ScanoutMap (it spans {self.needed}): a client "
            "reading it through a mapping would have been killed by SIGBUS"
        )

    def close(self) -> None:
        if self.fd >= 0:
            _close(self.fd)
            self.fd = -1


@dataclass
class PlainImage:
    """A plain listener's image, drawn from ``Scanout`` and ``Update`` as a client draws it, its
    pixels counted in the run's ``budget``."""

    budget: PixelBudget = field(default_factory=PixelBudget)
    width: int = 0
    height: int = 0
    pixman_format: int = 0
    pixels: bytearray = field(default_factory=bytearray)  # tightly packed rows
    #: Why no image is kept, when one was sent but could not be (it is then not compared).
    dropped: str = ""
    #: Something changed since the pixels were last compared.
    changed: bool = False

    def scanout(self, width: int, height: int, stride: int, pixman_format: int, data: Pixels) -> None:
        self.changed = True
        bpp = bytes_per_pixel(pixman_format)
        row = width * bpp
        if stride < row or len(data) < stride * height:
            self._keep(0, 0, pixman_format, "")  # the traffic check reports such a Scanout
            return
        if self._keep(width, height, pixman_format, ""):
            self.pixels = pack_rows(data, stride, row, height)

    def update(
        self, x: int, y: int, width: int, height: int, stride: int, data: Pixels, size: tuple[int, int] | None
    ) -> None:
        """Draw an update; ``size`` is the console's size when it changed without a Scanout (the
        image is then resized, as the registry tells clients to)."""
        self.changed = True
        bpp = bytes_per_pixel(self.pixman_format)
        if size is not None and size != (self.width, self.height):
            self._keep(size[0], size[1], self.pixman_format, "")
        inside = x >= 0 and y >= 0 and width >= 0 and height >= 0
        if not self.pixels or not inside or x + width > self.width or y + height > self.height:
            return
        row = width * bpp
        if stride < row or len(data) < stride * height or not row:
            return
        packed = pack_rows(data, stride, row, height)
        full = self.width * bpp
        _write_rows(self.pixels, y * full + x * bpp, full, packed, row, height)

    def _keep(self, width: int, height: int, pixman_format: int, reason: str) -> bool:
        """Make room for a ``width`` x ``height`` image, within the bounds; whether it fits."""
        size = width * bytes_per_pixel(pixman_format) * height
        self.width, self.height, self.pixman_format = width, height, pixman_format
        if size > MAX_IMAGE:
            reason = f"an image of {size} bytes, over the bound of {MAX_IMAGE}"
        elif not self.budget.resize(len(self.pixels), size):
            reason = f"the plain images held reached the run's bound of {self.budget.limit >> 20} MiB"
        if reason:
            self.close()
            self.dropped = reason
            return False
        self.pixels = bytearray(size)
        self.dropped = ""
        return True

    def close(self) -> None:
        self.budget.resize(len(self.pixels), 0)
        self.pixels = bytearray()


def same_pixels(shared: SharedImage, plain: PlainImage) -> str | None:
    """None when both images have the same size and pixels; else how they differ.  The shared
    surface is read with ``pread``, a few rows at a time."""
    shrunk = shared.shrunk()
    if shrunk is not None:
        return shrunk
    if (shared.width, shared.height) != (plain.width, plain.height):
        return f"the mapped surface is {shared.width}x{shared.height}, the plain listener's image {plain.width}x{plain.height}"
    if shared.pixman_format != plain.pixman_format:
        return (
            f"the mapped surface has pixel format {shared.pixman_format:#x}, the plain image {plain.pixman_format:#x}"
        )
    if shared.stride * shared.height > MAX_IMAGE:
        return "the images are too large to compare"
    row = shared.width * bytes_per_pixel(shared.pixman_format)
    if not row or not shared.height:
        return None
    if shared.stride < row:  # never kept so (`SharedImage.scanout`): rows that overlap are no image
        return f"the mapped surface's stride {shared.stride} is less than its rows of {row} bytes"
    drawn = memoryview(plain.pixels)
    rows = max(1, _READ_CHUNK // max(shared.stride, 1))
    differing = 0
    for first in range(0, shared.height, rows):
        count = min(rows, shared.height - first)
        span = shared.stride * (count - 1) + row
        try:
            data = os.pread(shared.fd, span, shared.offset + first * shared.stride)
        except OSError as error:
            return f"the shared surface cannot be read: {error.strerror}"
        if len(data) < span:
            return shared.shrunk() or "the shared surface could not be read whole"
        mapped = pack_rows(data, shared.stride, row, count)
        expected = drawn[first * row : (first + count) * row]
        if mapped != expected:
            differing += _rows_differing(mapped, expected, row, count)
    if differing:
        return f"{differing} of {shared.height} rows of the mapped surface differ from the plain listener's image"
    return None


def _rows_differing(first: Pixels, second: Pixels, row: int, count: int) -> int:
    """How many of ``count`` packed rows of ``row`` bytes differ between two buffers, in at most
    min(count, row) steps: row by row, or by the byte columns of their difference taken together
    (a row differs where any of its bytes does)."""
    if count <= row:
        return sum(1 for y in range(count) if first[y * row : (y + 1) * row] != second[y * row : (y + 1) * row])
    size = row * count
    difference = (int.from_bytes(first, "little") ^ int.from_bytes(second, "little")).to_bytes(size, "little")
    rows = 0
    for x in range(row):
        rows |= int.from_bytes(difference[x::row], "little")
    return count - rows.to_bytes(count, "little").count(0)


def _close(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)


def _kind(fd: int, info: os.stat_result) -> str:
    if stat.S_ISREG(info.st_mode):
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/self/fd/{fd}").startswith("/memfd:"):
                return "memfd"
        return "regular file"
    for test, name in ((stat.S_ISSOCK, "socket"), (stat.S_ISFIFO, "pipe"), (stat.S_ISCHR, "character device")):
        if test(info.st_mode):
            return name
    return "descriptor of another kind"


# fcntl's F_GET_SEALS (Linux 3.17): Python names it from 3.8 on Linux only.
def _seals(fd: int) -> int | None:
    import fcntl

    get_seals = getattr(fcntl, "F_GET_SEALS", None)
    if get_seals is None:
        return None
    try:
        return int(fcntl.fcntl(fd, get_seals))
    except OSError:
        return None


SEAL_NAMES = {0x1: "seal", 0x2: "shrink", 0x4: "grow", 0x8: "write", 0x10: "future write"}


def seals_text(seals: int | None) -> str:
    """``sealed against seal`` (QEMU's memfd: against further sealing only), or ``not sealed``."""
    if seals is None:
        return "seals unknown"
    names = [name for bit, name in SEAL_NAMES.items() if seals & bit]
    return f"sealed against {', '.join(names)}" if names else "not sealed"
