"""Which files a folder argument expands to, and in which order."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sphinxext_qemudbus.model.files import collect_paths


def rglob_order(folder: Path) -> list[str]:
    """The reference: what ``sorted(Path.rglob("*.xml"))`` keeps of regular files."""
    return [str(p) for p in sorted(folder.rglob("*.xml")) if p.is_file()]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    for relative in ["a.xml", "a.b/c.xml", "a/b.xml", "a/z/y.xml", ".hidden.xml", "B.xml", "a-b.xml", "x.XML"]:
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("<node/>")
    (tmp_path / "notes.txt").write_text("")
    (tmp_path / "dir.xml").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "a", target_is_directory=True)  # not followed
    (tmp_path / "file-link.xml").symlink_to(tmp_path / "a.xml")  # a file: kept
    (tmp_path / "broken.xml").symlink_to(tmp_path / "missing.xml")
    os.mkfifo(tmp_path / "fifo.xml")
    return tmp_path


def test_folder_expands_like_sorted_rglob(tree: Path) -> None:
    found = collect_paths([tree])
    assert found == rglob_order(tree)
    # Folder by folder: "a/b.xml" sorts before "a-b.xml" although "/" > "-" as characters.
    names = [os.path.relpath(p, tree) for p in found]
    assert names == [".hidden.xml", "B.xml", "a/b.xml", "a/z/y.xml", "a-b.xml", "a.b/c.xml", "a.xml", "file-link.xml"]


@pytest.mark.parametrize("spelling", ["{}", "{}/", "{}//a/", "./{}"])
def test_folder_spellings_give_normalized_paths(tree: Path, spelling: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tree.parent)
    argument = spelling.format(tree.name)
    assert collect_paths([argument]) == rglob_order(Path(argument))


def test_missing_path_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        collect_paths([tmp_path / "nope"])


def test_unreadable_folder_is_reported_not_skipped(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sphinxext_qemudbus.check.checker import check_paths

    real = os.scandir
    locked = str(tree / "a")

    def scandir(path: str) -> object:
        if os.fspath(path) == locked:
            raise PermissionError(13, "Permission denied", path)
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    found = collect_paths([tree])
    assert locked in found
    assert str(tree / "a" / "b.xml") not in found
    result = check_paths([tree], jobs=1)
    assert [(d.code, d.location.path) for d in result.diagnostics if d.code == "X006"] == [("X006", locked)]
