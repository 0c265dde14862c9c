"""The hostile corpus: every malformed or malicious file yields located diagnostics, never a
traceback, and one bad file never costs the others their diagnostics."""

from __future__ import annotations

import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from sphinxext_qemudbus.check.checker import check_paths
from sphinxext_qemudbus.check.summary import CheckOptions
from sphinxext_qemudbus.diagnostics.rules import expand_selection
from sphinxext_qemudbus.model.parser import MAX_FILE_SIZE, parse_bytes

CORPUS = Path(__file__).parent / "corpus"

# file -> the (code, line) of every structural, spec, duplicate and reference finding in it.
EXPECTED: dict[str, list[tuple[str, int]]] = {
    "annotation-bad-value.xml": [("S110", 5)],
    "bad-access.xml": [("S108", 4)],
    "bad-direction.xml": [("S107", 5)],
    "bad-root.xml": [("X013", 2)],
    "billion-laughs.xml": [("X003", 4)],
    "binary-garbage.xml": [("X002", 1)],
    "cdata-content.xml": [("X014", 4)],
    "deep-nesting.xml": [("X001", 3)],
    "doc-symbol-mismatch.xml": [("D507", 4)],
    "doc-unknown-param.xml": [("D505", 6)],
    "duplicate-arg.xml": [("U703", 6)],
    "duplicate-interface.xml": [("U701", 4)],
    "duplicate-member.xml": [("U702", 5)],
    "else-after-else.xml": [("X020", 6)],
    "empty.xml": [("X005", 1)],
    "external-entity.xml": [("X003", 3)],
    "huge-attribute.xml": [("S101", 3)],
    "interface-name-digit.xml": [("S101", 3)],
    "interface-name-hyphen.xml": [("S101", 3)],
    "interface-name-one-element.xml": [("S101", 3)],
    "json-file.xml": [("X001", 1)],
    "latin1-bytes.xml": [("X002", 6)],
    "member-name-dot.xml": [("S102", 4)],
    "member-name-empty.xml": [("S102", 4)],
    "member-name-hyphen.xml": [("S102", 4)],
    "mismatched-tag.xml": [("X001", 4)],
    "misplaced-arg.xml": [("X015", 5)],
    "missing-annotation-value.xml": [("X012", 4)],
    "missing-arg-type.xml": [("X012", 5)],
    "missing-interface-name.xml": [("X012", 3)],
    "missing-property-access.xml": [("X012", 4)],
    "multiple-roots.xml": [("X001", 3)],
    "node-name-invalid.xml": [("S104", 2), ("S104", 3)],
    "noreply-with-out-args.xml": [("S111", 4)],
    "not-xml.xml": [("X001", 1)],
    "nul-byte.xml": [("X001", 3)],
    "parameter-entity.xml": [("X003", 3)],
    "property-name-invalid.xml": [("S103", 4)],
    "signal-arg-in.xml": [("S109", 5)],
    "signature-dict-key.xml": [("S105", 5)],
    "signature-dict-outside-array.xml": [("S105", 4)],
    "signature-empty-struct.xml": [("S105", 5)],
    "signature-empty.xml": [("S106", 4)],
    "signature-reserved-code.xml": [("S105", 5)],
    "signature-too-deep.xml": [("S105", 5)],
    "signature-too-long.xml": [("S105", 5)],
    "signature-two-types.xml": [("S106", 5)],
    "signature-unclosed-struct.xml": [("S105", 5)],
    "stray-doc-comment.xml": [("D506", 5)],
    "stray-endif.xml": [("X020", 5)],
    "text-content.xml": [("X014", 4)],
    "unclosed-if.xml": [("X020", 4)],
    "unclosed-tag.xml": [("X001", 5)],
    "undefined-entity.xml": [("X001", 4)],
    "unknown-attribute.xml": [("X011", 4)],
    "unknown-condition.xml": [("X022", 4)],
    "unknown-element.xml": [("X010", 4)],
    "unknown-pi.xml": [("X021", 4)],
    "unknown-role.xml": [("R604", 7)],
    "unresolved-reference.xml": [("R601", 7)],
    "utf16.xml": [("X002", 1)],
    "whitespace-only.xml": [("X005", 1)],
    "wrong-kind-reference.xml": [("R602", 7)],
    # Benign files that naive hardening breaks: the standard freedesktop DOCTYPE and a UTF-8 BOM.
    "ok-freedesktop-doctype.xml": [],
    "ok-utf8-bom.xml": [],
}
HOSTILE = sorted(name for name, expected in EXPECTED.items() if expected)
SELECTION = CheckOptions("generic", expand_selection(["X,S,U,D505,D506,D507,R"]))


@pytest.fixture(scope="module")
def corpus_findings() -> dict[str, list[tuple[str, int]]]:
    """The whole corpus checked in ONE process and one call, as the CLI does."""
    result = check_paths([CORPUS], SELECTION)
    found: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for d in result.diagnostics:
        assert d.location.line > 0, d
        found[Path(d.location.path).name].append((d.code, d.location.line))
    return found


def test_corpus_is_complete() -> None:
    assert sorted(p.name for p in CORPUS.iterdir()) == sorted(EXPECTED)
    assert len(HOSTILE) >= 40


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_file_gets_exactly_its_diagnostics(name: str, corpus_findings: dict[str, list[tuple[str, int]]]) -> None:
    assert sorted(corpus_findings.get(name, [])) == sorted(EXPECTED[name])


def test_no_internal_errors_in_any_profile() -> None:
    for profile in ("qemu", "generic"):
        result = check_paths([CORPUS], CheckOptions(profile))
        assert not [d for d in result.diagnostics if d.code == "X099"]


def test_cli_over_the_whole_corpus_never_tracebacks() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "sphinxext_qemudbus", "check", "--no-cache", "--profile", "generic", str(CORPUS)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert "Traceback" not in proc.stdout
    reported = {Path(line.split(":", 1)[0]).name for line in proc.stdout.splitlines()}
    assert set(HOSTILE) <= reported


def test_oversized_file_is_refused_before_parsing() -> None:
    data = b"<node>" + b" " * MAX_FILE_SIZE + b"</node>"
    parsed = parse_bytes(data, "big.xml")
    assert parsed.node is None
    assert [d.code for d in parsed.diagnostics] == ["X004"]


def test_oversized_file_on_disk_is_refused_without_reading_it(tmp_path: Path) -> None:
    from sphinxext_qemudbus.model.parser import parse_file

    big = tmp_path / "big.xml"
    with big.open("wb") as stream:
        stream.truncate(MAX_FILE_SIZE + 1)  # sparse: no data behind it
    assert [d.code for d in parse_file(big).diagnostics] == ["X004"]
