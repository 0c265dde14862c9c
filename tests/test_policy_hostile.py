"""Hostile registries and deployments against ``qemu-dbus policy`` and the TOML readers (issue 21):
whatever the input, one located error per problem and exit status 2, or a configuration that
dbus-daemon reads as it is written; never a traceback, a wildcard, or a rule for another user."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from sphinxext_qemudbus.cli import main
from sphinxext_qemudbus.model.registry import RELEASE_FILE, Registry, read_registry_file
from sphinxext_qemudbus.security.deployment import DeploymentError, parse_deployment

from .test_policy import GOOD, REGISTRY

ROOT = Path(__file__).resolve().parent.parent
LOCKDOWN = ROOT / "sphinxext_qemudbus" / "security" / "deployments" / "lockdown.toml"
DEEP = 5_000  # far beyond the recursion limit of every Python

Run = Callable[..., "tuple[int, str, str]"]


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Run:
    def run(*argv: str) -> tuple[int, str, str]:
        status = main(list(argv))
        out, err = capsys.readouterr()
        return status, out, err

    return run


def registry_copy(tmp_path: Path, settings: str | None = None) -> Path:
    folder = tmp_path / "registry"
    shutil.copytree(REGISTRY, folder)
    if settings is not None:
        (folder / RELEASE_FILE).write_text(settings)
    return folder


# --- deep nesting in TOML ------------------------------------------------------------------------

#: Values nested far deeper than a parser that recurses can go, in each shape TOML has: arrays,
#: inline tables, both mixed, and dotted keys (which the parser builds without recursing, but
#: whose tables then break whatever walks them).
NESTED = {
    "arrays": "[" * DEEP + "]" * DEEP,
    "inline tables": "{a = " * DEEP + "1" + "}" * DEEP,
    "mixed": "[{a = " * (DEEP // 2) + "1" + "}]" * (DEEP // 2),
}
DOTTED = "a" + ".a" * DEEP + " = 1"


def with_value(text: str, value: str, table: str = "[deployment]") -> str:
    """``text`` with ``x = value`` as the first key of ``table``."""
    return text.replace(f"{table}\n", f"{table}\nx = {value}\n", 1)


@pytest.mark.parametrize("shape", sorted(NESTED))
def test_a_deeply_nested_deployment_is_one_located_error(shape: str) -> None:
    with pytest.raises(DeploymentError) as caught:
        parse_deployment(with_value(GOOD, NESTED[shape]), "deep.toml")
    (problem,) = caught.value.problems
    assert re.fullmatch(
        r"deep\.toml:2:\d+: error: nested deeper than 32 (arrays and inline tables|levels).*", problem.format()
    )


def test_dotted_keys_nested_too_deep_are_refused() -> None:
    with pytest.raises(DeploymentError) as caught:
        parse_deployment(GOOD.replace("[bus]\n", f"[bus]\n{DOTTED}\n", 1), "deep.toml")
    (problem,) = caught.value.problems
    assert problem.format().startswith("deep.toml:")
    assert "nested deeper than 32" in problem.message


def test_brackets_inside_strings_and_comments_are_not_nesting() -> None:
    brackets = "[" * 100 + "{" * 100
    text = GOOD.replace(
        'name = "tiny"',
        f'name = "tiny"\ndescription = """{brackets}"""  # {brackets}\nx_ = 1',
    )
    with pytest.raises(DeploymentError) as caught:
        parse_deployment(text, "tiny.toml")
    # the one problem is the unknown key: the brackets were read as text
    assert [p.message for p in caught.value.problems] == ["unknown key 'x_' in [deployment] (known: description, name)"]
    for quoted in (f"'{brackets}'", f"'''{brackets}'''", f'"\\"{brackets}"', f'"""\\"""{brackets}"""'):
        deployment = parse_deployment(GOOD.replace('name = "tiny"', f'name = "tiny"\ndescription = {quoted}'), "t.toml")
        assert brackets in deployment.description


@pytest.mark.parametrize("shape", sorted(NESTED))
def test_a_deeply_nested_registry_toml_is_m303(tmp_path: Path, shape: str) -> None:
    folder = registry_copy(tmp_path, f'qemu-release = "10.1"\nx = {NESTED[shape]}\n')
    settings = read_registry_file(str(folder))
    (problem,) = settings.problems
    assert problem.code == "M303"
    assert problem.location.path.endswith(RELEASE_FILE)
    assert problem.location.line == 2
    assert "nested deeper than 32" in problem.message


def test_a_dotted_pages_key_nested_too_deep_is_m303(tmp_path: Path) -> None:
    folder = registry_copy(tmp_path, f'qemu-release = "10.1"\n[pages]\n"org.qemu".{DOTTED}\n')
    (problem,) = read_registry_file(str(folder)).problems
    assert problem.code == "M303"
    assert "nested deeper than 32" in problem.message


def test_every_command_that_reads_deep_toml_exits_2_with_the_location(run: Run, tmp_path: Path) -> None:
    folder = registry_copy(tmp_path, f'qemu-release = "10.1"\nx = {NESTED["arrays"]}\n')
    deployment = tmp_path / "deep.toml"
    deployment.write_text(with_value(LOCKDOWN.read_text(), NESTED["inline tables"]))
    where = f"{folder / RELEASE_FILE}:2:"
    for argv in (
        ("registry", "list", "--registry", str(folder)),
        ("registry", "show", "VMState1", "--registry", str(folder)),
        ("policy", "--scenario", "many-uids", "--registry", str(folder)),
        ("policy", "--scenario", "many-uids", "--registry", str(folder), "--diagram", "text"),
        ("conform", "--address", "unix:path=/nonexistent", "--dest", "org.qemu", "--registry", str(folder)),
    ):
        status, out, err = run(*argv)
        assert status == 2, argv
        assert where in out + err, (argv, out, err)
        assert "Traceback" not in err
    status, out, err = run("policy", "--scenario", "many-uids", "--deployment", str(deployment))
    assert (status, out) == (2, "")
    assert re.match(rf"{re.escape(str(deployment))}:\d+:\d+: error: nested deeper than 32", err), err


@pytest.mark.sphinx("html", testroot="policy", srcdir="policy-deep-toml", freshenv=True)
def test_sphinx_warns_at_the_directive_instead_of_aborting(
    app: Any, built: Callable[[Any], Any], make_app: Any, app_params: Any, tmp_path: Path
) -> None:
    source = Path(app.srcdir)
    (source / "deep.toml").write_text(with_value(LOCKDOWN.read_text(), NESTED["arrays"]))
    (source / "deep.rst").write_text(
        ":orphan:\n\nDeep\n====\n\n.. dbus-policy::\n   :scenario: many-uids\n   :deployment: deep.toml\n"
    )
    app.build()
    warnings = [w for w in built(app).warnings() if "deep.rst" in w]
    assert len(warnings) == 1, warnings
    assert "deep.toml:" in warnings[0]
    assert "nested deeper than 32" in warnings[0]
    # and a registry whose registry.toml nests too deep, with a method named "*": the build goes
    # on, and each policy directive warns instead of showing a policy with a wildcard
    folder = rename_member(tmp_path, "Load", "*")
    (folder / RELEASE_FILE).write_text(f'qemu-release = "10.1"\nx = {NESTED["mixed"]}\n')
    args, kwargs = app_params
    again = make_app(*args, **{**kwargs, "confoverrides": {"dbus_registry_path": str(folder)}, "freshenv": True})
    again.build()
    warnings = built(again).warnings()
    assert not [w for w in warnings if "Recursion" in w]
    assert [w for w in warnings if "index.rst" in w and "invalid method name '*'" in w and "[S102]" in w]
    assert 'send_member="*"' not in built(again).html("index")


# --- control characters ----------------------------------------------------------------------------


def config_parses(text: str) -> etree._Element:
    return etree.fromstring(text.encode(), etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False))


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("description", "\\u0001"),
        ("description", "line\\u001b[2J"),
        ("description", "\\u007f"),
        ("description", "\\uFFFE"),
        ("description", "bidi \\u202e"),
        ("name", "tiny\\u0000"),
        ("label", "the \\u0007 helper"),
    ],
)
def test_control_characters_in_a_deployment_are_refused_where_they_are(key: str, value: str) -> None:
    table = "[deployment]" if key != "label" else "[[peer]]"
    text = GOOD.replace('name = "tiny"\n', "", 1) if key == "name" else GOOD
    text = text.replace(f"{table}\n", f'{table}\n{key} = "{value}"\n', 1)
    with pytest.raises(DeploymentError) as caught:
        parse_deployment(text, "tiny.toml")
    (problem,) = caught.value.problems
    assert re.match(r"tiny\.toml:\d+: error: ", problem.format()), problem.format()
    assert "character" in problem.message
    assert "\\\\u" in repr(problem.message) or "\\\\x" in repr(problem.message)


def test_a_multi_line_description_is_prose(run: Run, tmp_path: Path) -> None:
    path = tmp_path / "tiny.toml"
    path.write_text(GOOD.replace('name = "tiny"', 'name = "tiny"\ndescription = """two\n\tlines"""'))
    status, out, err = run("policy", "--scenario", "many-uids", "--deployment", str(path), "--registry", REGISTRY)
    assert (status, err) == (0, "")
    config_parses(out)
    assert "Deployment: two lines." in out


@pytest.mark.parametrize(
    "listen", ["unix:path=/run/x\x01", "unix:path=/run/x\x1b[2J", "unix:path=/x\u202e", " unix:path=/x", ""]
)
def test_a_listen_address_with_control_characters_is_refused(run: Run, listen: str) -> None:
    status, out, err = run("policy", "--scenario", "many-uids", "--registry", REGISTRY, "--listen", listen)
    assert (status, out) == (2, "")
    assert err.count("\n") == 1
    assert err.isprintable() or err[:-1].isprintable()
    assert "listen address" in err


# --- names the policy would have to trust ----------------------------------------------------------


def rename_member(tmp_path: Path, old: str, new: str, interface: str = "org.qemu.VMState1") -> Path:
    folder = registry_copy(tmp_path)
    path = folder / f"{interface}.xml"
    text = path.read_text()
    assert f'name="{old}"' in text
    path.write_text(text.replace(f'name="{old}"', f'name="{new}"', 1))
    return folder


@pytest.mark.parametrize(("old", "new"), [("Load", "*"), ("Load", "Lo ad"), ("Save", ""), ("Load", "a.b")])
def test_a_member_name_that_is_no_member_name_is_refused(run: Run, tmp_path: Path, old: str, new: str) -> None:
    """A member named ``*`` became ``send_member="*"``: a wildcard that let calls to any VM
    method through.  Every name the policy writes must be a valid D-Bus name, with the checker's
    code and the line of the member in the XML."""
    folder = rename_member(tmp_path, old, new)
    line = next(
        n
        for n, text in enumerate((folder / "org.qemu.VMState1.xml").read_text().splitlines(), 1)
        if f'name="{new}"' in text
    )
    status, out, err = run("policy", "--scenario", "many-uids", "--deployment", "lockdown", "--registry", str(folder))
    assert (status, out) == (2, "")
    assert err.count("\n") == 1, err
    assert re.match(rf"{re.escape(str(folder / 'org.qemu.VMState1.xml'))}:{line}(:\d+)?: error: .*\[S102\]$", err), err


def test_an_interface_name_that_is_no_interface_name_is_refused(run: Run, tmp_path: Path) -> None:
    folder = registry_copy(tmp_path)
    source = folder / "org.qemu.VMState1.xml"
    source.write_text(source.read_text().replace('name="org.qemu.VMState1"', 'name="org.qemu.*"'))
    deployment = tmp_path / "star.toml"
    deployment.write_text(
        LOCKDOWN.read_text().replace('implements = ["org.qemu.VMState1"]', 'implements = ["org.qemu.*"]')
    )
    status, out, err = run(
        "policy", "--scenario", "many-uids", "--deployment", str(deployment), "--registry", str(folder)
    )
    assert (status, out) == (2, "")
    assert "[S101]" in err
    assert err.startswith(f"{source}:")


def test_a_deployment_built_in_code_cannot_sneak_a_wildcard_in(tmp_path: Path) -> None:
    """The generator refuses to write any attribute that is not valid for its kind, whoever made
    the deployment (one built in code never went through the file's checks)."""
    from dataclasses import replace

    from sphinxext_qemudbus.security.deployment import builtin_deployment
    from sphinxext_qemudbus.security.policy import generate_policy

    registry = Registry.load([REGISTRY])
    lockdown = builtin_deployment("lockdown")
    net = lockdown.peer("net")
    for peer in (replace(net, owns=(*net.owns, "*")), replace(net, owns=("org.qemu.VMState1", "vm.helper.*"))):
        hostile = replace(lockdown, peers=tuple(peer if p.id == "net" else p for p in lockdown.peers))
        with pytest.raises(DeploymentError, match=r"cannot write \w+='(\*|vm\.helper\.\*)' into a policy"):
            generate_policy(registry, hostile, "many-uids")


# --- users -----------------------------------------------------------------------------------------


def test_policies_name_users_by_number(run: Run) -> None:
    """dbus-daemon resolves a user name through the passwd database of the machine it runs on:
    a policy written by name grants whatever uid that machine gives the name.  Written by uid,
    it grants exactly the uid the deployment declares."""
    status, out, _ = run("policy", "--scenario", "many-uids", "--deployment", "lockdown", "--registry", REGISTRY)
    assert status == 0
    tree = config_parses(out)
    assert [p.get("user") for p in tree.iter("policy") if p.get("user")] == ["64501", "64502", "64503"]
    connect = [rule.get("user") for rule in tree.iter("allow") if rule.get("user")]
    assert connect == ["64501", "64502", "64503"]
    assert "qemu-net (64502)" in out  # the names stay, in comments


@pytest.mark.parametrize("where", ["bus", "peer"])
def test_a_user_named_root_is_refused(where: str) -> None:
    text = (
        GOOD.replace('{ name = "bus", uid = 7000 }', '{ name = "root", uid = 7000 }')
        if where == "bus"
        else GOOD.replace('{ name = "helper", uid = 7002 }', '{ name = "root", uid = 7002 }')
    )
    with pytest.raises(DeploymentError) as caught:
        parse_deployment(text, "tiny.toml")
    (problem,) = caught.value.problems
    assert re.match(r"tiny\.toml:\d+: error: user name 'root' is uid 0", problem.format()), problem.format()


# --- names a peer may queue for ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("peer", "name"),
    [("viewer", "org.qemu"), ("viewer", "org.qemu.VMState1"), ("net", "org.qemu"), ("vnc", "org.qemu.VMState1")],
)
def test_only_implementers_may_own_the_names_the_registry_gives(peer: str, name: str) -> None:
    """Callers look for a registry bus name's implementer there: QEMU calls every connection
    queued for org.qemu.VMState1 (dbus-vmstate walks the queue), and a connection that takes
    org.qemu before QEMU, or queues to take it over, receives what clients send QEMU."""
    from sphinxext_qemudbus.security.deployment import builtin_deployment, check_deployment

    registry = Registry.load([REGISTRY])
    text = (ROOT / "sphinxext_qemudbus" / "security" / "deployments" / "default.toml").read_text()
    head, tail = text.split(f'id = "{peer}"', 1)
    owns = re.search(r"owns = \[(.*)\]", tail)
    assert owns
    listed = owns.group(1) + ", " if owns.group(1) else ""
    tail = tail.replace(owns.group(0), f'owns = [{listed}"{name}"]', 1)
    problems = check_deployment(parse_deployment(f'{head}id = "{peer}"{tail}', "default.toml"), registry)
    assert len(problems) == 1, problems
    assert re.match(rf"default\.toml:\d+: error: peer '{peer}' owns {re.escape(name)}, ", problems[0].format())
    assert "which it does not implement" in problems[0].message
    assert check_deployment(builtin_deployment("default"), registry) == ()
