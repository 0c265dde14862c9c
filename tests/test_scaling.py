"""Every stage is linear in its input: generated files at n and 10n must cost about 10 times the
work, never about 100 times.  Work is counted, not timed (`helpers.count_work`): the count is the
same on a loaded machine, so the bound can be tight without ever flaking.

Each generator is a shape that hostile or minified input takes: many nodes on one line (the
checker once rescanned the line for each of them: 20 s for 10,000 elements), many attributes on
one element, many diagnostics about one owner, references that many interfaces could mean,
deeply nested or long-chained conditionals.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from sphinxext_qemudbus.check.checker import check_files
from sphinxext_qemudbus.check.summary import CheckOptions
from sphinxext_qemudbus.diagnostics.output import render
from sphinxext_qemudbus.diagrams.sequence import parse_sequence
from sphinxext_qemudbus.diagrams.svg import render_svg
from sphinxext_qemudbus.live.conform import compare_object, parse_reply
from sphinxext_qemudbus.model.parser import parse_bytes
from sphinxext_qemudbus.model.registry import Registry

from .helpers import count_work

N = 150  # and 10 N: small enough for the quadratic code this replaced to finish under tracing
# Linear work grows 10 times (a little less: fixed costs); quadratic work 100 times.
MAX_GROWTH = 15

Files = dict[str, bytes]
REGISTRY = Registry.load([Path(__file__).resolve().parent.parent / "interfaces"])


def one_line(body: str, interface: str = "org.qemu.A1") -> Files:
    return {"a.xml": f'<node><interface name="{interface}">{body}</interface></node>'.encode()}


def unknown_elements(n: int) -> Files:
    return one_line("<q/>" * n)


def members(n: int) -> Files:
    return one_line("".join(f'<method name="m{k}"><arg name="Ab" type="x"/></method>' for k in range(n)))


def unknown_attributes(n: int) -> Files:
    attributes = "".join(f' a{k}="v"' for k in range(n))
    return {"a.xml": f'<node><interface name="org.qemu.A1"{attributes}/></node>'.encode()}


def orphan_comments(n: int) -> Files:
    return {"a.xml": ("<node>" + "<!-- Ghost: -->" * n + "</node>").encode()}


def processing_instructions(n: int) -> Files:
    return {"a.xml": ("<node>" + "".join(f"<?x{k}?>" for k in range(n)) + "</node>").encode()}


def stray_text(n: int) -> Files:
    return one_line("".join(f"<q/>t{k}" for k in range(n)))


def stray_text_on_lines(n: int) -> Files:
    body = "".join(f"<q/>\nt{k}\n" for k in range(n))
    return {"a.xml": f'<node>\n<interface name="org.qemu.A1">\n{body}</interface>\n</node>\n'.encode()}


def ambiguous_references(n: int) -> Files:
    files = {
        f"i{k}.xml": f'<node><interface name="org.x.I{k}"><method name="Foo"/></interface></node>'.encode()
        for k in range(n)
    }
    refs = " ".join(":dbus:meth:`.Foo`" for _ in range(n))
    files["r.xml"] = one_line(f'<!--\n  Bar:\n\n  {refs}\n-->\n<method name="Bar"/>', "org.x.R1")["a.xml"]
    return files


def distinct_suffix_references(n: int) -> Files:
    files = {
        f"i{k}.xml": f'<node><interface name="org.x.I{k}"><method name="Foo"/></interface></node>'.encode()
        for k in range(n)
    }
    refs = " ".join(f":dbus:meth:`.J{k}.Foo`" for k in range(n))
    files["r.xml"] = one_line(f'<!--\n  Bar:\n\n  {refs}\n-->\n<method name="Bar"/>', "org.x.R1")["a.xml"]
    return files


def long_arg_description(n: int) -> Files:
    """An ``@arg:`` description of n lines, each with a reference: every reference is located
    through the lines the description joins."""
    lines = "".join(f"      line {k} :dbus:meth:`Nope{k}`\n" for k in range(n))
    comment = f"<!--\n  Bar:\n  @a: first\n{lines}\n  Body.\n-->\n"
    return one_line(f'{comment}<method name="Bar"><arg name="a" type="s"/></method>', "org.x.R1")


def waived_findings(n: int) -> Files:
    waivers = "".join(f'<annotation name="org.qemu.Registry.Waive" value="G40{k % 2}: no"/>\n' for k in range(n))
    args = "".join(f'<arg name="Bad{k}" type="u"/>\n' for k in range(n))
    return one_line(f'\n<method name="M">\n{waivers}{args}</method>\n')


def nested_conditions(n: int) -> Files:
    return one_line("<?if $(env.HOST_OS) == windows?>" * n + '<method name="M"/>' + "<?endif?>" * n)


def elseif_chain(n: int) -> Files:
    chain = "".join(f'<?elseif $(env.HOST_OS) == w{k}?><method name="M{k}"/>' for k in range(n))
    return one_line(f"<?if $(env.HOST_OS) == windows?>{chain}<?endif?>")


GENERATORS: dict[str, Callable[[int], Files]] = {
    "unknown elements on one line": unknown_elements,
    "members on one line": members,
    "unknown attributes on one element": unknown_attributes,
    "orphan doc comments on one line": orphan_comments,
    "processing instructions on one line": processing_instructions,
    "stray text on one line": stray_text,
    "stray text on many lines": stray_text_on_lines,
    "ambiguous .Name references": ambiguous_references,
    "references by distinct suffixes": distinct_suffix_references,
    "references on the lines of a long arg description": long_arg_description,
    "waivers and findings of one member": waived_findings,
    "nested conditionals": nested_conditions,
    "long elseif chains": elseif_chain,
}


def conform_reply(n: int) -> Files:
    """A peer's Introspect reply on one line: the registered VM interface with n members more."""
    members = "".join(f'<method name="Extra{k}"><arg name="a" type="u"/></method>' for k in range(n))
    return {"reply": f'<node><interface name="org.qemu.Display1.VM">{members}</interface></node>'.encode()}


def compare_and_print(files: Files) -> None:
    live = parse_reply("org.qemu", "/org/qemu/Display1/VM", files["reply"].decode())
    render(compare_object(REGISTRY, "org.qemu", live, "unix"), "text")


def test_a_peer_reply_costs_linear_work() -> None:
    small = count_work(lambda: compare_and_print(conform_reply(N)))
    large = count_work(lambda: compare_and_print(conform_reply(10 * N)))
    assert large <= MAX_GROWTH * small, f"{small} lines of work at n={N}, {large} at n={10 * N}"
    live = parse_reply("org.qemu", "/org/qemu/Display1/VM", conform_reply(3)["reply"].decode())
    assert "L101" in {d.code for d in compare_object(REGISTRY, "org.qemu", live, "unix")}


def crossing_sequence(n: int) -> list[str]:
    """n participants and 2n rows, each an arrow or a note that crosses every lane to its right:
    the shape that made a 162 KB page 287 MB of HTML, when each crossing cut each lifeline."""
    lines = [f"participant c{k} client client {k}" for k in range(n)] + ["participant qemu qemu QEMU"]
    for k in range(n):
        lines.append(f"c{k} -> qemu: org.qemu.Display1.Keyboard.Press from client {k}")
        lines.append(f"note c{k}, qemu: client {k} waits for the reply")
    return lines


def draw(lines: list[str]) -> str:
    diagram, problems = parse_sequence(lines, REGISTRY, "lanes and rows")
    assert not problems
    return render_svg(diagram, id_prefix="d")


def test_a_sequence_costs_work_and_output_linear_in_what_it_draws() -> None:
    """Lanes times rows must not show: 10 times the lanes and 10 times the rows make about 10
    times the work and the SVG, not 100 times."""
    small_svg, large_svg = draw(crossing_sequence(N)), draw(crossing_sequence(10 * N))
    assert len(large_svg) <= MAX_GROWTH * len(small_svg), (
        f"{len(small_svg)} bytes at n={N}, {len(large_svg)} at n={10 * N}"
    )
    small = count_work(lambda: draw(crossing_sequence(N)))
    large = count_work(lambda: draw(crossing_sequence(10 * N)))
    assert large <= MAX_GROWTH * small, f"{small} lines of work at n={N}, {large} at n={10 * N}"


def check_and_print(files: Files) -> None:
    parsed = [parse_bytes(data, name) for name, data in files.items()]
    for profile in ("qemu", "generic"):
        render(check_files(parsed, CheckOptions(profile)), "text")


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_work_grows_linearly(name: str) -> None:
    generate = GENERATORS[name]
    small = count_work(lambda: check_and_print(generate(N)))
    large = count_work(lambda: check_and_print(generate(10 * N)))
    assert large <= MAX_GROWTH * small, f"{name}: {small} lines of work at n={N}, {large} at n={10 * N}"


def test_the_generators_produce_the_findings_they_are_about() -> None:
    # A generator whose file stopped parsing (or stopped producing its findings) would measure
    # nothing: each must reach the code it is there for.
    def found(files: Files) -> set[str]:
        return {d.code for d in check_files([parse_bytes(v, k) for k, v in files.items()], CheckOptions("generic"))}

    expected = {
        "unknown elements on one line": "X010",
        "members on one line": "G404",
        "unknown attributes on one element": "X011",
        "orphan doc comments on one line": "D506",
        "processing instructions on one line": "X021",
        "stray text on one line": "X014",
        "stray text on many lines": "X014",
        "ambiguous .Name references": "R603",
        "references by distinct suffixes": "R601",
        "references on the lines of a long arg description": "R601",
        "waivers and findings of one member": "G404",
        "nested conditionals": "X024",
        "long elseif chains": "X024",
    }
    assert set(expected) == set(GENERATORS)
    for name, code in expected.items():
        assert code in found(GENERATORS[name](20)), name


# --- deployments and their policies ----------------------------------------------------------------


def many_peers(n: int) -> str:
    """A deployment of QEMU, the manager, n migration helpers (each with its own name besides the
    shared one) and n display clients (each serving its clipboard), every peer under its own user:
    the shapes whose cost once grew with the square of the peers (every peer looked up by a scan
    of all peers, every user's rules picked out of every message, every rule compared with every
    other one of its policy)."""
    peers = [
        '[deployment]\nname = "many"\n\n[bus]\nuser = { name = "bus", uid = 10000 }\n',
        '[[peer]]\nid = "qemu"\nrole = "qemu"\nuser = { name = "qemu", uid = 10001 }\nowns = ["org.qemu"]\n'
        'implements = ["org.qemu.Display1.VM", "org.qemu.Display1.Clipboard"]\n',
        '[[peer]]\nid = "manager"\nrole = "manager"\nuser = { name = "manager", uid = 10002 }\nimplements = []\n',
    ]
    for k in range(n):
        peers.append(
            f'[[peer]]\nid = "h{k}"\nrole = "helper"\nuser = {{ name = "h{k}", uid = {20000 + k} }}\n'
            f'owns = ["org.qemu.VMState1", "vm.helper.h{k}"]\nimplements = ["org.qemu.VMState1"]\n'
        )
        peers.append(
            f'[[peer]]\nid = "c{k}"\nrole = "client"\nuser = {{ name = "c{k}", uid = {40000 + k} }}\n'
            f'implements = ["org.qemu.Display1.Clipboard"]\n'
        )
    return "\n".join(peers)


def load_deployment_text(n: int) -> None:
    from sphinxext_qemudbus.security.deployment import check_deployment, parse_deployment

    assert check_deployment(parse_deployment(many_peers(n), "many.toml"), REGISTRY) == ()


def generate_policies(deployment: object) -> None:
    from sphinxext_qemudbus.security.deployment import SCENARIOS
    from sphinxext_qemudbus.security.policy import generate_policy

    for scenario in SCENARIOS:
        generate_policy(REGISTRY, deployment, scenario)  # type: ignore[arg-type]


DEPLOYMENT_N = 20  # and 10 N: 2 * 200 peers, which the quadratic code took minutes over under tracing


def test_loading_a_deployment_costs_linear_work() -> None:
    small = count_work(lambda: load_deployment_text(DEPLOYMENT_N))
    large = count_work(lambda: load_deployment_text(10 * DEPLOYMENT_N))
    assert large <= MAX_GROWTH * small, f"{small} lines of work at n={DEPLOYMENT_N}, {large} at n={10 * DEPLOYMENT_N}"


def test_generating_its_policies_costs_linear_work() -> None:
    from sphinxext_qemudbus.security.deployment import parse_deployment

    small_deployment = parse_deployment(many_peers(DEPLOYMENT_N), "many.toml")
    large_deployment = parse_deployment(many_peers(10 * DEPLOYMENT_N), "many.toml")
    small = count_work(lambda: generate_policies(small_deployment))
    large = count_work(lambda: generate_policies(large_deployment))
    assert large <= MAX_GROWTH * small, f"{small} lines of work at n={DEPLOYMENT_N}, {large} at n={10 * DEPLOYMENT_N}"
