"""The traffic check of ``conform --listen`` and ``--monitor``, on messages built here.

The check is pure: it takes the header fields and body of each message (the numbers of the D-Bus
specification) and the count of file descriptors that came with it.  ``test_conform_live.py`` and
``test_conform_qemu.py`` run it on real connections.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sphinxext_qemudbus.diagnostics.diagnostic import Diagnostic
from sphinxext_qemudbus.live.traffic import (
    ERROR,
    F_ERROR_NAME,
    F_INTERFACE,
    F_MEMBER,
    F_PATH,
    F_REPLY_SERIAL,
    F_SIGNATURE,
    METHOD_CALL,
    METHOD_RETURN,
    NO_REPLY_EXPECTED,
    SIGNAL,
    Seen,
    TrafficCheck,
    registry_error_names,
)
from sphinxext_qemudbus.model.parser import parse_string
from sphinxext_qemudbus.model.registry import Registry

ROOT = Path(__file__).resolve().parent.parent
REGISTRY = Registry.load([ROOT / "interfaces"])
LISTENER = "/org/qemu/Display1/Listener"
XRGB = 0x20020888
IMAGE = (64, 32, 256, XRGB, bytes(256 * 32))


def call(
    member: str,
    signature: str,
    body: tuple[Any, ...],
    interface: str = "org.qemu.Display1.Listener",
    path: str = LISTENER,
    flags: int = NO_REPLY_EXPECTED,
    fds: int = 0,
    serial: int = 1,
) -> Seen:
    fields = {F_PATH: path, F_INTERFACE: interface, F_MEMBER: member, F_SIGNATURE: signature}
    return Seen(METHOD_CALL, flags, serial, fields, body, fds)


def run(
    *messages: Seen, registry: Registry = REGISTRY, release: tuple[int, int, int] | None = None
) -> list[Diagnostic]:
    check = TrafficCheck(registry, release, "unix")
    for message in messages:
        # Calls and signals come from QEMU; replies from whoever QEMU called, to QEMU.
        if message.kind in (METHOD_RETURN, ERROR):
            check.check(message, "helper", "qemu", recipient="qemu")
        else:
            check.check(message, "qemu", "qemu", recipient="helper")
    return check.findings.result()


def codes(findings: list[Diagnostic]) -> list[str]:
    return [d.code for d in findings]


def scanout() -> Seen:
    return call("Scanout", "uuuuay", IMAGE)


def update(x: int = 0, y: int = 0, width: int = 8, height: int = 8, **changes: Any) -> Seen:
    stride = changes.pop("stride", width * 4)
    data = changes.pop("data", bytes(stride * height))
    return call("Update", "iiiiuuay", (x, y, width, height, stride, XRGB, data), **changes)


def test_what_qemu_sends_a_listener_conforms() -> None:
    getall = call("GetAll", "s", ("org.qemu.Display1.Listener",), "org.freedesktop.DBus.Properties", flags=0)
    assert run(getall, scanout(), update(), update(56, 24)) == []


@pytest.mark.parametrize(
    ("message", "code", "words"),
    [
        (call("Repaint", "", ()), "L007", "has no member Repaint"),
        (call("Scanout", "", (), interface="org.qemu.Display1.Secret"), "L007", "Secret is not in the registry"),
        (call("Interfaces", "", ()), "L007", "is a property in the registry, called as a method"),
        (call("Update", "iiiiuay", (0, 0, 8, 8, 32, b"")), "L008", "with (iiiiuay); the registry says (iiiiuuay)"),
        (update(path="/org/qemu/Display1/Other"), "L009", "the registry places org.qemu.Display1.Listener at"),
        (call("ScanoutDMABUF", "huuuutb", (0, 64, 32, 256, 0, 0, True)), "L012", "without a file descriptor"),
        (update(fds=1), "L012", "with 1 file descriptor(s)"),
    ],
)
def test_message_rules(message: Seen, code: str, words: str) -> None:
    findings = run(scanout(), message)
    assert codes(findings) == [code]
    assert words in findings[0].message


def test_a_signature_mismatch_is_located_at_the_registered_member() -> None:
    (finding,) = run(call("Update", "iiiiuay", (0, 0, 8, 8, 32, b"")))
    assert finding.location.path.endswith("org.qemu.Display1.Listener.xml")
    assert finding.location.line > 1


def test_no_reply_flag_where_the_registry_says_noreply() -> None:
    # The registry marks no QEMU-to-client method NoReply; a registry that does expects the flag.
    text = (ROOT / "interfaces" / "org.qemu.Display1.Listener.xml").read_text()
    marked = text.replace(
        '<method name="Update">',
        '<method name="Update">\n<annotation name="org.freedesktop.DBus.Method.NoReply" value="true"/>',
    )
    registry = Registry([parse_string(marked, "org.qemu.Display1.Listener.xml")])
    assert run(scanout(), update(), registry=registry) == []
    findings = run(scanout(), update(flags=0), registry=registry)
    assert codes(findings) == ["L011"]
    assert "without the no-reply flag" in findings[0].message
    assert run(scanout(), update(flags=0)) == []  # the real registry: a reply may be asked for


@pytest.mark.parametrize(
    ("messages", "words"),
    [
        ((update(),), "Update arrived before any Scanout"),
        ((scanout(), update(60, 0)), "Update (60,0 8x8) lies outside the latest Scanout (64x32)"),
        ((scanout(), update(0, 30)), "outside the latest Scanout"),
        ((scanout(), update(-1, 0)), "outside the latest Scanout"),
        ((scanout(), update(stride=40)), "a tightly packed 8-pixel row is 32 bytes"),
        ((scanout(), update(data=b"x")), "Update carries 1 bytes of data"),
        ((call("Scanout", "uuuuay", (64, 32, 100, XRGB, bytes(3200))),), "less than width 64 x 4 bytes"),
        ((call("Scanout", "uuuuay", (64, 32, 256, XRGB, b"")),), "Scanout carries 0 bytes"),
        (
            (
                call(
                    "Init",
                    "tybbuyuub",
                    (1, 16, True, False, 44100, 2, 3, 132300, False),
                    "org.qemu.Display1.AudioOutListener",
                    "/org/qemu/Display1/AudioOutListener",
                ),
            ),
            "bytes_per_frame 3 is not nchannels 2 x bits 16 / 8",
        ),
        (
            (
                call(
                    "Write",
                    "tay",
                    (9, b"abcd"),
                    "org.qemu.Display1.AudioOutListener",
                    "/org/qemu/Display1/AudioOutListener",
                ),
            ),
            "Write for a stream that Init did not announce",
        ),
    ],
)
def test_content_rules_are_warnings(messages: tuple[Seen, ...], words: str) -> None:
    findings = run(*messages)
    assert codes(findings) == ["L108"]
    assert words in findings[0].message


def test_a_repeated_finding_is_one_line_with_a_count() -> None:
    findings = run(scanout(), *(update(60, 0) for _ in range(1000)))
    assert codes(findings) == ["L108"]
    assert findings[0].message.endswith("(1000 times)")


def test_a_member_newer_than_the_release() -> None:
    # Listener.Interfaces is Since 8.1: QEMU 7.2 does not have it, 8.1 does.
    get = call("Get", "ss", ("org.qemu.Display1.Listener", "Interfaces"), "org.freedesktop.DBus.Properties", flags=0)
    assert run(get, release=(8, 1, 0)) == []
    findings = run(get, release=(7, 2, 0))
    assert codes(findings) == ["L107"]
    assert "dates it to 8.1, after QEMU 7.2" in findings[0].message


def reply(serial: int, signature: str, body: tuple[Any, ...], error: str | None = None) -> Seen:
    fields: dict[int, Any] = {F_REPLY_SERIAL: serial, F_SIGNATURE: signature}
    if error is not None:
        fields[F_ERROR_NAME] = error
    return Seen(ERROR if error else METHOD_RETURN, 0, 99, fields, body)


VMSTATE = {"interface": "org.qemu.VMState1", "path": "/org/qemu/VMState1", "flags": 0}


@pytest.mark.parametrize(
    ("answer", "found"),
    [
        (reply(7, "ay", (b"state",)), []),
        (reply(7, "s", ("state",)), ["L008"]),
        (reply(8, "s", ("an answer to another call",)), []),
        (reply(7, "s", ("failed",), error="org.qemu.Display1.Error.Failed"), []),
        (reply(7, "s", ("failed",), error="org.freedesktop.DBus.Error.NoReply"), []),
        (reply(7, "s", ("failed",), error="org.qemu.VMState1.Error.Broken"), ["L109"]),
    ],
)
def test_replies_are_matched_to_their_calls(answer: Seen, found: list[str]) -> None:
    save = call("Save", "", (), serial=7, **VMSTATE)
    assert codes(run(save, answer)) == found


def test_property_values_on_the_wire() -> None:
    properties = {"interface": "org.freedesktop.DBus.Properties", "path": "/org/qemu/VMState1", "flags": 0}
    get = call("Get", "ss", ("org.qemu.VMState1", "Id"), serial=3, **properties)
    getall = call("GetAll", "s", ("org.qemu.VMState1",), serial=4, **properties)
    assert run(get, reply(3, "v", (("s", "helper"),)), getall, reply(4, "a{sv}", ({"Id": ("s", "x")},))) == []
    findings = run(get, reply(3, "v", (("u", 7),)), getall, reply(4, "a{sv}", ({"Id": ("i", 1)},)))
    assert codes(findings) == ["L006", "L006"]
    changed = Seen(
        SIGNAL,
        0,
        5,
        {
            F_PATH: "/org/qemu/Display1/Console_0",
            F_INTERFACE: "org.freedesktop.DBus.Properties",
            F_MEMBER: "PropertiesChanged",
            F_SIGNATURE: "sa{sv}as",
        },
        ("org.qemu.Display1.Console", {"Width": ("i", 720)}, []),
    )
    assert codes(run(changed)) == ["L006"]


def test_signals() -> None:
    fields = {
        F_PATH: "/org/qemu/Display1/Chardev_ser0",
        F_INTERFACE: "org.qemu.Display1.Chardev",
        F_MEMBER: "Nothing",
        F_SIGNATURE: "",
    }
    assert codes(run(Seen(SIGNAL, 0, 1, fields, ()))) == ["L007"]


def test_the_error_names_the_registry_gives() -> None:
    assert {"org.qemu.Display1.Error.Failed", "org.qemu.Display1.Error.Invalid"} <= registry_error_names(REGISTRY)


def test_members_never_exercised() -> None:
    check = TrafficCheck(REGISTRY, (7, 2, 0), "unix")
    for message in (scanout(), update()):
        check.check(message, "qemu", "listener")
    assert check.observed == {"org.qemu.Display1.Listener.Scanout": 1, "org.qemu.Display1.Listener.Update": 1}
    missing = check.unexercised(["org.qemu.Display1.Listener"])
    assert "org.qemu.Display1.Listener.Disable" in missing
    assert "org.qemu.Display1.Listener.Scanout" not in missing
    assert not any(name.endswith(".Interfaces") for name in missing)  # properties are not calls


def test_hostile_names_stay_bounded() -> None:
    check = TrafficCheck(REGISTRY, None, "unix")
    for n in range(5000):
        check.check(call(f"Made{n}", "", ()), "qemu", "listener")
    assert len(check.observed) <= 1001
    assert len(check.findings.result()) <= 1000
    assert check.findings.dropped > 0


def test_names_from_a_peer_cannot_forge_output_lines() -> None:
    hostile = "Fake\nfile.xml:1: error: forged [X001]"
    findings = run(call(hostile, "", (), path="/ok\n/x"))
    assert codes(findings) == ["L007"]
    assert "\n" not in findings[0].message
    assert "\n" not in str(findings[0].location)
    check = TrafficCheck(REGISTRY, None, "unix")
    check.check(call(hostile, "", ()), "qemu", "listener")
    assert all("\n" not in name for name in check.observed)


def test_a_reply_is_never_paired_with_its_senders_own_call() -> None:
    """On a listener connection both sides number their own messages: QEMU's reply with the
    serial of QEMU's own earlier call answers a call of the tool's, not QEMU's."""
    check = TrafficCheck(REGISTRY, None, "unix")
    getall = call("GetAll", "s", ("org.qemu.Display1.Listener",), "org.freedesktop.DBus.Properties", flags=0, serial=5)
    check.check(getall, "Console_0 display", "Console_0 display", recipient="conform")
    own = reply(5, "s", ("not an a{sv}",))
    check.check(own, "Console_0 display", "Console_0 display", recipient="conform")
    assert check.findings.result() == []


def test_tables_stay_bounded_whatever_the_names() -> None:
    """Names a peer makes up (interfaces, members, senders, paths) never become keys of a table
    that grows: the memory a run holds does not grow with the number of distinct names."""
    import tracemalloc

    check = TrafficCheck(REGISTRY, None, "unix")

    def send(first: int, last: int) -> None:
        for n in range(first, last):
            check.check(call(f"M{n}", "", (), f"org.qemu.X{n}", path=f"/p{n}", flags=0, serial=n), f":1.{n}", f":1.{n}")
            scan = call("Scanout", "uuuuay", IMAGE, serial=n)
            check.check(scan, f":1.{n}", f":1.{n}", recipient=f":2.{n}")

    tracemalloc.start()
    try:
        send(0, 10_000)
        before = tracemalloc.get_traced_memory()[0]
        send(10_000, 30_000)
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert after - before < 1 << 20, f"{(after - before) >> 10} KiB more for 20,000 more names"
