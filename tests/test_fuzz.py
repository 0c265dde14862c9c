"""The fuzz test: registry files and peer replies, mutated, through every stage (parse, check, the
text/JSON/SARIF/GitHub printers, the Sphinx renderer, diff, the bus-policy generator and conform's
comparison): no exception, printed lines that stay one line each, and no case over a time bound
that grows with the input's size.

Bounded and seeded in ``make check`` (a few seconds); ``make fuzz`` runs many more examples, with
fresh seeds (``QEMU_DBUS_FUZZ_EXAMPLES``).  Mutations are both byte-level (a few characters
replaced, inserted, deleted) and structural, the shapes hostile input takes: the file on one line,
an element repeated thousands of times, pathological text (a run of spaces in a reference, a
thousand attributes) inserted anywhere.

The bus-policy generator gets deployments and registries of its own (at the end of the file):
generated deployment files and renamed or mutated registry files go through ``policy``, which
must refuse them with located problems or write a configuration that grants nothing unasked and
that a real dbus-daemon loads.

The time bound is generous (a second plus 200 microseconds a byte: a hundred times what a case
takes here) so a loaded machine never fails it, and still catches quadratic work: 10,000 elements
on one line took 20 s before the parser was made linear.
"""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Callable
from functools import cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from lxml import etree

from sphinxext_qemudbus.check.checker import check_files
from sphinxext_qemudbus.check.summary import CheckOptions
from sphinxext_qemudbus.compat.diff import diff_interfaces
from sphinxext_qemudbus.diagnostics.output import render
from sphinxext_qemudbus.live.conform import BusFacts, compare_object, parse_reply
from sphinxext_qemudbus.model.introspection import Property
from sphinxext_qemudbus.model.metadata import ROLES
from sphinxext_qemudbus.model.names import interface_name_error, member_name_error
from sphinxext_qemudbus.model.parser import ParsedFile, parse_bytes
from sphinxext_qemudbus.model.registry import Registry
from sphinxext_qemudbus.security.deployment import (
    SCENARIOS,
    Deployment,
    DeploymentError,
    User,
    builtin_deployment,
    parse_deployment,
)
from sphinxext_qemudbus.security.policy import generate_policy
from sphinxext_qemudbus.sphinx.render import file_entries, interface_entry
from tests.dbusmatrix.harness import require_matrix, unasked_rules, validate_configs

# A failing example is a whole file: let Hypothesis print it instead of failing on its size.
pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")

ROOT = Path(__file__).resolve().parent.parent
REGISTRY_FILES = sorted((ROOT / "interfaces").glob("*.xml"))
SAMPLES = [path.read_bytes() for path in REGISTRY_FILES]
EXAMPLES = int(os.environ.get("QEMU_DBUS_FUZZ_EXAMPLES", "0"))
LONG = EXAMPLES > 0
FUZZ = settings(
    max_examples=EXAMPLES or 60,
    derandomize=not LONG,  # make check: the same examples every run; make fuzz: fresh ones
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)
SECONDS, SECONDS_PER_BYTE = 1.0, 200e-6


@cache
def registry() -> Registry:
    return Registry.load([ROOT / "interfaces"])


def printed_lines_stay_lines(diagnostics: list) -> None:  # type: ignore[type-arg]
    for fmt in ("text", "github"):
        lines = render(diagnostics, fmt).splitlines()
        assert len(lines) == len(diagnostics), fmt
        assert all(line.isprintable() for line in lines), fmt
    render(diagnostics, "json").encode("utf-8")
    render(diagnostics, "sarif").encode("utf-8")


def every_stage(data: bytes, original: ParsedFile | None) -> None:
    """The file through every stage that reads introspection XML."""
    parsed = parse_bytes(data, "fuzz.xml")
    for profile in ("qemu", "generic"):
        diagnostics = check_files([parsed], CheckOptions(profile))
        assert not [d for d in diagnostics if d.code == "X099"], diagnostics
        assert all(d.location.path == "fuzz.xml" and d.location.line >= 0 for d in diagnostics)
        printed_lines_stay_lines(diagnostics)
    if parsed.node is None:
        return
    file_entries(parsed.interfaces)
    deployment = builtin_deployment("default")
    for interface in parsed.interfaces:
        interface_entry(interface, deployment=deployment)
    if original is not None:
        printed_lines_stay_lines(diff_interfaces(original.interfaces, parsed.interfaces))
        printed_lines_stay_lines(diff_interfaces(parsed.interfaces, original.interfaces))
        names = {i.name for i in parsed.interfaces}
        others = [f for f in registry().files if not {i.name for i in f.interfaces} & names]
        mutated = Registry([*others, parsed])
        refused = refusal_of(lambda: generate_policy(mutated, deployment, SCENARIOS[len(data) % len(SCENARIOS)]))
        assert refused is None or refused.problems  # names it cannot trust, XML errors: located


def refusal_of(function: Callable[[], object]) -> DeploymentError | None:
    """The `DeploymentError` ``function`` raises, or None: any other exception fails the test."""
    try:
        function()
    except DeploymentError as refusal:
        return refusal
    return None


def conform_compares(reply: bytes, values: dict[str, str]) -> None:
    """A peer's Introspect reply (and the property types its GetAll sent) against the registry."""
    live = parse_reply("org.qemu", "/org/qemu/Display1/VM", reply.decode("utf-8", "surrogateescape"))
    facts = BusFacts(
        ":1.7",
        {"org.qemu": (":1.7",)},
        {(live.path, name): values for name in ("org.qemu.Display1.VM", "org.qemu.Display1.Console")},
    )
    for platform in ("unix", "windows"):
        printed_lines_stay_lines(compare_object(registry(), "org.qemu", live, platform, facts))


class _OverBound(BaseException):
    """Not an Exception: the checker's own ``except Exception`` (X099) cannot swallow it."""


def within_bound(function: Callable[[], None], size: int) -> None:
    """Run ``function``, failing it once it takes longer than the bound for ``size`` bytes (an
    interval timer interrupts it: quadratic work on a large input must fail, not run for hours)."""
    bound = SECONDS + SECONDS_PER_BYTE * size

    def expire(signum: int, frame: object) -> None:
        raise _OverBound

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, bound)
    try:
        function()
    except _OverBound:
        raise AssertionError(f"over the time bound for {size} bytes ({bound:.1f} s)") from None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# --- mutations ---------------------------------------------------------------------------------

CHUNKS = [
    b"<",
    b">",
    b'"',
    b"&",
    b"&#10;",
    b"&#x202e;",
    b"<?if x?>",
    b"<?endif?>",
    b"<?else?>",
    b"<!--",
    b"-->",
    b"<!-- Ghost: -->",
    b"\x00",
    b"\xff",
    b"a{",
    b"(",
    b"@",
    b"\n",
    b":dbus:meth:`X`",
    b":dbus:meth:`.Press`",
    b'<method name="M"/>',
    b'<property name="P" type="u" access="read"/>',
    b'<arg name="x" type="u"/>',
    b'<!DOCTYPE node [<!ENTITY e "x">]>',
    b"&e;",
    b"\xe2\x80\xae",  # U+202E in UTF-8
]
# Shapes that once cost quadratic time or worse, and where in a file they go: among the members
# (before the first <method), into a doc comment's body, or into a start tag.
PATHOLOGICAL = [
    (b":dbus:meth:`~a" + b" " * 20_000 + b"b`", "doc"),
    (b" :dbus:meth:`.Foo`" * 2_000, "doc"),
    (b"\nSince: 1.0 Since: 1.0" * 1_000, "doc"),
    (b"Since: 1.0 " * 2_000, "doc"),
    (b"\n    more" * 2_000, "doc"),
    (b"<q/>" * 5_000, "members"),
    (b"<!-- x: -->" * 2_000, "members"),
    (b"<?x?>" * 2_000, "members"),
    (b"<q/>t" * 2_000, "members"),
    (b"<q/>\n&#1234;\n" * 2_000, "members"),  # stray text not written as it reads
    (b"<?if $(env.HOST_OS) == windows?>" * 500 + b"<?endif?>" * 500, "members"),
    (b"".join(b' a%d="v"' % k for k in range(2_000)), "tag"),
]


def insert(data: bytes, chunk: bytes, where: str) -> bytes:
    """``chunk`` put among the members, into the first doc comment after ``<interface``, or into
    the first ``<method`` start tag (among the members when the file has no such place)."""
    interface = data.find(b"<interface")
    comment = data.find(b"<!--", max(interface, 0))
    if where == "doc" and interface >= 0 and comment >= 0:
        position = data.index(b"-->", comment)
    elif where == "tag" and b"<method" in data:
        position = data.index(b"<method") + len(b"<method")
    else:
        position = data.find(b"<method")
        position = position if position >= 0 else data.rfind(b"</interface>")
    return data[: max(position, 0)] + chunk + data[max(position, 0) :]


@st.composite
def mutated(draw: st.DrawFn, samples: list[bytes]) -> bytes:
    """A real file, changed: byte edits, and sometimes a structural change as hostile input has."""
    data = bytearray(draw(st.sampled_from(samples)))
    shape = draw(st.sampled_from(["bytes", "bytes", "one line", "repeat", "pathological"]))
    if shape == "one line":
        data = bytearray(b" ".join(line.strip() for line in bytes(data).splitlines()))
    elif shape == "repeat":
        lines = bytes(data).splitlines(keepends=True)
        index = draw(st.integers(0, len(lines) - 1))
        lines[index] = lines[index] * draw(st.integers(2, 3_000))
        data = bytearray(b"".join(lines))
    elif shape == "pathological":
        chunk, where = draw(st.sampled_from(PATHOLOGICAL))
        data = bytearray(insert(bytes(data), chunk, where))
    for _ in range(draw(st.integers(0 if shape != "bytes" else 1, 6))):
        position = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(("replace", "insert", "delete")))
        chunk = draw(st.sampled_from(CHUNKS))
        if action == "replace" and position < len(data):
            data[position : position + len(chunk)] = chunk
        elif action == "insert":
            data[position:position] = chunk
        else:
            del data[position : position + draw(st.integers(1, 40))]
    return bytes(data)


# Peer replies: the registry's interfaces as a peer introspects them (no comments, no registry
# annotations; QEMU's own replies carry neither).
REPLIES = [
    re.sub(
        rb'<!--.*?-->|\s*<annotation name="org\.qemu\.Registry\.[^"]*" value="[^"]*"/>', b"", sample, flags=re.DOTALL
    )
    for sample in SAMPLES
]
SIGNATURES = st.text(st.sampled_from("sayuixtbdoghv(){}a\n\u202e"), max_size=6)


# --- the tests -------------------------------------------------------------------------------------


@given(st.binary(max_size=2000))
@FUZZ
def test_arbitrary_bytes(data: bytes) -> None:
    within_bound(lambda: every_stage(data, None), len(data))


@given(mutated(SAMPLES))
@FUZZ
def test_mutated_registry_files(data: bytes) -> None:
    original = parse_bytes(SAMPLES[0], "original.xml")
    for sample in SAMPLES:
        if data[:40] == sample[:40]:
            original = parse_bytes(sample, "original.xml")
            break
    within_bound(lambda: every_stage(data, original), len(data))


@given(mutated(REPLIES), st.dictionaries(st.sampled_from(["Name", "UUID", "Type", "Label", "Head"]), SIGNATURES))
@FUZZ
def test_mutated_peer_replies(reply: bytes, values: dict[str, str]) -> None:
    within_bound(lambda: conform_compares(reply, values), len(reply))


@pytest.mark.parametrize("shape", range(len(PATHOLOGICAL)))
def test_each_pathological_shape_alone_is_within_its_bound(shape: int) -> None:
    # The shapes the mutations insert, each on its own at twice the size, in a registry file
    # with methods and doc comments.
    chunk, where = PATHOLOGICAL[shape]
    sample = next(s for s in SAMPLES if b"<method" in s)
    data = insert(sample, chunk * 2, where)
    within_bound(lambda: every_stage(data, parse_bytes(sample, "original.xml")), len(data))


# --- policy: generated deployments and registries ------------------------------------------------
#
# Deployments drawn as files (most of them sensible, some values hostile), registries with a name
# or the XML of one file changed, any scenario and listen address: `policy` either refuses with
# located problems, or writes a configuration that is well-formed, grants nothing the deployment
# did not ask for (`harness.unasked_rules`), and that a real dbus-daemon loads without a word.

POLICY_REGISTRY = Registry.load([ROOT / "interfaces"])
ROLE_IMPLEMENTS = {
    role: sorted(e.interface.name for e in POLICY_REGISTRY if role in e.metadata.implementers) for role in ROLES
}
ROLE_CALLS = {role: sorted(e.interface.name for e in POLICY_REGISTRY if role in e.metadata.callers) for role in ROLES}
HOSTILE_VALUES = [
    "*", "", "org.*", ":1.2", "org.freedesktop.DBus", "a\x01b", "x\ny", "\u202e", "--", "]]>", "<!--", '"&<>',
    "root", "a" * 300, "org.qemu", "org.qemu.VMState1", "\ufffe",
]  # fmt: skip
HOSTILE_NAMES = ["*", "", "a.b", "Lo ad", "1x", "\u00fc", "x" * 300, "\u202e", "org.*", "Load", "Save"]


def toml_string(value: str) -> str:
    """``value`` as a TOML basic string: quotes, backslashes and control characters escaped."""
    out = []
    for character in value:
        if character in '"\\':
            out.append("\\" + character)
        elif ord(character) < 0x20 or ord(character) == 0x7F:
            out.append(f"\\u{ord(character):04x}")
        else:
            out.append(character)
    return '"' + "".join(out) + '"'


def toml_list(values: list[str]) -> str:
    return "[" + ", ".join(toml_string(value) for value in values) + "]"


@st.composite
def deployment_files(draw: st.DrawFn) -> str:
    """A deployment file: QEMU, helpers, clients and a manager implementing and owning what their
    roles do, under users of their own; now and then a value replaced by a hostile one."""

    # At most one value per file is hostile (the one at position ``slot``, if there is one), so
    # that about half of the files are valid and reach the generator and the daemon.
    slot = draw(st.sampled_from(range(-40, 40)))
    count = [0]

    def maybe(value: str) -> str:
        count[0] += 1
        return draw(st.sampled_from(HOSTILE_VALUES)) if count[0] == slot else value

    def user(k: int) -> str:
        count[0] += 1
        uid = draw(st.sampled_from([0, 2**32 - 1, 60000])) if count[0] == slot else 60000 + k
        return f"{{ name = {toml_string(maybe(f'u{k}'))}, uid = {uid} }}"

    roles = ["qemu", *draw(st.lists(st.sampled_from(["helper", "client", "manager"]), max_size=5))]
    if draw(st.sampled_from([False] * 14 + [True])):  # (integers are drawn near 0 far more often)
        roles.append("qemu")  # a second QEMU
    lines = [f"[deployment]\nname = {toml_string(maybe('fuzz'))}\ndescription = {toml_string(maybe('d'))}\n"]
    lines.append(f"[bus]\nuser = {user(0)}\n")
    for k, role in enumerate(roles, start=1):
        served, called = ROLE_IMPLEMENTS[role], ROLE_CALLS[role]
        implements = draw(st.lists(st.sampled_from(served), unique=True, max_size=4)) if served else []
        owns = sorted(
            {
                str(POLICY_REGISTRY.metadata(name).bus_name)
                for name in implements
                if POLICY_REGISTRY.metadata(name).bus_name and len(POLICY_REGISTRY.metadata(name).implementers) == 1
            }
        )
        if role == "helper" and draw(st.booleans()):
            owns.append(f"vm.helper.p{k}")
        owns = [maybe(name) for name in owns] + ([maybe("x.y")] if draw(st.sampled_from([False] * 4 + [True])) else [])
        peer = [
            "[[peer]]",
            f"id = {toml_string(maybe(f'p{k}'))}",
            f"label = {toml_string(maybe(f'peer {k}'))}",
            f"role = {toml_string(role)}",
            f"user = {user(k)}",
            f"implements = {toml_list([maybe(name) for name in implements])}",
            f"owns = {toml_list(list(dict.fromkeys(owns)))}",
        ]
        if draw(st.sampled_from([False] * 3 + [True])):
            peer.append(
                f"calls = {toml_list([maybe(n) for n in draw(st.lists(st.sampled_from(called), unique=True, max_size=3))] if called else [])}"
            )
        lines.append("\n".join(peer) + "\n")
    return "\n".join(lines)


@st.composite
def registry_variants(draw: st.DrawFn) -> tuple[Registry, bool]:
    """The registry, or with one file changed: a method, signal or interface renamed (perhaps
    to something that is no name), or the file's XML mutated.  With whether it still holds only
    valid names."""
    change = draw(st.sampled_from(["none", "none", "member", "interface", "xml"]))
    if change == "none":
        return POLICY_REGISTRY, True
    index = draw(st.integers(0, len(SAMPLES) - 1))
    data = SAMPLES[index]
    if change == "xml":
        data = draw(mutated([data]))
    else:
        element = b"<interface " if change == "interface" else draw(st.sampled_from([b"<method ", b"<signal "]))
        start = data.find(element)
        if start < 0:
            return POLICY_REGISTRY, True
        name_start = data.index(b'name="', start) + len(b'name="')
        name_end = data.index(b'"', name_start)
        new = draw(st.sampled_from(HOSTILE_NAMES)).encode()
        data = data[:name_start] + new.replace(b"&", b"&amp;").replace(b'"', b"&quot;") + data[name_end:]
    path = str(REGISTRY_FILES[index])
    files = [parse_bytes(sample, str(p)) for p, sample in zip(REGISTRY_FILES, SAMPLES) if str(p) != path]
    variant = Registry([*files, parse_bytes(data, path)])
    valid = not any(
        interface_name_error(e.interface.name)
        or any(member_name_error(m.name) for m in e.interface.members if not isinstance(m, Property))
        for e in variant
    )
    return variant, valid


LISTENS = st.sampled_from(["unix:path=@SOCKET@"] * 12 + ["unix:path=@SOCKET@\x01", " x", ""])
DAEMON_CONFIGS: list[tuple[str, str, User, list[User]]] = []


@given(deployment_files(), registry_variants(), st.sampled_from(SCENARIOS), LISTENS)
@example("", (POLICY_REGISTRY, True), "many-uids", "unix:path=@SOCKET@")  # the lock-down example
@FUZZ
def test_generated_deployments_and_registries_through_policy(
    text: str, variant: tuple[Registry, bool], scenario: str, listen: str
) -> None:
    registry, valid_names = variant
    text = text or (ROOT / "sphinxext_qemudbus" / "security" / "deployments" / "lockdown.toml").read_text()
    outcome = policy_or_refusal(text, registry, scenario, listen)
    if isinstance(outcome, DeploymentError):
        assert outcome.problems
        assert all(problem.location.path for problem in outcome.problems)
        event(f"refused: {outcome.problems[0].message.split(':')[0][:40]}")
        return
    deployment, config = outcome
    event("written")
    assert valid_names, "a registry with a name that is no D-Bus name was trusted with a policy"
    etree.fromstring(config.encode(), etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False))
    assert unasked_rules(config, registry, deployment, scenario) == []
    users = list(dict.fromkeys([deployment.bus_user, *(peer.user for peer in deployment.peers)]))
    DAEMON_CONFIGS.append((f"example {len(DAEMON_CONFIGS)}", config, deployment.bus_user_in(scenario), users))


def policy_or_refusal(
    text: str, registry: Registry, scenario: str, listen: str
) -> tuple[Deployment, str] | DeploymentError:
    try:
        deployment = parse_deployment(text, "fuzz.toml")
        return deployment, generate_policy(registry, deployment, scenario, listen)
    except DeploymentError as refusal:
        return refusal


def test_the_generated_configurations_load_in_a_real_dbus_daemon() -> None:
    """The configurations the test above accepted, each started in a real dbus-daemon under
    its bus user with its users in the passwd database: it prints its address and no warning
    (a rule it would drop, a user it cannot find).  Runs after the test above (file order)."""
    require_matrix()
    if not DAEMON_CONFIGS:
        pytest.skip("run with the test above: it collects the configurations")
    for result in validate_configs(DAEMON_CONFIGS):
        assert result["address"].startswith("unix:path="), result
        assert result["stderr"] == "", f"{result['label']}: {result['stderr']}"


def test_unasked_rules_sees_a_widened_policy() -> None:
    """The oracle can fail: a name, a wildcard and a message nobody asked for."""
    lockdown = builtin_deployment("lockdown")
    config = generate_policy(POLICY_REGISTRY, lockdown, "many-uids")
    assert unasked_rules(config, POLICY_REGISTRY, lockdown, "many-uids") == []
    for extra in (
        '<allow own="org.qemu"/>',
        '<allow send_destination="*"/>',
        '<allow send_destination="vm.helper.tpm" send_interface="org.qemu.VMState1" send_member="Save" '
        'send_path="/org/qemu/VMState1" send_type="method_call"/>',
    ):
        widened = config.replace('<allow own="vm.helper.net"/>', f'<allow own="vm.helper.net"/>{extra}')
        assert len(unasked_rules(widened, POLICY_REGISTRY, lockdown, "many-uids")) == 1, extra


# --- the transport: byte streams from a hostile peer ----------------------------------------------
#
# Messages framed as the specification says (a fixed header whose lengths are right, header
# fields, padding) around bodies that are not: values written by jeepney for the registry's own
# signatures, then bytes of the body replaced, the body cut or lengthened, the signature swapped.
# A stream of them, cut into pieces at random, goes through the wire reader, and every message it
# lets through goes through the traffic check (its body decoded on the way).  Nothing may raise but
# the reader's own refusal, a message jeepney wrote unchanged must come back with its values, and
# the whole stream stays within the time bound for its size.

REGISTERED_MESSAGES = sorted(
    (
        interface.name,
        m.name,
        "".join(a.type for a in m.args if a.direction.value == ("in" if m.kind == "method" else "out")),
    )
    for entry in registry()
    for interface in [entry.interface]
    for m in interface.members
    if m.kind in ("method", "signal")
)
REGISTERED_MESSAGES = [m for m in REGISTERED_MESSAGES if "h" not in m[2]]  # no descriptors here
SIGNATURE_SWAPS = [
    "",
    "a()",
    "a{vs}",
    "(",
    "av",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaay",
    "v",
    "s",
    "ay",
    "iiiiuuay",
    "z",
    "a{sv}",
]


def values_for(code: str) -> st.SearchStrategy[object]:
    """Values of one complete type, as jeepney writes them."""
    from sphinxext_qemudbus.model.signature import parse_single_type

    kind = parse_single_type(code)
    if kind.kind == "basic":
        return {
            "y": st.integers(0, 255),
            "b": st.booleans(),
            "n": st.integers(-(1 << 15), (1 << 15) - 1),
            "q": st.integers(0, (1 << 16) - 1),
            "i": st.integers(-(1 << 31), (1 << 31) - 1),
            "u": st.integers(0, (1 << 32) - 1),
            "x": st.integers(-(1 << 63), (1 << 63) - 1),
            "t": st.integers(0, (1 << 64) - 1),
            "d": st.floats(allow_nan=False),
            "s": st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"), max_size=12),
            "o": st.sampled_from(["/", "/org/qemu/Display1/Listener", "/a/b_2"]),
            "g": st.sampled_from(["", "s", "a{sv}", "(iu)"]),
        }[code]
    if kind.kind == "variant":
        return st.one_of(st.tuples(st.just("s"), values_for("s")), st.tuples(st.just("u"), values_for("u")))
    if code == "ay":
        return st.binary(max_size=64)
    if kind.kind == "array":
        return st.lists(values_for(kind.children[0].code), max_size=4)
    if kind.kind == "dict":
        return st.dictionaries(values_for(kind.children[0].code), values_for(kind.children[1].code), max_size=3)
    return st.tuples(*(values_for(child.code) for child in kind.children))


@st.composite
def peer_messages(draw: st.DrawFn, serial: int) -> tuple[bytes, tuple[object, ...] | None]:
    """One message as a hostile peer frames it: (its bytes, the values jeepney wrote when the
    body was left as written, else None)."""
    from jeepney import DBusAddress, new_method_call, new_signal

    from sphinxext_qemudbus.model.signature import parse_signature

    from .hostile import METHOD_CALL, NO_REPLY, SIGNAL, interface, member, message, path, signature

    name, member_name, sig = draw(st.sampled_from(REGISTERED_MESSAGES))
    values = tuple(draw(values_for(t.code)) for t in parse_signature(sig))
    address = DBusAddress("/org/qemu/Display1/Listener", "org.qemu", name)
    maker = new_signal if draw(st.booleans()) else new_method_call
    written = maker(address, member_name, sig or None, values)
    data = written.serialise(serial=serial)
    fields_end = 16 + int.from_bytes(data[12:16], "little")
    start = fields_end + (-fields_end % 8)
    body = bytearray(data[start:])
    changed = False
    for _ in range(draw(st.integers(0, 4))):
        if body:
            body[draw(st.integers(0, len(body) - 1))] = draw(st.integers(0, 255))
            changed = True
    if draw(st.integers(0, 9)) == 0:
        body = body[: draw(st.integers(0, len(body)))] + draw(st.binary(max_size=16))
        changed = True
    if draw(st.integers(0, 9)) == 0:
        sig = draw(st.sampled_from(SIGNATURE_SWAPS))
        changed = True
    kind = SIGNAL if maker is new_signal else METHOD_CALL
    fields = [path("/org/qemu/Display1/Listener"), interface(name), member(member_name)]
    fields += [signature(sig.encode())] if sig else []
    framed = message(kind, serial, fields, bytes(body), flags=0 if kind == SIGNAL else NO_REPLY)
    return framed, (None if changed else values)


def plain(value: object) -> object:
    import array

    if isinstance(value, memoryview):
        return value.tobytes()
    if isinstance(value, (array.array, list)):
        return [plain(item) for item in value]
    if isinstance(value, tuple):
        return tuple(plain(item) for item in value)
    if isinstance(value, dict):
        return {plain(k): plain(v) for k, v in value.items()}
    return value


def read_stream(pieces: list[bytes], expected: list[tuple[object, ...] | None]) -> None:
    """The pieces through the wire reader, the messages through the traffic check."""
    from sphinxext_qemudbus.live.message import MessageError, OverBound
    from sphinxext_qemudbus.live.traffic import Seen, TrafficCheck
    from sphinxext_qemudbus.live.wire import Reader

    reader = Reader("QEMU")
    check = TrafficCheck(registry(), None, "unix")
    taken = 0
    for piece in pieces:
        reader.feed(piece)
        while True:
            refused: MessageError | None = None
            try:
                received = reader.take()
            except OverBound:
                taken += 1
                continue
            except MessageError as error:
                refused = error
            if refused is not None:
                assert "\n" not in str(refused)
                assert expected[taken] is None, f"a message jeepney wrote was refused: {refused}"
                return
            if received is None:
                break
            message = received.message
            body = message.body  # decodes: never fails once validated
            if expected[taken] is not None:
                assert [plain(v) for v in body] == [plain(v) for v in expected[taken]]
            check.check(Seen.of(message, len(received.fds)), "Console_0 display", "Console_0 display", "conform")
            taken += 1
    assert taken == len(expected)
    printed_lines_stay_lines(check.findings.result())


@given(st.lists(peer_messages(7), min_size=1, max_size=6), st.lists(st.integers(1, 300), min_size=1, max_size=20))
@FUZZ
def test_hostile_byte_streams_through_the_wire_reader_and_the_traffic_check(
    messages: list[tuple[bytes, tuple[object, ...] | None]], cuts: list[int]
) -> None:
    stream = b"".join(data for data, _ in messages)
    pieces, position = [], 0
    for cut in cuts * (1 + len(stream) // max(1, sum(cuts))):
        if position >= len(stream):
            break
        pieces.append(stream[position : position + cut])
        position += cut
    pieces.append(stream[position:])
    within_bound(lambda: read_stream(pieces, [values for _, values in messages]), len(stream))
