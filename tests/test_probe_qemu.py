"""``qemu-dbus probe --launch`` against the real QEMU releases (7.2 and 10.0.2), kept short.

Each test probes a few members, each launched QEMU dying and being relaunched for real: the
crashes the full runs record (``interfaces/probe-results.json``) must come out with the
threshold the release has.  QEMU's ``InputButton`` enumeration has 9 values up to 8.0 and 10 from
8.1 (``touch``), and ``qemu_input_event_trace`` looks every button up in it
(``qapi_enum_lookup`` asserts); the clipboard's ``Release`` handler passes the selection to
``qemu_clipboard_info``, which asserts it is below 3, and only a registered client reaches it.
A release this machine lacks is skipped, or fails under ``QEMU_DBUS_REQUIRE_QEMU=1`` (CI).
"""

from __future__ import annotations

import json

from sphinxext_qemudbus.model.releases import parse_release

from .test_conform_qemu import Qemu, qemu  # noqa: F401 (the fixture)
from .test_probe import probe


def _crashes(*members: str, binary: str) -> dict[str, str]:
    args = ["--launch", binary, "--format", "json", "-q", "--deadline", "240"]
    result = probe(*args, *(f"--member={member}" for member in members), timeout=300)
    assert result.returncode == 1, result.stdout + result.stderr
    found = {}
    for item in json.loads(result.stdout):
        assert item["code"] == "L201", item
        member = item["message"].split(": ", 2)[1].split(" ", 1)[0]
        found[member] = item["message"]
    return found


def test_a_mouse_button_past_the_enumeration_aborts_qemu(qemu: Qemu) -> None:  # noqa: F811
    release = parse_release(qemu.release)
    assert release is not None
    threshold = 10 if release >= (8, 1, 0) else 9
    found = _crashes("org.qemu.Display1.Mouse.Press", binary=qemu.binary)
    message = found["org.qemu.Display1.Mouse.Press"]
    assert f"Press(button={threshold}); crashes for every value >= {threshold} of button" in message
    assert "killed by SIGABRT" in message
    assert "qapi_enum_lookup: Assertion `val >= 0 && val < lookup->size' failed." in message
    assert f"org.qemu.Display1.Mouse Press u {threshold}" in message


def test_a_registered_clipboard_client_aborts_qemu_with_a_selection_past_2(qemu: Qemu) -> None:  # noqa: F811
    found = _crashes("org.qemu.Display1.Clipboard.Re*", binary=qemu.binary)
    assert set(found) == {"org.qemu.Display1.Clipboard.Release"}
    message = found["org.qemu.Display1.Clipboard.Release"]
    assert "Release(selection=3); crashes for every value >= 3 of selection" in message
    assert "qemu_clipboard_info: Assertion `selection < QEMU_CLIPBOARD_SELECTION__COUNT' failed." in message
    # The reproduction registers first, on the same connection: busctl cannot.
    assert 'new_method_call(d,"Register")' in message
