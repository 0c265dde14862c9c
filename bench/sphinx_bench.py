"""Benchmark of the Sphinx extension.

Builds a docs project that renders ``--count`` interfaces (copies of the real registry, from
`corpus.generate`) with ``.. dbus-interface::``, ten per page, and times:

* a clean ``sphinx-build``, and its cost per interface;
* the same project written as plain reST of the same shape (a section per interface and per
  member, the same doc text), built in the same run: the baseline that any docs build pays;
* an incremental rebuild after editing one XML file (and how many documents it re-read);
* a rebuild with nothing changed.

Run it alone (``python bench/sphinx_bench.py``) or through ``bench/run.py``, which calls `main`.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TypeVar

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PER_PAGE = 10
_T = TypeVar("_T")


def _corpus() -> ModuleType:
    """`bench/corpus.py`, whether this file runs as a script or is imported by run.py."""
    spec = importlib.util.spec_from_file_location("qemudbus_bench_corpus", HERE / "corpus.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass(frozen=True)
class Timing:
    seconds: float
    read: int  # documents Sphinx re-read
    warnings: int


@dataclass(frozen=True)
class Result:
    interfaces: int
    pages: int
    sphinx_version: str
    clean: Timing
    baseline: Timing
    incremental: Timing
    noop: Timing

    @property
    def per_interface_ms(self) -> float:
        return 1000 * self.clean.seconds / self.interfaces

    @property
    def baseline_per_interface_ms(self) -> float:
        return 1000 * self.baseline.seconds / self.interfaces

    def report(self) -> str:
        overhead = self.per_interface_ms - self.baseline_per_interface_ms
        return "\n".join(
            [
                f"Sphinx {self.sphinx_version}: {self.interfaces} interfaces on {self.pages} pages",
                f"  clean build, sphinxext_qemudbus   {self.clean.seconds:7.2f} s  {self.per_interface_ms:6.1f} ms/interface"
                f"  ({self.clean.warnings} warnings)",
                f"  clean build, plain reST baseline  {self.baseline.seconds:7.2f} s  "
                f"{self.baseline_per_interface_ms:6.1f} ms/interface",
                f"  extension overhead                            {overhead:6.1f} ms/interface",
                f"  incremental, one XML file edited  {self.incremental.seconds:7.2f} s  "
                f"({self.incremental.read} of {self.pages + 1} documents re-read)",
                f"  rebuild, nothing changed          {self.noop.seconds:7.2f} s  ({self.noop.read} re-read)",
            ]
        )


def _sphinx_build(source: Path, out: Path, jobs: int) -> Timing:
    command = [sys.executable, "-m", "sphinx", "-b", "html", str(source), str(out)]
    if jobs > 1:
        command[3:3] = ["-j", str(jobs)]
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"sphinx-build failed:\n{result.stderr}")
    match = re.search(r"(\d+) added, (\d+) changed, (\d+) removed", result.stdout)
    read = int(match.group(1)) + int(match.group(2)) if match else 0
    return Timing(seconds, read, result.stderr.count("WARNING"))


def _pages(items: Sequence[_T]) -> list[list[_T]]:
    return [list(items[i : i + PER_PAGE]) for i in range(0, len(items), PER_PAGE)]


def _write_index(source: Path, pages: int) -> None:
    entries = "".join(f"   page{n:03d}\n" for n in range(pages))
    (source / "index.rst").write_text(f"Benchmark\n=========\n\n.. toctree::\n\n{entries}", encoding="utf-8")


def make_extension_project(source: Path, count: int) -> tuple[list[str], list[Path]]:
    """The project under test: generated XML in ``interfaces/``, pages of dbus-interface."""
    paths = _corpus().generate(source / "interfaces", count)
    names = [path.name.removesuffix(".xml") for path in paths]
    (source / "conf.py").write_text(
        'project = "bench"\nextensions = ["sphinxext_qemudbus"]\ndbus_registry_path = "interfaces"\n'
        'exclude_patterns = ["_build", "interfaces"]\n',
        encoding="utf-8",
    )
    pages = _pages(names)
    for n, group in enumerate(pages):
        body = "".join(f".. dbus-interface:: {name}\n\n" for name in group)
        (source / f"page{n:03d}.rst").write_text(f"Page {n}\n{'=' * (5 + len(str(n)))}\n\n{body}", encoding="utf-8")
    _write_index(source, len(pages))
    return names, paths


def make_baseline_project(source: Path, paths: Sequence[Path]) -> None:
    """The same pages as plain reST of the same size: the very text the extension generates
    (doc comments, argument fields, validation notes, design notes), with each ``dbus:*``
    directive turned into a container headed by its signature line and its options dropped.
    What remains between the two builds is the cost of the domain and of reading the XML."""
    sys.path.insert(0, str(ROOT))
    from sphinxext_qemudbus.model.parser import parse_file
    from sphinxext_qemudbus.sphinx.render import render_interface

    source.mkdir(parents=True, exist_ok=True)
    (source / "conf.py").write_text('project = "baseline"\nexclude_patterns = ["_build"]\n', encoding="utf-8")
    blocks: list[str] = []
    for path in paths:
        for interface in parse_file(path).interfaces:
            blocks.append(_plain("\n".join(render_interface(interface, str(path)))))
    pages = _pages(blocks)
    for n, group in enumerate(pages):
        title = f"Page {n}\n{'=' * (5 + len(str(n)))}\n\n"
        (source / f"page{n:03d}.rst").write_text(title + "\n".join(group), encoding="utf-8")
    _write_index(source, len(pages))


_DIRECTIVE = re.compile(r"(\s*)\.\. dbus:(\w+):: (.*)")
_OPTION = re.compile(r"\s*:[a-z-]+:( .*)?")


def _plain(text: str) -> str:
    """Generated reST without the ``dbus`` domain: directives become containers, roles literals."""
    out: list[str] = []
    in_options = False
    for line in text.split("\n"):
        if match := _DIRECTIVE.fullmatch(line):
            indent, kind, name = match.groups()
            out += [f"{indent}.. container:: dbus-{kind}", "", f"{indent}   **{kind} {name}**", ""]
            in_options = True
            continue
        if in_options and _OPTION.fullmatch(line):
            continue
        in_options = False
        out.append(re.sub(r":dbus:\w+:`~?\.?([^`]*)`", r"``\1``", line))
    return "\n".join(out)


def run(count: int = 200, jobs: int = 1, workdir: Path | None = None) -> Result:
    import sphinx

    own = workdir is None
    work = Path(tempfile.mkdtemp(prefix="qemudbus-sphinx-bench-")) if workdir is None else workdir
    try:
        source, out = work / "ext", work / "ext-out"
        _names, paths = make_extension_project(source, count)
        make_baseline_project(work / "plain", paths)
        baseline = _sphinx_build(work / "plain", work / "plain-out", jobs)
        clean = _sphinx_build(source, out, jobs)
        noop = _sphinx_build(source, out, jobs)
        edited = paths[len(paths) // 2]
        text = edited.read_text(encoding="utf-8")
        edited.write_text(text.replace("-->", "\n      Edited for the benchmark.\n  -->", 1), encoding="utf-8")
        incremental = _sphinx_build(source, out, jobs)
        pages = len(_pages(paths))
        return Result(count, pages, sphinx.__version__, clean, baseline, incremental, noop)
    finally:
        if own:
            shutil.rmtree(work, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=200, help="interfaces to render (default 200)")
    parser.add_argument("--jobs", "-j", type=int, default=1, help="sphinx-build -j (default 1)")
    parser.add_argument("--keep", type=Path, help="build in this folder and keep it")
    args = parser.parse_args(argv)
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
    print(run(args.count, args.jobs, args.keep).report())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
