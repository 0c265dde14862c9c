"""The per-file result cache: warm runs report exactly what cold runs do, and it invalidates."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sphinxext_qemudbus.check.cache import CACHEDIR_SIGNATURE, SummaryCache, decode, encode, open_cache
from sphinxext_qemudbus.check.checker import _summarize_path, check_paths
from sphinxext_qemudbus.check.summary import CheckOptions
from sphinxext_qemudbus.cli import main

CORPUS = Path(__file__).parent / "corpus"
REGISTRY = Path(__file__).parent.parent / "interfaces"


def test_warm_run_reports_exactly_what_a_cold_run_does(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    for folder, profile in ((CORPUS, "generic"), (REGISTRY, "qemu")):
        options = CheckOptions(profile)
        cold = check_paths([folder], options, jobs=1)
        first = check_paths([folder], options, jobs=1, cache_dir=cache)
        warm = check_paths([folder], options, jobs=1, cache_dir=cache)
        assert first.diagnostics == cold.diagnostics
        assert warm.diagnostics == cold.diagnostics


def test_warm_run_reads_the_cache_instead_of_parsing(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    cache = tmp_path / "cache"
    check_paths([REGISTRY], jobs=1, cache_dir=cache)
    monkeypatch.setattr(
        "sphinxext_qemudbus.check.checker.parse_bytes", lambda data, path: (_ for _ in ()).throw(AssertionError(path))
    )
    assert check_paths([REGISTRY], jobs=1, cache_dir=cache).files == len(list(REGISTRY.glob("*.xml")))


def test_an_edited_file_is_checked_again(tmp_path: Path) -> None:
    folder = tmp_path / "interfaces"
    shutil.copytree(REGISTRY, folder)
    cache = tmp_path / "cache"
    assert not check_paths([folder], jobs=1, cache_dir=cache).diagnostics
    target = folder / "org.qemu.Display1.Keyboard.xml"
    target.write_text(target.read_text().replace('name="Press"', 'name="press-key"'))
    os.utime(target, ns=(target.stat().st_atime_ns, target.stat().st_mtime_ns + 1_000_000))
    codes = {d.code for d in check_paths([folder], jobs=1, cache_dir=cache).diagnostics}
    assert "S102" in codes


def test_other_options_do_not_share_entries(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    qemu = check_paths([CORPUS], CheckOptions("qemu"), jobs=1, cache_dir=cache)
    generic = check_paths([CORPUS], CheckOptions("generic"), jobs=1, cache_dir=cache)
    assert {d.code for d in qemu.diagnostics} != {d.code for d in generic.diagnostics}
    assert generic.diagnostics == check_paths([CORPUS], CheckOptions("generic"), jobs=1).diagnostics


def test_a_broken_cache_is_ignored_not_fatal(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "check.sqlite3").write_bytes(b"this is not a database")
    assert not check_paths([REGISTRY], jobs=1, cache_dir=cache).diagnostics
    unwritable = tmp_path / "file-not-dir"
    unwritable.write_text("")
    assert not check_paths([REGISTRY], jobs=1, cache_dir=unwritable).diagnostics


def test_cache_keeps_itself_out_of_git_and_tags_itself(tmp_path: Path) -> None:
    cache, notes = open_cache(tmp_path / "c", CheckOptions())
    assert isinstance(cache, SummaryCache)
    cache.close()
    assert not notes
    assert (tmp_path / "c" / ".gitignore").read_text().strip().endswith("*")
    assert (tmp_path / "c" / "CACHEDIR.TAG").read_text().startswith(CACHEDIR_SIGNATURE)


def test_summaries_come_back_from_the_cache_unchanged() -> None:
    from sphinxext_qemudbus.model.files import collect_paths

    for folder, profile in ((CORPUS, "generic"), (REGISTRY, "qemu")):
        for path in collect_paths([folder]):
            summary, _ = _summarize_path(path, CheckOptions(profile))
            assert decode(path, json.dumps(encode(summary))) == summary, path


def test_warm_run_resolves_again_when_two_files_share_a_name(tmp_path: Path) -> None:
    # A reference resolved within its own file is kept apart; when another file defines the same
    # name first, a warm run must look at it again as a cold run does.
    folder = tmp_path / "xml"
    folder.mkdir()
    (folder / "a.xml").write_text('<node><interface name="org.example.Test1"><method name="Foo"/></interface></node>')
    (folder / "b.xml").write_text(
        '<node><interface name="org.example.Test1">\n<!--\n  Foo:\n\n  See :dbus:prop:`Foo`.\n-->\n'
        '<property name="Foo" type="s" access="read"/></interface></node>'
    )
    options = CheckOptions("generic", select=frozenset({"R602"}))
    cold = check_paths([folder], options, jobs=1)
    assert [d.code for d in cold.diagnostics] == ["R602"]
    check_paths([folder], options, jobs=1, cache_dir=tmp_path / "cache")
    assert check_paths([folder], options, jobs=1, cache_dir=tmp_path / "cache").diagnostics == cold.diagnostics


# --- the cache never changes a result ----------------------------------------------------------------


def test_a_same_size_edit_with_the_old_mtime_is_checked_again(tmp_path: Path) -> None:
    # tar -x, rsync -t and build systems restore modification times: size and mtime are not the
    # content.
    folder = tmp_path / "interfaces"
    shutil.copytree(REGISTRY, folder)
    cache = tmp_path / "cache"
    assert not check_paths([folder], jobs=1, cache_dir=cache).diagnostics
    target = folder / "org.qemu.Display1.Keyboard.xml"
    before = target.stat()
    text = target.read_text()
    edited = text.replace('name="Press"', 'name="Pre-s"')
    assert edited != text
    assert len(edited) == len(text)
    target.write_text(edited)
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (target.stat().st_size, target.stat().st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    warm = check_paths([folder], jobs=1, cache_dir=cache)
    assert "S102" in {d.code for d in warm.diagnostics}
    assert warm.diagnostics == check_paths([folder], jobs=1).diagnostics


def _tamper(cache: Path, text: str) -> None:
    with sqlite3.connect(cache / "check.sqlite3") as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        for table in tables:
            db.execute(f"UPDATE {table} SET summary = ?", (text,))


def test_a_row_cannot_put_a_diagnostic_on_another_file(tmp_path: Path) -> None:
    """A summary is about its own file: a tampered row whose diagnostic points at another file
    (to blame it, or to hide a finding behind a fake one there) is a miss, not a finding."""
    folder = tmp_path / "xml"
    folder.mkdir()
    shutil.copy(CORPUS / "bad-direction.xml", folder)
    shutil.copy(REGISTRY / "org.qemu.VMState1.xml", folder)
    options = CheckOptions("generic")
    cache = tmp_path / "cache"
    cold = check_paths([folder], options, jobs=1)
    check_paths([folder], options, jobs=1, cache_dir=cache)
    victim = str(folder / "org.qemu.VMState1.xml")
    path = str(folder / "bad-direction.xml")
    summary, _ = _summarize_path(path, options)
    row = encode(summary)
    row["diagnostics"].append(["S102", "error", [victim, 1, 1], "forged", ""])
    with sqlite3.connect(cache / "check.sqlite3") as db:
        db.execute("UPDATE file_results SET summary = ? WHERE path = ?", (json.dumps(row), path))
    assert decode(path, json.dumps(row)) is None
    warm = check_paths([folder], options, jobs=1, cache_dir=cache)
    assert warm.diagnostics == cold.diagnostics
    assert not [d for d in warm.diagnostics if d.location.path == victim]


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5),
    max_leaves=20,
)


def _mutations() -> st.SearchStrategy[str]:
    """Rows that are not what the cache wrote: any JSON, the real row with one value replaced by
    another shape, text that is not JSON, and nesting deeper than the decoder's recursion."""
    real = json.dumps(encode(_summarize_path(str(CORPUS / "bad-direction.xml"), CheckOptions("generic"))[0]))
    keys = ["path", "diagnostics", "interfaces", "objects", "references", "resolved"]

    def replace(key: str, value: object) -> str:
        data = json.loads(real)
        data[key] = value
        return json.dumps(data)

    def replace_in_row(index: int, value: object) -> str:
        data = json.loads(real)
        row = data["diagnostics"][0]
        row[index % len(row)] = value
        return json.dumps(data)

    return st.one_of(
        JSON.map(json.dumps),
        st.builds(replace, st.sampled_from(keys), JSON),
        st.builds(replace_in_row, st.integers(0, 4), JSON),
        st.sampled_from(["", "{", "not json", "[" * 100_000 + "]" * 100_000, '{"path": "x"}', "null"]),
    )


@given(row=_mutations())
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_a_row_that_does_not_decode_to_what_was_written_is_a_miss(tmp_path: Path, row: str) -> None:
    folder = tmp_path / "xml"
    if not folder.exists():
        folder.mkdir()
        shutil.copy(CORPUS / "bad-direction.xml", folder)
    options = CheckOptions("generic")
    cache = tmp_path / "cache"
    cold = check_paths([folder], options, jobs=1)
    check_paths([folder], options, jobs=1, cache_dir=cache)
    _tamper(cache, row)
    assert check_paths([folder], options, jobs=1, cache_dir=cache).diagnostics == cold.diagnostics


def test_the_fingerprint_does_not_depend_on_the_hash_seed() -> None:
    script = (
        "from sphinxext_qemudbus.check.cache import fingerprint\n"
        "from sphinxext_qemudbus.check.summary import CheckOptions\n"
        "from sphinxext_qemudbus.diagnostics.rules import expand_selection\n"
        "print(fingerprint(CheckOptions('generic', expand_selection(['S', 'G4', 'D']), expand_selection(['G409', 'G410']))))\n"
    )
    prints = {
        subprocess.run(
            [sys.executable, "-c", script],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2", "3", "4")
    }
    assert len(prints) == 1, prints


def test_a_folder_the_tool_did_not_make_is_never_written_into(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "interfaces"
    shutil.copytree(REGISTRY, folder)
    before = sorted(p.name for p in folder.iterdir())
    monkeypatch.chdir(tmp_path)
    assert main(["check", "--cache-dir", str(folder), str(folder)]) == 0
    assert sorted(p.name for p in folder.iterdir()) == before
    err = capsys.readouterr().err
    assert f"qemu-dbus check: warning: {folder}: the folder exists and was not made by qemu-dbus" in err
    # A folder it made, it uses (and finds again on the next run).
    assert main(["check", "--cache-dir", str(tmp_path / "made"), str(folder)]) == 0
    assert main(["check", "--cache-dir", str(tmp_path / "made"), str(folder)]) == 0
    assert "warning" not in capsys.readouterr().err
    assert (tmp_path / "made" / "CACHEDIR.TAG").exists()


def test_a_cache_made_by_an_earlier_version_is_still_used(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / ".gitignore").write_text("# Created by qemu-dbus check.\n*\n")
    result = check_paths([REGISTRY], jobs=1, cache_dir=cache)
    assert not result.notes
    assert (cache / "check.sqlite3").exists()
    assert (cache / "CACHEDIR.TAG").read_text().startswith(CACHEDIR_SIGNATURE)


@pytest.mark.skipif(multiprocessing.get_start_method() != "fork", reason="the dying worker is made by fork")
def test_a_worker_that_dies_costs_its_file_not_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A worker process really dies (os._exit, as the OOM killer or a crash in libxml2 would end it)
    # on one file: the other files of its chunk are checked again, the file is reported, exit 2.
    from sphinxext_qemudbus.check import checker

    folder = tmp_path / "xml"
    shutil.copytree(REGISTRY, folder)
    doomed = folder / "org.qemu.VMState1.xml"  # a file no other file refers to
    real = checker._summarize_path

    def dying(path: str, options: CheckOptions, digest: bool = False) -> object:
        if path == str(doomed) and os.getpid() != parent:
            os._exit(9)
        return real(path, options, digest)

    parent = os.getpid()
    monkeypatch.setattr(checker, "_summarize_path", dying)
    monkeypatch.setattr(checker, "PARALLEL_THRESHOLD", 2)
    monkeypatch.chdir(tmp_path)
    assert main(["check", "--jobs", "2", "--no-cache", str(folder)]) == 2
    out = capsys.readouterr().out.splitlines()
    assert [line for line in out if "[X008]" in line] == [
        f"{doomed}: error: the process checking this file died (killed, out of memory, or a crash); not checked [X008]"
    ]
    assert len([line for line in out if not line.startswith("    hint: ")]) == 1  # every other file is clean


def test_a_file_name_that_is_not_utf8_is_checked_and_printed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "xml"
    folder.mkdir()
    (folder / "org.example.Clean1.xml").write_text('<node><interface name="org.example.Clean1"/></node>')
    name = os.fsdecode(b"bad-\xff.xml")
    (folder / name).write_text("<node><interface/></node>")
    monkeypatch.chdir(tmp_path)
    for _ in range(2):  # filling the cache, then reading it
        assert main(["check", "--profile", "generic", "--select", "X012", str(folder)]) == 1
        assert (
            capsys.readouterr().out.splitlines()[0]
            == f"{folder}/bad-\\udcff.xml:1:7: error: <interface> is missing its 'name' attribute [X012]"
        )
