"""``conform --listen`` and ``org.qemu.Display1.Listener.Unix.Map``: the console image in shared
memory, checked as a careful client uses it.

A Map listener gets the file descriptor of the console surface with ``ScanoutMap`` (once per
surface) and damaged rectangles with ``UpdateMap``.  `SharedImage` checks what it is given: the
descriptor is a regular file (QEMU passes a memfd) large enough for ``offset + stride * height``,
it can be mapped read-only, every ``UpdateMap`` lies inside the surface of the latest
``ScanoutMap`` (a surface change without a new ``ScanoutMap`` shows as an update outside it).

The pixels are compared with those a plain listener on the same console receives in
``Scanout``/``Update`` (`PlainImage`), when both are at rest (`same_pixels`).  They are read with
``pread`` on the descriptor, not through the mapping: the memfd is not sealed against shrinking,
and a peer that shrinks it while a client reads a mapping kills the client with SIGBUS, as it kills
QEMU (the registry's trust notes say so).  Everything here is bounded: an image larger than
`MAX_IMAGE` bytes is checked for its sizes and not compared.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import stat
from dataclasses import dataclass, field

#: The largest image (stride * height) whose pixels are kept or compared.
MAX_IMAGE = 64 << 20


def bytes_per_pixel(pixman_format: int) -> int:
    """A pixman format code keeps bits per pixel in its top byte (``PIXMAN_FORMAT_BPP``)."""
    return (((pixman_format >> 24) & 0xFF) + 7) // 8


@dataclass
class SharedImage:
    """The latest ``ScanoutMap`` of one Map listener: its descriptor (a duplicate, owned here)
    and geometry, and what was seen."""

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

    def scanout(self, fd: int, offset: int, width: int, height: int, stride: int, pixman_format: int) -> list[str]:
        """Take a ``ScanoutMap``: check the descriptor and map it read-only; what is wrong."""
        self.close()
        self.scanouts += 1
        self.offset, self.width, self.height, self.stride, self.pixman_format = (
            offset,
            width,
            height,
            stride,
            pixman_format,
        )
        problems = []
        try:
            info = os.fstat(fd)
        except OSError as error:
            return [f"ScanoutMap's descriptor cannot be examined: {error.strerror}"]
        self.kind = _kind(fd, info)
        if not stat.S_ISREG(info.st_mode):
            return [f"ScanoutMap passed a {self.kind}, not a regular file or memfd"]
        if stride < width * bytes_per_pixel(pixman_format):
            problems.append(
                f"ScanoutMap has stride {stride}, less than width {width} x {bytes_per_pixel(pixman_format)} bytes"
            )
        needed = offset + stride * height
        if needed > info.st_size:
            problems.append(
                f"ScanoutMap's file holds {info.st_size} bytes; offset {offset} + stride {stride} x height {height} is {needed}"
            )
            return problems
        if info.st_size:
            try:
                mapped = mmap.mmap(fd, info.st_size, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ)
            except (OSError, ValueError) as error:
                problems.append(f"ScanoutMap's descriptor cannot be mapped read-only: {error}")
            else:
                mapped.close()
        self.seals = _seals(fd)
        self.fd = os.dup(fd)
        return problems

    def update(self, x: int, y: int, width: int, height: int) -> list[str]:
        """Take an ``UpdateMap``: it must lie inside the latest ``ScanoutMap``'s surface."""
        self.updates += 1
        if self.fd < 0 and not self.scanouts:
            return ["UpdateMap arrived before any ScanoutMap"]
        inside = x >= 0 and y >= 0 and width >= 0 and height >= 0
        if inside and x + width <= self.width and y + height <= self.height:
            return []
        self.updates_outside += 1
        return [
            f"UpdateMap ({x},{y} {width}x{height}) lies outside the mapped surface ({self.width}x{self.height}): "
            "the surface changed without a new ScanoutMap"
        ]

    def rows(self) -> list[bytes] | None:
        """The image's pixels, row by row (``width`` pixels each), read with ``pread``; None when
        it is too large to compare or cannot be read."""
        if self.fd < 0 or self.stride * self.height > MAX_IMAGE:
            return None
        row = self.width * bytes_per_pixel(self.pixman_format)
        try:
            out = [os.pread(self.fd, row, self.offset + y * self.stride) for y in range(self.height)]
        except OSError:
            return None
        return out if all(len(data) == row for data in out) else None

    def close(self) -> None:
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = -1


@dataclass
class PlainImage:
    """A plain listener's image, drawn from ``Scanout`` and ``Update`` as a client draws it."""

    width: int = 0
    height: int = 0
    pixman_format: int = 0
    pixels: bytearray = field(default_factory=bytearray)  # tightly packed rows

    def scanout(self, width: int, height: int, stride: int, pixman_format: int, data: bytes) -> None:
        bpp = bytes_per_pixel(pixman_format)
        if width * bpp * height > MAX_IMAGE or stride < width * bpp or len(data) < stride * height:
            self.pixels = bytearray()
            return
        self.width, self.height, self.pixman_format = width, height, pixman_format
        row = width * bpp
        self.pixels = bytearray(b"".join(data[y * stride : y * stride + row] for y in range(height)))

    def update(
        self, x: int, y: int, width: int, height: int, stride: int, data: bytes, size: tuple[int, int] | None
    ) -> None:
        """Draw an update; ``size`` is the console's size when it changed without a Scanout (the
        image is then resized, as the registry tells clients to)."""
        bpp = bytes_per_pixel(self.pixman_format)
        if size is not None and size != (self.width, self.height) and size[0] * bpp * size[1] <= MAX_IMAGE:
            self.width, self.height = size
            self.pixels = bytearray(size[0] * bpp * size[1])
        inside = x >= 0 and y >= 0 and width >= 0 and height >= 0
        if not self.pixels or not inside or x + width > self.width or y + height > self.height:
            return
        if stride < width * bpp or len(data) < stride * height:
            return
        row, full = width * bpp, self.width * bpp
        for line in range(height):
            start = (y + line) * full + x * bpp
            self.pixels[start : start + row] = data[line * stride : line * stride + row]

    def rows(self) -> list[bytes] | None:
        if not self.pixels:
            return None
        full = self.width * bytes_per_pixel(self.pixman_format)
        return [bytes(self.pixels[y * full : (y + 1) * full]) for y in range(self.height)]


def same_pixels(shared: SharedImage, plain: PlainImage) -> str | None:
    """None when both images have the same size and pixels; else how they differ."""
    if (shared.width, shared.height) != (plain.width, plain.height):
        return f"the mapped surface is {shared.width}x{shared.height}, the plain listener's image {plain.width}x{plain.height}"
    if shared.pixman_format != plain.pixman_format:
        return (
            f"the mapped surface has pixel format {shared.pixman_format:#x}, the plain image {plain.pixman_format:#x}"
        )
    mapped, drawn = shared.rows(), plain.rows()
    if mapped is None or drawn is None:
        return "the images could not be read or are too large to compare"
    differing = sum(1 for a, b in zip(mapped, drawn) if a != b)
    if differing:
        return f"{differing} of {shared.height} rows of the mapped surface differ from the plain listener's image"
    return None


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
