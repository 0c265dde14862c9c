"""Property-based robustness: whatever the bytes, the parser and the checker return diagnostics and
never raise (the CLI's no-traceback promise rests on this)."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sphinxext_qemudbus.check.checker import check_files
from sphinxext_qemudbus.check.summary import CheckOptions
from sphinxext_qemudbus.model.parser import parse_bytes

REGISTRY = sorted((Path(__file__).parent.parent / "interfaces").glob("*.xml"))
SAMPLES = [path.read_bytes() for path in REGISTRY]


def check_everything(data: bytes) -> None:
    parsed = parse_bytes(data, "fuzz.xml")
    for profile in ("qemu", "generic"):
        diagnostics = check_files([parsed], CheckOptions(profile))
        assert not [d for d in diagnostics if d.code == "X099"], diagnostics
        for d in diagnostics:
            assert d.location.path == "fuzz.xml"
            assert d.location.line >= 0


@given(st.binary(max_size=2000))
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_arbitrary_bytes(data: bytes) -> None:
    check_everything(data)


@st.composite
def mutated_registry_files(draw: st.DrawFn) -> bytes:
    """A real registry file with a few bytes replaced, inserted or deleted: close enough to valid
    XML to reach the deep parts of the parser and the checker."""
    data = bytearray(draw(st.sampled_from(SAMPLES)))
    for _ in range(draw(st.integers(1, 8))):
        position = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(("replace", "insert", "delete")))
        chunk = draw(
            st.sampled_from(
                [
                    b"<",
                    b">",
                    b'"',
                    b"&",
                    b"<?if x?>",
                    b"<?endif?>",
                    b"<!--",
                    b"-->",
                    b"\x00",
                    b"\xff",
                    b"a{",
                    b"(",
                    b"@",
                    b":dbus:meth:`X`",
                ]
            )
        )
        if action == "replace" and position < len(data):
            data[position : position + len(chunk)] = chunk
        elif action == "insert":
            data[position:position] = chunk
        else:
            del data[position : position + draw(st.integers(1, 40))]
    return bytes(data)


@given(mutated_registry_files())
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_mutated_registry_files(data: bytes) -> None:
    check_everything(data)
