"""The diagrams stage without Sphinx: the deployment picture agrees with the generated policy, the
sequences are checked against the registry, and the SVG is well-formed, escaped and accessible."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import pytest
from lxml import etree

from sphinxext_qemudbus.cli import main
from sphinxext_qemudbus.diagrams.deployment import BUS, deployment_diagram, interface_spans
from sphinxext_qemudbus.diagrams.lanes import Arrow, Diagram, Note, Span, layout, plain, wrap
from sphinxext_qemudbus.diagrams.sequence import parse_sequence
from sphinxext_qemudbus.diagrams.svg import render_svg
from sphinxext_qemudbus.model.introspection import Method
from sphinxext_qemudbus.model.registry import Registry
from sphinxext_qemudbus.security.deployment import SCENARIOS, builtin_deployment, parse_deployment
from sphinxext_qemudbus.security.policy import build_config
from sphinxext_qemudbus.security.trust import PROPERTIES, deployment_links

from .test_policy import REGISTRY

SVG = "{http://www.w3.org/2000/svg}"
RUNS = list(itertools.product(("default", "lockdown"), SCENARIOS))


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry.load([REGISTRY])


# --- wrapping ------------------------------------------------------------------------------------


def test_wrap_breaks_between_words_only() -> None:
    spans = (Span("(management) "), Span("org.qemu.Vnc1.{"), Span("Client", "x"), Span(", "), Span("Server", "y"))
    for width in range(1, 60):
        lines = [plain(line) for line in wrap(spans, width)]
        assert "".join(line.replace(" ", "") for line in lines) == "(management)org.qemu.Vnc1.{Client,Server"
        for line in lines:
            assert len(line) <= width or " " not in line, (width, lines)
        assert all(not line.startswith(" ") and not line.endswith(" ") for line in lines)
    assert [plain(line) for line in wrap(spans, 25)] == ["(management)", "org.qemu.Vnc1.{Client,", "Server"]


def test_interface_spans_group_by_family() -> None:
    spans = interface_spans(["org.qemu.Display1.VM", "org.qemu.Display1.Console", "org.qemu.VMState1"])
    assert plain(spans) == "org.qemu.Display1.{VM, Console}; org.qemu.VMState1"
    assert [span.target for span in spans if span.target] == [
        "org.qemu.Display1.VM",
        "org.qemu.Display1.Console",
        "org.qemu.VMState1",
    ]


# --- the deployment picture and the policy ------------------------------------------------------


def _arrow_calls(registry: Registry, deployment_name: str, scenario: str) -> set[tuple[str, str, str, bool]]:
    diagram = deployment_diagram(registry, builtin_deployment(deployment_name), scenario)
    return {
        (arrow.source, arrow.target, span.target, arrow.peer_to_peer)
        for arrow in diagram.arrows
        for span in arrow.label
        if span.target
    }


@pytest.mark.parametrize(("deployment_name", "scenario"), RUNS)
def test_every_link_of_the_policy_model_is_an_arrow_and_back(
    registry: Registry, deployment_name: str, scenario: str
) -> None:
    links = {
        (link.caller, link.implementer, link.interface, link.peer_to_peer)
        for link in deployment_links(registry, builtin_deployment(deployment_name))
    }
    assert _arrow_calls(registry, deployment_name, scenario) == links


@pytest.mark.parametrize(("deployment_name", "scenario"), RUNS)
def test_arrows_and_the_generated_configuration_agree(registry: Registry, deployment_name: str, scenario: str) -> None:
    """Read the send rules of the generated BusConfig, user by user: every bus arrow has rules
    that let its caller's user call its interface (its methods, or its properties where it has
    no method) on its implementer's names, and every send rule naming a registry interface is an
    arrow from a process of that user to one reached by that name.  A rule without a destination
    reaches every name.  (test_diagrams_daemon holds the arrows against a real dbus-daemon too.)"""
    deployment = builtin_deployment(deployment_name)
    config = build_config(registry, deployment, scenario)
    rules: set[tuple[str, str, str | None]] = set()  # (user, interface, destination)
    for block in config.blocks:
        if block.attribute[0] != "user":
            continue
        for section in block.sections:
            for rule in section.rules:
                values = dict(rule.attributes)
                if rule.verdict == "allow" and values.get("send_type") == "method_call":
                    rules.add((block.key, values["send_interface"], values.get("send_destination")))

    def allowed(user: str, interface: str, name: str | None) -> bool:
        return (user, interface, name) in rules or (user, interface, None) in rules

    arrows = _arrow_calls(registry, deployment_name, scenario)
    for source, target, interface, p2p in arrows:
        if p2p:
            continue
        user = deployment.user_of(source, scenario).name
        has_methods = any(isinstance(m, Method) for m in registry.interface(interface).members)
        for name in deployment.addresses(target) or (None,):
            assert allowed(user, interface if has_methods else PROPERTIES, name), (source, target, interface, name)
    for user, interface, name in rules:
        if interface not in registry:
            continue
        assert any(
            deployment.user_of(source, scenario).name == user
            and iface == interface
            and not p2p
            and (name is None or name in deployment.addresses(target))
            for source, target, iface, p2p in arrows
        ), (user, interface, name)


def test_lockdown_shows_no_arrow_between_the_helpers(registry: Registry) -> None:
    diagram = deployment_diagram(registry, builtin_deployment("lockdown"), "many-uids")
    assert [(arrow.source, arrow.target) for arrow in diagram.arrows] == [("qemu", "net"), ("qemu", "tpm")]
    assert all(arrow.crossing and not arrow.peer_to_peer for arrow in diagram.arrows)
    assert [frame.label for frame in diagram.frames] == [
        "user qemu (64501)",
        "user qemu-bus (64500)",
        "user qemu-net (64502)",
        "user qemu-tpm (64503)",
    ]
    assert diagram.frames[1].lanes == (BUS,)


def test_frames_follow_the_scenario(registry: Registry) -> None:
    deployment = builtin_deployment("default")
    single = deployment_diagram(registry, deployment, "single-uid")
    assert len(single.frames) == 1
    assert not any(arrow.crossing for arrow in single.arrows)
    two = deployment_diagram(registry, deployment, "two-uids")
    assert [frame.lanes for frame in two.frames] == [("qemu",), (BUS, "net", "tpm", "viewer", "vnc", "manager")]
    assert single.frames[0].lanes == ("qemu", BUS, "net", "tpm", "viewer", "vnc", "manager")
    assert {(a.source, a.target) for a in two.arrows if a.crossing} == {
        (a.source, a.target) for a in two.arrows if "qemu" in (a.source, a.target)
    }
    many = deployment_diagram(registry, deployment, "many-uids")
    assert len(many.frames) == 7
    assert all(arrow.crossing for arrow in many.arrows)
    # The same order of lanes in every scenario, so that the pictures compare at a glance.
    assert [lane.id for lane in single.lanes] == [lane.id for lane in two.lanes] == [lane.id for lane in many.lanes]


def test_both_kinds_of_interface_are_drawn(registry: Registry) -> None:
    diagram = deployment_diagram(registry, builtin_deployment("default"), "many-uids")
    management = [arrow for arrow in diagram.arrows if arrow.management]
    assert [(a.source, a.target) for a in management] == [("manager", "vnc")]
    assert plain(management[0].label) == "(management) org.qemu.Vnc1.{Client, Server}"
    assert {entry.style for entry in diagram.legend} == {"bus", "p2p", "cross", "peer", "management"}
    p2p = [arrow for arrow in diagram.arrows if arrow.peer_to_peer]
    assert {(a.source, a.target) for a in p2p} == {("qemu", "viewer"), ("qemu", "vnc")}


# --- layout and SVG ------------------------------------------------------------------------------


def _overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


@pytest.mark.parametrize(("deployment_name", "scenario"), RUNS)
def test_estimated_text_boxes_neither_overlap_nor_leave_the_picture(
    registry: Registry, deployment_name: str, scenario: str
) -> None:
    placed = layout(deployment_diagram(registry, builtin_deployment(deployment_name), scenario))
    boxes = [text.box for text in placed.texts()]
    for a, b in itertools.combinations(boxes, 2):
        assert not _overlap(a, b), (a, b)
    for x, y, w, h in boxes:
        assert x >= 0
        assert x + w <= placed.width
        assert y >= 0
        assert y + h <= placed.height


def test_svg_is_well_formed_accessible_and_linked(registry: Registry) -> None:
    diagram = deployment_diagram(registry, builtin_deployment("lockdown"), "many-uids")
    svg = render_svg(diagram, id_prefix="x1", hrefs={"org.qemu.VMState1": "dbus-vmstate.html#org.qemu.VMState1"})
    root = etree.fromstring(svg.encode())
    assert root.get("role") == "img"
    assert root.get("aria-labelledby") == "x1-title x1-desc"
    assert root.find(f"{SVG}title").text == diagram.title
    desc = root.find(f"{SVG}desc").text
    assert "QEMU calls the network helper over the bus" in desc
    assert "qemu-net" in desc
    links = root.findall(f".//{SVG}a")
    assert [link.get("href") for link in links] == ["dbus-vmstate.html#org.qemu.VMState1"] * 2
    texts = " ".join("".join(text.itertext()) for text in root.iter(f"{SVG}text"))
    for label in ("QEMU", "the network", "helper", "org.qemu.VMState1", "user qemu-tpm", "(64503)"):
        assert label in texts, label


HOSTILE = """
[deployment]
name = "evil</title><script>alert(1)</script>"
[bus]
user = { name = "bus", uid = 7000 }
[[peer]]
id = "qemu"
label = "QEMU <b>&amp; \\u0001 \\u001b[31m"
role = "qemu"
user = { name = "qemu", uid = 7001 }
implements = []
[[peer]]
id = "helper"
label = "]]><!-- -->"
role = "helper"
user = { name = "helper", uid = 7002 }
owns = ["org.qemu.VMState1", "vm.helper"]
implements = ["org.qemu.VMState1"]
"""


def test_hostile_names_are_escaped_in_the_svg_and_the_text(
    registry: Registry, tmp_path: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    # A deployment file may not hold control characters (qemu-dbus policy refuses it, below); one
    # built in code may, and the picture escapes them.
    label = "QEMU <b>&amp; \\u0001 \\u001b[31m"  # as the file writes it: TOML escapes
    parsed = parse_deployment(HOSTILE.replace(label, "QEMU <b>&amp;"), "evil.toml")
    qemu = dataclasses.replace(parsed.peer("qemu"), label="QEMU <b>&amp; \x01 \x1b[31m")
    deployment = dataclasses.replace(parsed, peers=(qemu, *parsed.peers[1:]))
    svg = render_svg(deployment_diagram(registry, deployment, "many-uids"), standalone=True)
    root = etree.fromstring(svg.encode())  # well-formed despite the names
    assert root.find(f".//{SVG}script") is None
    assert root.find(f".//{SVG}b") is None
    assert "\x01" not in svg
    assert "\x1b" not in svg
    assert "QEMU <b>&amp;" in root.find(f"{SVG}desc").text  # the text itself, shown as it is
    assert "<b>&amp;" in " ".join("".join(text.itertext()) for text in root.iter(f"{SVG}text"))
    path = tmp_path / "evil.toml"  # type: ignore[operator]
    path.write_text(HOSTILE)
    argv = ["policy", "--scenario", "many-uids", "--deployment", str(path), "--registry", REGISTRY]
    assert main([*argv, "--diagram", "text"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert f"{path}:8: error: 'label' holds the character \\x01" in err
    path.write_text(HOSTILE.replace(label, "QEMU <b>&amp;"))
    assert main([*argv, "--diagram", "text"]) == 0
    assert "QEMU <b>&amp;" in capsys.readouterr().out


def test_cli_writes_the_svg_of_the_same_links(registry: Registry, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["policy", "--scenario", "many-uids", "--deployment", "lockdown", "--registry", REGISTRY]
    assert main([*args, "--diagram", "svg"]) == 0
    svg = capsys.readouterr().out
    assert svg.startswith('<?xml version="1.0" encoding="utf-8"?>\n<svg ')
    assert svg == render_svg(deployment_diagram(registry, builtin_deployment("lockdown"), "many-uids"), standalone=True)
    root = etree.fromstring(svg.encode())
    assert root.find(f"{SVG}style") is not None
    assert main([*args, "--diagram", "text"]) == 0
    text = capsys.readouterr().out
    assert "QEMU | the network helper | org.qemu.VMState1 | bus | yes: qemu → qemu-net" in text
    assert "the network helper | the TPM helper" not in text


def test_the_svg_draws_each_frame_whole_and_each_lifeline_once(registry: Registry) -> None:
    """A label crosses a frame's border without cutting it (the border is one rounded box), and a
    lifeline is one line that the picture's one mask hides under every label and note (the file
    the CLI writes is the same picture)."""
    diagram = deployment_diagram(registry, builtin_deployment("default"), "many-uids")
    root = etree.fromstring(render_svg(diagram, id_prefix="p", standalone=True).encode())
    boxes = root.findall(f".//{SVG}g[@class='dbus-d-frame-box']")
    assert len(boxes) == len(diagram.frames)
    assert all([child.tag for child in box] == [f"{SVG}rect"] for box in boxes)
    (lifelines,) = root.findall(f".//{SVG}g[@class='dbus-d-lifelines']")
    assert len(lifelines.findall(f"{SVG}line")) == len(diagram.lanes)
    assert lifelines.get("mask") == "url(#p-holes)"
    (mask,) = root.findall(f".//{SVG}mask")
    assert mask.get("id") == "p-holes"
    texts = [t for t in root.iter(f"{SVG}text") if "dbus-d-label" in (t.get("class") or "")]
    assert len(mask.findall(f"{SVG}rect")) >= 1 + len(texts)  # the whole picture, then a hole per label


# --- sequences -----------------------------------------------------------------------------------

DISPLAY = """\
participant client client the display client
participant qemu qemu QEMU
client -> qemu: org.qemu.Display1.VM.ConsoleIDs
client -> qemu: org.qemu.Display1.Console.RegisterListener with a socket
note client, qemu: the handshake
qemu -> client: org.qemu.Display1.Listener.Scanout
client -> qemu: org.qemu.Display1.Keyboard.Press
""".splitlines()

#: code -> (description lines, line of the finding), the first line being line 1.
SEQUENCE_CASES: dict[str, tuple[list[str], int]] = {
    "R605": ([*DISPLAY[:2], "client -> qemu: org.qemu.Display1.Console.RegisterListner"], 3),
    "R606": ([*DISPLAY[:2], "qemu -> client: org.qemu.Display1.Keyboard.Press"], 3),
    "R607": ([*DISPLAY[:2], "", "viewer -> qemu: org.qemu.Display1.Keyboard.Press"], 4),
    "R608": ([*DISPLAY[:2], "client calls qemu"], 3),
    "R609": ([*DISPLAY[:2], "participant x guest a guest"], 3),
}


@pytest.mark.parametrize("code", sorted(SEQUENCE_CASES))
def test_sequence_rule_fires_at_its_line(registry: Registry, code: str) -> None:
    lines, line = SEQUENCE_CASES[code]
    _, problems = parse_sequence(lines, registry, "t", "page.rst", 10)
    assert [(p.code, p.location.path, p.location.line) for p in problems] == [(code, "page.rst", 9 + line)]


def test_a_good_sequence_has_links_in_order(registry: Registry) -> None:
    diagram, problems = parse_sequence(DISPLAY, registry, "Display")
    assert not problems
    assert [type(row) for row in diagram.rows] == [Arrow, Arrow, Note, Arrow, Arrow]
    targets = [span.target for row in diagram.arrows for span in row.label if span.target]
    assert targets == [
        "org.qemu.Display1.VM.ConsoleIDs",
        "org.qemu.Display1.Console.RegisterListener",
        "org.qemu.Display1.Listener.Scanout",
        "org.qemu.Display1.Keyboard.Press",
    ]
    kinds = [span.kind for row in diagram.arrows for span in row.label if span.target]
    assert kinds == ["property", "method", "method", "method"]
    scanout = diagram.arrows[2]
    assert scanout.peer_to_peer
    assert (scanout.source, scanout.target) == ("qemu", "client")
    assert plain(diagram.arrows[1].label) == "Console.RegisterListener() with a socket"


def test_standard_members_go_where_they_belong(registry: Registry) -> None:
    lines = [
        "participant qemu qemu QEMU",
        "participant bus bus the bus daemon",
        "participant net helper the network helper",
        "qemu -> bus: org.freedesktop.DBus.ListQueuedOwners of org.qemu.VMState1",
        "qemu -> net: org.qemu.VMState1.Save",
        "qemu -> net: org.freedesktop.DBus.ListQueuedOwners",
        "net -> qemu: org.qemu.VMState1.Load",
    ]
    diagram, problems = parse_sequence(lines, registry, "Migration")
    assert [(p.code, p.location.line) for p in problems] == [("R606", 6), ("R606", 7)]
    assert len(diagram.arrows) == 2
    assert diagram.lanes[1].daemon


def docs_sequence(registry: Registry, page: str) -> Diagram:
    """The sequence of a docs page, read as the directive reads it (title and content)."""
    docs = Path(REGISTRY).parent / "docs" / "interop"
    text = (docs / page).read_text().splitlines()
    start = next(n for n, line in enumerate(text) if line.startswith(".. dbus-sequence::"))
    title = text[start].split("::", 1)[1].strip()
    body = list(itertools.takewhile(lambda line: line.startswith("   ") or not line, text[start + 2 :]))
    diagram, problems = parse_sequence([line.strip() for line in body], registry, title)
    assert not problems, problems
    return diagram


def test_the_docs_sequences_name_only_registry_members(registry: Registry) -> None:
    for page in ("dbus-display.rst", "dbus-vmstate.rst"):
        assert len(docs_sequence(registry, page).arrows) >= 6
