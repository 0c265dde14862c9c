"""Benchmark of the Sphinx extension against QEMU's own (``docs/sphinx/dbusdoc.py``).

Clean ``sphinx-build -b html`` runs, the two extensions alternating so that a change in the
machine's load hits both alike; each figure is the median of the runs (wall time, and the CPU
time of the build process):

* QEMU's three D-Bus pages (``docs/interop/dbus.rst``, ``dbus-display.rst``,
  ``dbus-vmstate.rst``) with their two XML files and QEMU's settings;
* 75 real interface files, one page each: QEMU's display, vmstate and vnc XML and the
  freedesktop files Debian's ``xdg-desktop-portal-dev`` and ``modemmanager-dev`` install;
* ``--count`` interfaces (copies of the registry, from `corpus.generate`), ten per page, with
  ``.. dbus-interface::``; and an incremental rebuild after one XML edit, and one with nothing
  changed (this extension only: QEMU's re-reads nothing after an XML edit).

Then a profile of one build of the 75 files (or of QEMU's pages, when the freedesktop files are
missing): where its time goes, by stage.  What QEMU's files or the Debian packages are needed
for is skipped, with the reason, when they are missing (``bench/README.md`` says how to get them).

Both extensions are byte-compiled first, as an installed package is.

Run it alone (``python bench/sphinx_bench.py``) or through ``bench/run.py``, which calls `main`.
"""

from __future__ import annotations

import argparse
import importlib.util
import pstats
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PER_PAGE = 10
#: What the issue asks of the two real-world comparisons (this extension / QEMU's, wall time).
TARGETS = {"QEMU's D-Bus pages": 0.8, "75 interface files": 0.7}


def _module(name: str) -> ModuleType:
    """A module of this folder, whether this file runs as a script or is imported by run.py."""
    spec = importlib.util.spec_from_file_location(f"qemudbus_bench_{name}", HERE / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


corpora = _module("corpora")


@dataclass(frozen=True)
class Timing:
    wall: float
    cpu: float
    read: int  # documents Sphinx read
    warnings: int


def sphinx_build(source: Path, out: Path, *, clean: bool = True, jobs: int = 1) -> Timing:
    if clean and out.exists():
        shutil.rmtree(out)
    command = [sys.executable, "-m", "sphinx", "-b", "html", str(source), str(out)]
    if jobs > 1:
        command[3:3] = ["-j", str(jobs)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise RuntimeError(f"sphinx-build {source} failed:\n{result.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    match = re.search(r"(\d+) added, (\d+) changed, (\d+) removed", result.stdout)
    read = int(match.group(1)) + int(match.group(2)) if match else 0
    return Timing(wall, cpu, read, result.stderr.count("WARNING"))


@dataclass(frozen=True)
class Comparison:
    """Alternating clean builds of the same documentation with each extension."""

    label: str
    ours: list[Timing]
    qemu: list[Timing]

    @staticmethod
    def median(timings: list[Timing], attribute: str) -> float:
        return statistics.median(getattr(timing, attribute) for timing in timings)

    def ratio(self, attribute: str = "wall") -> float:
        return self.median(self.ours, attribute) / self.median(self.qemu, attribute)

    def report(self) -> str:
        target = TARGETS.get(self.label)
        verdict = ""
        if target is not None:
            verdict = f"  (target <= {target}: {'met' if self.ratio() <= target else 'NOT met'})"
        rows = [f"{self.label}: medians of {len(self.ours)} alternating clean builds each"]
        for name, timings in (("sphinxext_qemudbus", self.ours), ("QEMU's dbusdoc", self.qemu)):
            walls = " ".join(f"{t.wall:.2f}" for t in timings)
            rows.append(
                f"  {name:20} {self.median(timings, 'wall'):7.2f} s wall {self.median(timings, 'cpu'):7.2f} s CPU"
                f"  ({timings[0].warnings} warnings; runs: {walls})"
            )
        rows.append(f"  ratio                {self.ratio():7.2f}        {self.ratio('cpu'):7.2f}{verdict}")
        return "\n".join(rows)


def compare(label: str, projects: dict[str, Path], repeat: int) -> Comparison:
    ours: list[Timing] = []
    qemu: list[Timing] = []
    for _ in range(repeat):
        ours.append(sphinx_build(projects["ours"], projects["ours"].parent / "_build-ours"))
        qemu.append(sphinx_build(projects["qemu"], projects["qemu"].parent / "_build-qemu"))
    return Comparison(label, ours, qemu)


def real_world(work: Path, repeat: int) -> tuple[list[str], tuple[str, Path] | None]:
    """The two comparisons on real files, and the last one's label and source folder (or None)."""
    lines: list[str] = []
    profiled: tuple[str, Path] | None = None
    for label, make in (("QEMU's D-Bus pages", corpora.qemu_pages), ("75 interface files", corpora.corpus)):
        projects = {}
        for extension in corpora.EXTENSIONS:
            made = make(work / f"{make.__name__}-{extension}" / "project", extension)
            if isinstance(made, str):
                lines.append(f"{label}: skipped: {made}")
                break
            projects[extension] = made
        else:
            count = len(list((projects["ours"] / "xml").glob("*.xml"))) if make is corpora.corpus else 0
            title = f"{label} ({count} files)" if count else label
            comparison = compare(label, projects, repeat)
            lines.append(comparison.report().replace(label, title, 1))
            profiled = (title, projects["ours"])
    return lines, profiled


# --- the generated registry project ------------------------------------------------------------


def _pages(items: Sequence[str]) -> list[list[str]]:
    return [list(items[i : i + PER_PAGE]) for i in range(0, len(items), PER_PAGE)]


def make_registry_project(source: Path, count: int) -> tuple[list[Path], int]:
    """``count`` registry copies in ``interfaces/``, ten ``dbus-interface`` per page."""
    paths = _module("corpus").generate(source / "interfaces", count)
    (source / "conf.py").write_text(
        'project = "bench"\nextensions = ["sphinxext_qemudbus"]\ndbus_registry_path = "interfaces"\n'
        'exclude_patterns = ["_build", "interfaces"]\n',
        encoding="utf-8",
    )
    pages = _pages([path.name[: -len(".xml")] for path in paths])
    for n, group in enumerate(pages):
        body = "".join(f".. dbus-interface:: {name}\n\n" for name in group)
        (source / f"page{n:03d}.rst").write_text(f"Page {n}\n{'=' * (5 + len(str(n)))}\n\n{body}", encoding="utf-8")
    entries = "".join(f"   page{n:03d}\n" for n in range(len(pages)))
    (source / "index.rst").write_text(f"Benchmark\n=========\n\n.. toctree::\n\n{entries}", encoding="utf-8")
    return paths, len(pages)


def registry_project(work: Path, count: int) -> tuple[list[str], Path]:
    """The rows of the generated project, and its source folder."""
    source, out = work / "registry", work / "registry-out"
    paths, pages = make_registry_project(source, count)
    clean = sphinx_build(source, out)
    noop = sphinx_build(source, out, clean=False)
    edited = paths[len(paths) // 2]
    text = edited.read_text(encoding="utf-8")
    edited.write_text(text.replace("-->", "\n      Edited for the benchmark.\n  -->", 1), encoding="utf-8")
    incremental = sphinx_build(source, out, clean=False)
    per = 1000 * clean.wall / count
    return [
        f"{count} registry interfaces on {pages} pages (dbus-interface):",
        f"  clean build                       {clean.wall:7.2f} s  {per:6.1f} ms/interface ({clean.warnings} warnings)",
        f"  incremental, one XML file edited  {incremental.wall:7.2f} s  "
        f"({incremental.read} of {pages + 1} documents re-read)",
        f"  rebuild, nothing changed          {noop.wall:7.2f} s  ({noop.read} re-read)",
    ], source


# --- where the time goes --------------------------------------------------------------------


def profile_summary(label: str, source: Path, out: Path) -> list[str]:
    """One clean build under cProfile (CPU time): each stage's share of the whole.  A profile
    inflates code that calls many small functions, so read the shares, not the seconds."""
    shutil.rmtree(out, ignore_errors=True)
    dump = out.with_suffix(".prof")
    script = (
        "import cProfile, time\n"
        "from sphinx.cmd.build import build_main\n"
        "profile = cProfile.Profile(time.process_time)\n"
        "profile.enable()\n"
        f"build_main(['-q', '-b', 'html', {str(source)!r}, {str(out)!r}])\n"
        "profile.disable()\n"
        f"profile.dump_stats({str(dump)!r})\n"
    )
    subprocess.run([sys.executable, "-c", script], capture_output=True, check=True)
    stats = pstats.Stats(str(dump)).stats  # type: ignore[attr-defined]
    cumulative: dict[str, float] = {}
    for (filename, _line, function), entry in stats.items():
        key = filename.replace("\\", "/") + ":" + function
        cumulative[key] = max(cumulative.get(key, 0.0), entry[3])
    total = max(cumulative.values())

    def spent(*names: str) -> float:
        return sum(value for key, value in cumulative.items() if key.endswith(names))

    directives = spent("sphinxext_qemudbus/sphinx/directives.py:run")
    xml = spent("sphinxext_qemudbus/sphinx/sources.py:parse_cached")
    doc_text = spent("sphinxext_qemudbus/sphinx/rst.py:body", "sphinxext_qemudbus/sphinx/rst.py:paragraph")
    reading = spent("sphinx/builders/__init__.py:read")
    # docutils' transformer runs while reading and again for Sphinx's post-transforms (writing).
    transforms = spent("docutils/transforms/__init__.py:apply_transforms") - spent(
        "sphinx/environment/__init__.py:apply_post_transforms"
    )
    writing = spent("sphinx/builders/__init__.py:write")
    stages = [
        ("importing and setting up the extensions", spent("sphinx/registry.py:load_extension")),
        ("reading the pages", reading),
        ("  the dbus-doc and dbus-interface directives", directives),
        ("    reading the XML (parser and model)", xml),
        ("    doc comments: their reST parse", doc_text),
        ("    the descriptions, built from the model", directives - xml - doc_text),
        ("  Sphinx's and docutils' transforms", transforms),
        ("  the rest (parsing the pages, events)", reading - directives - transforms),
        ("writing the pages", writing),
        ("  HTML translation", spent("sphinx/builders/html/__init__.py:write_doc")),
        ("  search index", spent("sphinx/search/__init__.py:feed")),
        ("  page templates", spent("sphinx/builders/html/__init__.py:handle_page")),
    ]
    lines = [f"Where the CPU time of one clean build goes, {label} (cProfile shares):"]
    lines += [f"  {label:48} {100 * value / total:5.1f} %" for label, value in stages]
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=5, help="alternating builds of each extension (default 5)")
    parser.add_argument("--count", type=int, default=200, help="registry interfaces to render (default 200)")
    parser.add_argument("--keep", type=Path, help="build in this folder and keep it")
    parser.add_argument(
        "--registry-only", action="store_true", help="only the generated registry project (no comparison with QEMU's)"
    )
    args = parser.parse_args(argv)
    import sphinx

    for package in (ROOT / "sphinxext_qemudbus", corpora.QEMU / "docs" / "sphinx"):
        if package.is_dir():
            subprocess.run([sys.executable, "-m", "compileall", "-q", str(package)], check=True)
    work = args.keep or Path(tempfile.mkdtemp(prefix="qemudbus-sphinx-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        print(f"Sphinx {sphinx.__version__}, Python {sys.version.split()[0]}")
        lines, profiled = ([], None) if args.registry_only else real_world(work, args.repeat)
        rows, registry = registry_project(work, args.count)
        lines += rows
        label, source = profiled or (f"{args.count} registry interfaces", registry)
        lines += profile_summary(label, source, work / "profiled")
        print("\n".join(lines))
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
