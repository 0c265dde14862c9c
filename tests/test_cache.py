"""The per-file result cache: warm runs report exactly what cold runs do, and it invalidates."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from sphinxext_qemudbus.check.cache import CACHEDIR_SIGNATURE, SummaryCache, open_cache
from sphinxext_qemudbus.check.checker import check_paths
from sphinxext_qemudbus.check.summary import CheckOptions

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
    import json

    from sphinxext_qemudbus.check.cache import decode, encode
    from sphinxext_qemudbus.check.checker import _summarize_path
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
