"""The policy generator, the deployment format and the trust derivation, without a running bus
(except `test_dbus_daemon_accepts_every_generated_config`, which starts dbus-daemon on each)."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
from lxml import etree

from sphinxext_qemudbus.cli import main
from sphinxext_qemudbus.model.registry import Registry
from sphinxext_qemudbus.security.deployment import (
    BUILTIN_DEPLOYMENTS,
    SCENARIOS,
    Deployment,
    DeploymentError,
    builtin_deployment,
    check_deployment,
    load_deployment,
    parse_deployment,
    resolve_deployment,
)
from sphinxext_qemudbus.security.policy import DEFAULT_LISTEN, build_config, generate_policy, snippet
from sphinxext_qemudbus.security.trust import (
    boundary_flows,
    bus_messages,
    deployment_links,
    member_flows,
    member_trust_notes,
    validation_duties,
)

ROOT = Path(__file__).parent.parent
REGISTRY = str(ROOT / "interfaces")


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry.load([REGISTRY])


def config_tree(text: str) -> etree._Element:
    return etree.fromstring(text.encode(), etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False))


def rules(text: str, user: str | None = None, context: str | None = None) -> list[dict[str, str]]:
    tree = config_tree(text)
    found = []
    for policy in tree.iter("policy"):
        if (user and policy.get("user") != user) or (context and policy.get("context") != context):
            continue
        found += [
            {**{str(k): str(v) for k, v in rule.attrib.items()}, "verdict": str(rule.tag)}
            for rule in policy
            if rule.tag in ("allow", "deny")
        ]
    return found


# --- the generator -------------------------------------------------------------------------------


@pytest.mark.parametrize("deployment", BUILTIN_DEPLOYMENTS)
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_output_is_deterministic_valid_xml(registry: Registry, deployment: str, scenario: str) -> None:
    first = generate_policy(registry, builtin_deployment(deployment), scenario)
    again = generate_policy(Registry.load([REGISTRY]), builtin_deployment(deployment), scenario)
    assert first == again
    assert first.endswith("</busconfig>\n")
    tree = config_tree(first)
    assert tree.findtext("listen") == DEFAULT_LISTEN
    assert tree.findtext("auth") == "EXTERNAL"
    for comment in tree.iter(etree.Comment):
        assert "--" not in str(comment.text)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_rule_is_one_dbus_daemon_accepts(registry: Registry, scenario: str) -> None:
    """dbus-daemon refuses to start on mixed send/receive attributes, own with anything else, and
    send_member without send_interface; and it only knows a lone * as wildcard."""
    for rule in rules(generate_policy(registry, builtin_deployment("default"), scenario)):
        keys = set(rule) - {"verdict"}
        sends = {k for k in keys if k.startswith("send_")}
        receives = {k for k in keys if k.startswith("receive_")}
        assert not (sends and receives), rule
        assert "own" not in keys or keys == {"own"}, rule
        assert "send_member" not in keys or "send_interface" in keys, rule
        assert "receive_member" not in keys or "receive_interface" in keys, rule
        assert not any("*" in value for key, value in rule.items() if key != "verdict"), rule


def test_scenarios_map_peers_onto_users(registry: Registry) -> None:
    deployment = builtin_deployment("default")
    users = {
        s: [
            p.get("user") for p in config_tree(generate_policy(registry, deployment, s)).iter("policy") if p.get("user")
        ]
        for s in SCENARIOS
    }
    # by uid: qemu, qemu-bus; qemu, qemu-net, qemu-tpm, qemu-viewer, qemu-vnc, qemu-manager
    assert users["single-uid"] == ["64501"]
    assert users["two-uids"] == ["64500", "64501"]
    assert users["many-uids"] == ["64501", "64502", "64503", "64504", "64505", "64506"]
    single = generate_policy(registry, deployment, "single-uid")
    assert "NO ISOLATION" in single
    assert "NO ISOLATION" not in generate_policy(registry, deployment, "many-uids")


def test_connect_rules_list_exactly_the_peers_users(registry: Registry) -> None:
    text = generate_policy(registry, builtin_deployment("lockdown"), "many-uids")
    connect = [r["user"] for r in rules(text, context="default") if "user" in r]
    assert connect == ["64501", "64502", "64503"]  # qemu, qemu-net, qemu-tpm


def test_lockdown_helper_policies_by_hand(registry: Registry) -> None:
    """Written out: what each helper's policy may and may not contain."""
    text = generate_policy(registry, builtin_deployment("lockdown"), "many-uids")
    net = rules(text, user="64502")  # qemu-net
    assert {r["own"] for r in net if "own" in r} == {"org.qemu.VMState1", "vm.helper.net"}
    assert not [r for r in net if r.get("send_type") == "method_call"], "a helper calls nothing"
    assert not [r for r in rules(text) if r.get("send_destination") == "org.qemu.VMState1"], (
        "send_destination=org.qemu.VMState1 would reach every queued helper"
    )
    assert [r for r in net if r.get("receive_interface") == "org.qemu.VMState1"] == [
        {
            "verdict": "allow",
            "receive_interface": "org.qemu.VMState1",
            "receive_member": "Load",
            "receive_path": "/org/qemu/VMState1",
            "receive_type": "method_call",
        },
        {
            "verdict": "allow",
            "receive_interface": "org.qemu.VMState1",
            "receive_member": "Save",
            "receive_path": "/org/qemu/VMState1",
            "receive_type": "method_call",
        },
    ]
    qemu = rules(text, user="64501")
    assert {
        (r["send_destination"], r["send_member"]) for r in qemu if r.get("send_interface") == "org.qemu.VMState1"
    } == {
        ("vm.helper.net", "Load"),
        ("vm.helper.net", "Save"),
        ("vm.helper.tpm", "Load"),
        ("vm.helper.tpm", "Save"),
    }
    assert {
        "verdict": "allow",
        "send_destination": "org.freedesktop.DBus",
        "send_interface": "org.freedesktop.DBus",
        "send_member": "ListQueuedOwners",
    } in qemu
    assert not [r for r in rules(text) if r.get("send_member") == "ListQueuedOwners" and r not in qemu]


def test_mandatory_context_denies_monitoring(registry: Registry) -> None:
    for scenario in SCENARIOS:
        mandatory = rules(generate_policy(registry, builtin_deployment("default"), scenario), context="mandatory")
        assert {
            "verdict": "deny",
            "send_destination": "org.freedesktop.DBus",
            "send_interface": "org.freedesktop.DBus.Monitoring",
        } in mandatory
        assert all(r["verdict"] == "deny" for r in mandatory)


def test_peer_to_peer_interfaces_get_no_bus_rules_but_are_named(registry: Registry) -> None:
    text = generate_policy(registry, builtin_deployment("default"), "many-uids")
    assert not [r for r in rules(text) if "Listener" in r.get("send_interface", "") + r.get("receive_interface", "")]
    assert "org.qemu.Display1.Listener: QEMU calls the viewer and QEMU calls qemu-vnc" in text
    assert 'send_member="RegisterListener"' in text  # the bus call that sets the connection up


def test_listen_address_is_a_parameter(registry: Registry) -> None:
    text = generate_policy(registry, builtin_deployment("lockdown"), "many-uids", listen="unix:path=/tmp/x&y")
    assert "<listen>unix:path=/tmp/x&amp;y</listen>" in text
    assert "is a placeholder" not in text


def test_snippet_is_a_slice_of_the_full_text(registry: Registry) -> None:
    config = build_config(registry, builtin_deployment("lockdown"), "many-uids")
    full = config.render()
    for key in ("default", "qemu", "qemu-net", "mandatory"):
        part = snippet(config, key)
        assert textwrap.indent(part, "  ") in full
    with pytest.raises(KeyError):
        config.block("nobody")


def test_calls_list_narrows_a_peer(registry: Registry, tmp_path: Path) -> None:
    text = (
        Path(__file__).parent.parent / "sphinxext_qemudbus" / "security" / "deployments" / "default.toml"
    ).read_text()
    text = text.replace('id = "viewer"', 'id = "viewer"\ncalls = ["org.qemu.Display1.Keyboard"]')
    deployment = parse_deployment(text, "narrow.toml")
    assert not check_deployment(deployment, registry)
    viewer = rules(generate_policy(registry, deployment, "many-uids"), user="64504")  # qemu-viewer
    called = {r["send_interface"] for r in viewer if r.get("send_type") == "method_call"}
    standard = {
        "org.freedesktop.DBus.Properties",
        "org.freedesktop.DBus.Introspectable",
        "org.freedesktop.DBus.ObjectManager",
    }
    assert called == {"org.qemu.Display1.Keyboard"} | standard  # its objects come and go: ObjectManager too


# --- deployments ---------------------------------------------------------------------------------

GOOD = """\
[deployment]
name = "tiny"

[bus]
user = { name = "bus", uid = 7000 }

[[peer]]
id = "qemu"
role = "qemu"
user = { name = "qemu", uid = 7001 }
implements = []

[[peer]]
id = "helper"
role = "helper"
user = { name = "helper", uid = 7002 }
owns = ["org.qemu.VMState1"]
implements = ["org.qemu.VMState1"]
"""


def test_builtin_deployments_are_consistent_with_the_registry(registry: Registry) -> None:
    for name in BUILTIN_DEPLOYMENTS:
        deployment = builtin_deployment(name)
        assert deployment.name == name
        assert check_deployment(deployment, registry) == ()


def test_parse_and_map_users() -> None:
    deployment = parse_deployment(GOOD, "tiny.toml")
    assert [p.id for p in deployment.peers] == ["qemu", "helper"]
    assert deployment.peer("helper").label == "helper"
    assert deployment.user_of("helper", "single-uid").name == "qemu"
    assert deployment.user_of("helper", "two-uids").name == "bus"
    assert deployment.user_of("helper", "many-uids").name == "helper"
    assert deployment.bus_user_in("single-uid").name == "qemu"
    assert deployment.addresses("helper") == ("org.qemu.VMState1",)  # exclusive here: one owner
    assert deployment.addresses("qemu") == ()


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda t: t.replace('name = "tiny"', 'name = "tiny'), r"tiny\.toml:2:\d+: error: TOML syntax: "),
        (
            lambda t: t.replace('role = "helper"', 'role = "helper"\ncolour = "red"'),
            r"tiny\.toml:16: error: unknown key 'colour' in \[\[peer\]\]",
        ),
        (lambda t: t.replace('id = "helper"', 'id = "qemu"'), r"tiny\.toml:14: error: peer id 'qemu' is used twice"),
        (
            lambda t: t.replace('role = "helper"', 'role = "qemu"'),
            r"tiny\.toml:15: error: a deployment has exactly one peer with role 'qemu' \(found 2\)",
        ),
        (lambda t: t.replace('role = "helper"', 'role = "wizard"'), r"tiny\.toml:15: error: unknown role 'wizard'"),
        (lambda t: t.replace("uid = 7002", "uid = 0"), r"tiny\.toml:16: error: uid 0 is root"),
        (
            lambda t: t.replace("uid = 7002", "uid = 7001"),
            r"tiny\.toml:16: error: uid 7001 of peer 'helper' is already the uid of peer 'qemu'",
        ),
        (
            lambda t: t.replace('name = "helper", uid', 'name = "qemu", uid'),
            r"tiny\.toml:16: error: user 'qemu' of peer 'helper' is already the user of peer 'qemu'",
        ),
        (
            lambda t: t.replace('owns = ["org.qemu.VMState1"]', 'owns = ["org..x"]'),
            r"tiny\.toml:17: error: owned name 'org..x'",
        ),
        (
            lambda t: t.replace('owns = ["org.qemu.VMState1"]', 'owns = ["org.freedesktop.DBus"]'),
            r"tiny\.toml:17: error: owned name 'org.freedesktop.DBus': org.freedesktop.DBus names belong to the bus daemon",
        ),
        (
            lambda t: t.replace('implements = ["org.qemu.VMState1"]', 'implements = "org.qemu.VMState1"'),
            r"tiny\.toml:18: error: 'implements' must be a list of strings",
        ),
        (lambda t: t.replace('user = { name = "helper", uid = 7002 }', ""), r"tiny\.toml:13: error: missing 'user = "),
        (lambda t: t.split("[bus]")[0] + t.split("uid = 7000 }\n")[1], r"tiny\.toml:1: error: missing \[bus\] table"),
    ],
)
def test_bad_deployment_files_are_located(change: object, expected: str) -> None:
    assert callable(change)
    with pytest.raises(DeploymentError) as caught:
        parse_deployment(change(GOOD), "tiny.toml")
    messages = [problem.format() for problem in caught.value.problems]
    assert any(re.match(expected, message) for message in messages), messages


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda t: t.replace('implements = ["org.qemu.VMState1"]', 'implements = ["org.qemu.Nope1"]'),
            "implements org.qemu.Nope1, which is not in the registry",
        ),
        (
            lambda t: t.replace('implements = ["org.qemu.VMState1"]', 'implements = ["org.qemu.Display1.VM"]'),
            "but the registry says only qemu implement it",
        ),
        (
            lambda t: t.replace('owns = ["org.qemu.VMState1"]', "owns = []"),
            "which callers find at org.qemu.VMState1, but does not own that name",
        ),
        (
            lambda t: t.replace('role = "helper"', 'role = "helper"\ncalls = ["org.qemu.VMState1"]'),
            "calls org.qemu.VMState1, but the registry says only qemu call it",
        ),
    ],
)
def test_deployments_are_checked_against_the_registry(registry: Registry, change: object, expected: str) -> None:
    assert callable(change)
    problems = check_deployment(parse_deployment(change(GOOD), "tiny.toml"), registry)
    assert any(expected in problem.message for problem in problems), problems
    assert all(problem.format().startswith("tiny.toml:") for problem in problems)


def test_resolve_deployment(tmp_path: Path) -> None:
    assert resolve_deployment(None).name == "default"
    assert resolve_deployment("lockdown").name == "lockdown"
    path = tmp_path / "tiny.toml"
    path.write_text(GOOD)
    assert resolve_deployment(str(path)).name == "tiny"
    with pytest.raises(DeploymentError, match="no built-in deployment 'nope'"):
        resolve_deployment("nope")
    with pytest.raises(DeploymentError, match="cannot read file"):
        load_deployment(str(tmp_path / "missing.toml"))


# --- the command line ----------------------------------------------------------------------------


def test_cli_writes_the_generated_config(registry: Registry, capsys: pytest.CaptureFixture[str]) -> None:
    for name in BUILTIN_DEPLOYMENTS:
        for scenario in SCENARIOS:
            assert main(["policy", "--scenario", scenario, "--deployment", name, "--registry", REGISTRY]) == 0
            assert capsys.readouterr().out == generate_policy(registry, builtin_deployment(name), scenario)


def test_cli_default_deployment_and_listen(registry: Registry, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "--scenario", "two-uids", "--registry", REGISTRY, "--listen", "unix:path=/run/vm1/bus"]) == 0
    assert capsys.readouterr().out == generate_policy(
        registry, builtin_deployment("default"), "two-uids", "unix:path=/run/vm1/bus"
    )


def test_cli_errors_exit_2_without_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(GOOD.replace('role = "helper"', 'role = "helper'))
    assert main(["policy", "--scenario", "many-uids", "--deployment", str(bad), "--registry", REGISTRY]) == 2
    err = capsys.readouterr().err
    assert re.match(rf"{re.escape(str(bad))}:15:\d+: error: TOML syntax", err), err
    assert "Traceback" not in err
    wrong = tmp_path / "wrong.toml"
    wrong.write_text(GOOD.replace('implements = ["org.qemu.VMState1"]', 'implements = ["org.qemu.Nope1"]'))
    assert main(["policy", "--scenario", "many-uids", "--deployment", str(wrong), "--registry", REGISTRY]) == 2
    assert "org.qemu.Nope1, which is not in the registry" in capsys.readouterr().err
    assert main(["policy", "--scenario", "many-uids", "--registry", str(tmp_path / "nowhere")]) == 2
    assert "no such folder" in capsys.readouterr().err
    with pytest.raises(SystemExit) as caught:
        main(["policy", "--scenario", "three-uids"])
    assert caught.value.code == 2


# --- trust ---------------------------------------------------------------------------------------


def test_links_follow_roles_and_the_symmetric_clipboard(registry: Registry) -> None:
    links = deployment_links(registry, builtin_deployment("default"))
    clipboard = {(link.caller, link.implementer) for link in links if link.interface == "org.qemu.Display1.Clipboard"}
    assert clipboard == {("viewer", "qemu"), ("vnc", "qemu"), ("qemu", "viewer"), ("qemu", "vnc")}
    vmstate = {(link.caller, link.implementer) for link in links if link.interface == "org.qemu.VMState1"}
    assert vmstate == {("qemu", "net"), ("qemu", "tpm")}
    assert all(not (link.caller in ("net", "tpm") and link.implementer in ("net", "tpm")) for link in links)


def test_bus_messages_cover_only_bus_links(registry: Registry) -> None:
    messages = bus_messages(registry, builtin_deployment("default"))
    assert not [m for m in messages if m.link.peer_to_peer]
    assert {(m.member, m.type) for m in messages if m.interface == "org.qemu.VMState1"} == {
        ("Load", "method_call"),
        ("Save", "method_call"),
    }


def test_boundary_flows_per_scenario(registry: Registry) -> None:
    deployment = builtin_deployment("default")
    assert boundary_flows(registry, deployment, "single-uid") == ()
    two = boundary_flows(registry, deployment, "two-uids")
    many = boundary_flows(registry, deployment, "many-uids")
    assert {f.link.interface for f in two} < {f.link.interface for f in many}
    assert "org.qemu.Vnc1.Server" not in {f.link.interface for f in two}  # qemu-vnc and the manager share the bus user
    assert len(many) == len(member_flows(registry, deployment, "many-uids"))


def test_member_trust_notes_for_every_vmstate_and_display_member(registry: Registry) -> None:
    for entry in registry:
        name = entry.interface.name
        if not (name == "org.qemu.VMState1" or name.startswith("org.qemu.Display1.")):
            continue
        for member in entry.interface.members:
            notes = member_trust_notes(registry, name, member.name)
            assert notes.summary()
            if notes.pairs:
                assert notes.boundary_scenarios[-1:] == ("many-uids",), (name, member.name)
            for value in notes.values:
                assert value.boundary_scenarios == () or "many-uids" in value.boundary_scenarios


def test_member_trust_notes_literal(registry: Registry) -> None:
    load = member_trust_notes(registry, "org.qemu.VMState1", "Load")
    assert load.boundary_scenarios == ("two-uids", "many-uids")
    assert load.pairs == (("qemu", "net"), ("qemu", "tpm"))
    (data,) = load.values
    assert (data.name, data.flow, data.receivers) == ("data", "in-arg", ("net", "tpm"))
    assert data.validators_in("single-uid") == ()
    assert load.summary().startswith(
        "Crosses a trust boundary in two-uids and many-uids: QEMU → the network helper and QEMU → the TPM helper. "
        "The network helper and the TPM helper validate data (in-arg): QEMU only forwards at most 1 MiB"
    )
    save = member_trust_notes(registry, "org.qemu.VMState1", "Save")
    assert save.values[0].receivers == ("qemu",)
    leaving = member_trust_notes(registry, "org.qemu.Vnc1.Server", "Leaving")
    assert leaving.boundary_scenarios == ("many-uids",)
    with pytest.raises(KeyError):
        member_trust_notes(registry, "org.qemu.VMState1", "Nope")


def test_validation_duties_api_is_unchanged(registry: Registry) -> None:
    entry = registry.entry("org.qemu.VMState1")
    load = next(m for m in entry.interface.members if m.name == "Load")
    (duty,) = validation_duties(entry.metadata, load)
    assert (duty.flow, duty.senders, duty.receivers) == ("in-arg", ("qemu",), ("helper",))


# --- dbus-daemon accepts what we generate --------------------------------------------------------


def test_dbus_daemon_accepts_every_generated_config(registry: Registry) -> None:
    from tests.dbusmatrix.harness import MatrixUnavailable, all_users, check_available, validate_configs

    try:
        check_available()
    except MatrixUnavailable as reason:
        pytest.skip(f"cannot start dbus-daemon under test users here: {reason}")
    configs = []
    for name in BUILTIN_DEPLOYMENTS:
        deployment: Deployment = builtin_deployment(name)
        for scenario in SCENARIOS:
            text = generate_policy(registry, deployment, scenario, listen="unix:path=@SOCKET@")
            configs.append((f"{name}/{scenario}", text, deployment.bus_user_in(scenario), all_users(deployment)))
    for result in validate_configs(configs):
        assert result["address"].startswith("unix:path="), result
        assert result["stderr"] == "", f"{result['label']}: {result['stderr']}"


def test_member_trust_summary_names_each_value_once(registry: Registry) -> None:
    # RegisterListener's arg has a Unix and a Windows variant: one value to validate, not two.
    register = member_trust_notes(registry, "org.qemu.Display1.Console", "RegisterListener").summary(notes=False)
    assert register.count("listener") == 1
    assert register.endswith("QEMU validates listener (in-arg).")
    # Values with the same validators and direction share one sentence.
    info = member_trust_notes(registry, "org.qemu.Display1.Console", "SetUIInfo").summary(notes=False)
    assert info.endswith("QEMU validates width_mm, height_mm, xoff, yoff, width and height (in-args).")
    # With the notes, each variant keeps its own note (they say different things).
    with_notes = member_trust_notes(registry, "org.qemu.Display1.Console", "RegisterListener").validations(notes=True)
    assert len(with_notes) == 2
