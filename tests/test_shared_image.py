"""``conform --listen``'s shared-memory checks (`live/shared_image.py`) and the tables its
listeners and bus objects come from (`live/listen.py`), without a bus: real memfds, real
descriptors, and the work counted in lines of Python run.

A peer can shrink the memfd it passed with ``ScanoutMap`` (QEMU's is sealed only against further
sealing); a client that reads the surface through a mapping then dies of SIGBUS.  These tests read
after shrinking: if anything read through a mapping, the test process itself would die.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from jeepney import DBusAddress, new_method_call

from sphinxext_qemudbus.live.listen import (
    BUS_OBJECTS,
    CLIENT,
    CLIPBOARD,
    CLIPBOARD_PATH,
    LISTENER,
    LISTENER_MAP,
    REGISTRATIONS,
    Target,
    bus_object,
    served_object,
    targets_of,
)
from sphinxext_qemudbus.live.message import ERROR, METHOD_RETURN, read_message
from sphinxext_qemudbus.live.served import answer
from sphinxext_qemudbus.live.shared_image import (
    MAX_IMAGE,
    PixelBudget,
    PlainImage,
    SharedImage,
    _rows_differing,
    _write_rows,
    pack_rows,
    same_pixels,
)
from sphinxext_qemudbus.live.traffic import TrafficCheck
from sphinxext_qemudbus.model.registry import Registry
from sphinxext_qemudbus.model.releases import parse_release

from .helpers import count_work

ROOT = Path(__file__).resolve().parent.parent
XRGB8888 = 0x20020888


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@contextmanager
def surface(pixels: bytes) -> Iterator[int]:
    """A memfd holding ``pixels``, as QEMU passes one (the caller's copy is closed at the end)."""
    fd = os.memfd_create("pixman")
    os.write(fd, pixels)
    try:
        yield fd
    finally:
        os.close(fd)


def image(width: int, height: int, seed: int = 0) -> bytes:
    return bytes((seed + i * 7) % 256 for i in range(width * 4 * height))


# --- copying and comparing rows ---------------------------------------------------------------


def packed_by_hand(source: bytes, stride: int, row: int, height: int) -> bytes:
    return b"".join(source[y * stride : y * stride + row] for y in range(height))


@given(st.integers(1, 12), st.integers(0, 6), st.integers(0, 20), st.data())
@example(row=4, padding=4, height=20, data=None)  # taller than wide: copied by columns
@example(row=12, padding=0, height=3, data=None)  # tightly packed: one copy
def test_rows_are_packed_and_written_back_as_by_hand(row: int, padding: int, height: int, data: st.DataObject) -> None:
    stride = row + padding
    source = bytes((i * 31 + 5) % 256 for i in range(stride * height))
    packed = pack_rows(source, stride, row, height)
    assert bytes(packed) == packed_by_hand(source, stride, row, height)
    target = bytearray(stride * height)
    _write_rows(target, 0, stride, packed, row, height)
    assert packed_by_hand(bytes(target), stride, row, height) == bytes(packed)
    if data is not None and height:
        other = bytearray(packed)
        changed = data.draw(st.sets(st.integers(0, height - 1)))
        for y in changed:
            other[y * row] ^= 0xFF
        assert _rows_differing(packed, other, row, height) == len(changed)


def test_copying_and_comparing_rows_costs_the_smaller_side() -> None:
    """A hostile 1-pixel-wide surface of a million rows costs no more Python steps than a square
    one: rows are copied and compared by the shorter of their two sides."""
    row, stride = 4, 8

    def packing(height: int) -> int:
        source = bytes(stride * height)
        return count_work(lambda: pack_rows(source, stride, row, height))

    def comparing(height: int) -> int:
        first, second = bytes(row * height), b"\x01" * (row * height)
        return count_work(lambda: _rows_differing(first, second, row, height))

    assert packing(1 << 20) == packing(1 << 10) < 50
    assert comparing(1 << 20) == comparing(1 << 10) < 50


# --- the shared surface -----------------------------------------------------------------------


def test_a_scanout_map_keeps_its_descriptor_and_closes_the_one_it_replaces() -> None:
    before = open_fds()
    shared = SharedImage()
    with surface(image(64, 32)) as first, surface(image(64, 32)) as second:
        assert shared.scanout(os.dup(first), 0, 64, 32, 256, XRGB8888) == []
        assert shared.kind == "memfd"
        assert open_fds() == before + 3  # two memfds and the one kept
        assert shared.scanout(os.dup(second), 0, 64, 32, 256, XRGB8888) == []
        assert open_fds() == before + 3  # the first one kept was closed
    shared.close()
    assert open_fds() == before


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (os.pipe, "ScanoutMap passed a pipe, not a regular file or memfd"),
        (lambda: (os.memfd_create("small"),), "file holds 0 bytes; offset 0 + stride 256 x height 32 is 8192"),
        (lambda: (os.memfd_create("stride 0"),), "ScanoutMap has stride 0, less than width 64 x 4 bytes"),
    ],
)
def test_a_descriptor_that_cannot_be_used_is_closed_at_once(make: object, words: str) -> None:
    before = open_fds()
    made = make()  # type: ignore[operator]
    shared = SharedImage()
    stride = 0 if "stride 0" in words else 256
    problems = shared.scanout(made[0], 0, 64, 32, stride, XRGB8888)
    assert any(words in problem for problem in problems), problems
    assert shared.fd == -1
    for extra in made[1:]:
        os.close(extra)
    assert open_fds() == before


def test_a_shrunk_surface_is_a_finding_not_a_sigbus() -> None:
    shared, plain = SharedImage(), PlainImage()
    pixels = image(64, 32)
    plain.scanout(64, 32, 256, XRGB8888, pixels)
    with surface(pixels) as fd:
        assert shared.scanout(os.dup(fd), 0, 64, 32, 256, XRGB8888) == []
        assert same_pixels(shared, plain) is None
        os.ftruncate(fd, 100)  # what a hostile peer may do to QEMU's memfd, or to a client's
        difference = same_pixels(shared, plain)
    assert difference is not None
    assert "the shared surface shrank to 100 bytes after ScanoutMap (it spans 8192)" in difference
    assert shared.shrunk() == difference
    shared.close()


def test_pixels_are_compared_row_by_row() -> None:
    shared, plain = SharedImage(), PlainImage()
    pixels = image(640, 480, seed=3)
    plain.scanout(640, 480, 640 * 4, XRGB8888, pixels)
    changed = bytearray(pixels)
    for y in (0, 17, 479):
        changed[y * 640 * 4 + 5] ^= 1
    with surface(bytes(changed)) as fd:
        shared.scanout(os.dup(fd), 0, 640, 480, 640 * 4, XRGB8888)
    assert same_pixels(shared, plain) == "3 of 480 rows of the mapped surface differ from the plain listener's image"
    # The plain listener draws an update over the three rows: now they agree.
    plain.update(0, 0, 640, 480, 640 * 4, bytes(changed), None)
    assert same_pixels(shared, plain) is None
    shared.close()


def test_update_map_outside_the_surface() -> None:
    shared = SharedImage()
    assert shared.update(0, 0, 8, 8) == ["UpdateMap arrived before any ScanoutMap"]
    with surface(image(64, 32)) as fd:
        shared.scanout(os.dup(fd), 0, 64, 32, 256, XRGB8888)
    assert shared.update(0, 0, 64, 32) == []
    (outside,) = shared.update(60, 0, 8, 8)
    assert "lies outside the mapped surface (64x32)" in outside
    assert shared.updates_outside == 1
    shared.close()


# --- the plain images: bounded one by one and together ------------------------------------------


def test_the_plain_images_of_a_run_share_one_bound() -> None:
    budget = PixelBudget(limit=3 * 64 * 32 * 4)
    images = [PlainImage(budget) for _ in range(4)]
    for plain in images:
        plain.scanout(64, 32, 256, XRGB8888, image(64, 32))
    assert [bool(plain.pixels) for plain in images] == [True, True, True, False]
    assert "the plain images held reached the run's bound" in images[3].dropped
    images[0].close()  # a listener gone: its room is free again
    images[3].scanout(64, 32, 256, XRGB8888, image(64, 32))
    assert images[3].pixels
    assert not images[3].dropped
    huge = PlainImage()
    huge.scanout(1, 1, 4, XRGB8888, b"\0" * 4)
    huge.update(0, 0, 1, 1, 4, b"\0" * 4, (MAX_IMAGE, 2))  # a console size past the bound
    assert "over the bound" in huge.dropped
    assert budget.held == 3 * 64 * 32 * 4


# --- the tables: listeners and bus objects ---------------------------------------------------------


def check_at(release: str) -> TrafficCheck:
    return TrafficCheck(Registry.load([ROOT / "interfaces"]), parse_release(release), "unix")


def test_each_object_gets_the_registrations_its_interfaces_offer() -> None:
    objects = [
        ("/org/qemu/Display1/Console_0", ("org.qemu.Display1.Console",)),
        ("/org/qemu/Display1/Audio", ("org.qemu.Display1.Audio",)),
        (CLIPBOARD_PATH, (CLIPBOARD,)),
        ("/org/qemu/Display1/Other/Clipboard", (CLIPBOARD,)),  # not where a client's clipboard is served
    ]
    found = [(target.kind, target.label) for target in targets_of(iter(objects))]
    assert found == [
        ("display", "Console_0 display"),
        ("display-map", "Console_0 display-map"),
        ("audio-out", "Audio audio-out"),
        ("audio-in", "Audio audio-in"),
        (CLIENT, "clipboard client"),
    ]
    assert Target("display-map", "/org/qemu/Display1/Console_0").twin_label() == "Console_0 display"


@pytest.mark.parametrize(("release", "map_listener"), [("9.1", False), ("9.2", True)])
def test_the_map_listener_exists_only_where_the_release_has_its_interface(release: str, map_listener: bool) -> None:
    check = check_at(release)
    map_entry, plain_entry = REGISTRATIONS["display-map"], REGISTRATIONS["display"]
    served = served_object(check, map_entry.path, map_entry.served, map_entry.whole)
    assert (served is not None) == map_listener
    if served is not None:
        assert served.values[(LISTENER, "Interfaces")] == [LISTENER_MAP]  # what QEMU reads to choose
    plain = served_object(check, plain_entry.path, plain_entry.served)
    assert plain is not None
    assert plain.values[(LISTENER, "Interfaces")] == []


def test_the_clipboard_client_answers_as_a_client_with_an_empty_clipboard() -> None:
    served = bus_object(check_at("10.0"), CLIPBOARD_PATH)
    assert served is not None
    objects = {CLIPBOARD_PATH: served}

    def call(member: str, signature: str = "", body: tuple[object, ...] = ()) -> object:
        outgoing = new_method_call(DBusAddress(CLIPBOARD_PATH, ":1.7", CLIPBOARD), member, signature, body)
        return read_message(outgoing.serialise(serial=7))

    request = answer(objects, call("Request", "uas", (0, ["text/plain"])))
    assert request.header.message_type.value == ERROR
    assert request.body == ("Empty clipboard",)
    release = answer(objects, call("Release", "u", (0,)))
    assert release.header.message_type.value == METHOD_RETURN
    entry = BUS_OBJECTS[CLIPBOARD_PATH]
    assert [made.member for made in entry.calls] == ["Register", "Grab", "Release"]
    assert entry.farewell is not None
    assert entry.farewell.member == "Unregister"
