"""Build the same documentation with two revisions of the extension and compare what comes out.

The docs build must not change when the way it is built changes (issue 22: nodes built directly
instead of generated reST).  This tool builds a set of projects with the package of a baseline
revision and with the working tree, on each Python given (``.venv`` has the newest Sphinx,
``.venv-oldest`` Sphinx 5.3), serially and with ``-j 2``, and compares:

* every file of the HTML output byte for byte (pages, ``objects.inv``, ``searchindex.js``,
  ``_static``, ``_sources``), except ``.buildinfo`` and ``.doctrees``: the first is a hash of
  the configuration for incremental builds, the second Sphinx's pickled cache; neither is
  published, and both hold the absolute paths of the build;
* the warnings, line for line (sorted for ``-j``, where workers report in any order).

One normalisation, for ``-j`` builds: in ``searchindex.js``, the documents listed under each
title of ``alltitles`` are compared as a set.  Sphinx 5.3 lists them in the order its parallel
processes happen to finish: two ``-j 2`` builds of the same revision and project differ there
(seen on the 75-file corpus: ``[[11, null], [19, null], [19, null]]`` in one build,
``[[19, null], [19, null], [11, null]]`` in the next).

Both sides build in the same folders, one after the other, so paths are the same and nothing
needs normalising.  The projects: ``docs/``, every test project under ``tests/roots`` that
builds on its own, QEMU's three D-Bus pages as ``tests/qemu-tree/`` holds them, switched to this
extension as ``docs/qemu-switch.rst`` says (``qemu-tree``), and, when their files are there
(``bench/README.md`` says how to fetch them), the same pages with the settings of ``make bench``
(``qemu-pages``) and its 75-file corpus.

    python bench/compare_builds.py [--baseline REV] [--python PY ...] [--project NAME ...]

Against 77ee484 (the revision before nodes were built directly), one difference is intended: in a
MyST page, an interface's short description now leads its metadata fields as it does in a reST
page.  Before, the reST state machine used for MyST pages looked directives up with the wrong
language module; docutils then inserted an INFO message before the first ``container`` of a
build's process, which pushed the metadata ahead of it: the output depended on which page a
process read first (``-j 2`` showed it in ``docs/registry.md`` and the ``myst`` and
``standalone`` roots, serial builds in ``myst`` only).

Exit status 0 when everything is the same, 1 when something differs (each difference is
listed), 2 when a build fails.  ``--expect-warnings-diff`` names projects whose warnings may
differ on purpose (a fix that moves them); their HTML must still be the same.
"""

from __future__ import annotations

import argparse
import difflib
import filecmp
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

import corpora  # noqa: E402

from tests.qemu_switch import switched_copy  # noqa: E402

#: Test projects that build on their own, without an environment the test sets up.
ROOTS = (
    "broken",
    "diagrams",
    "duplicates",
    "hostile-names",
    "missing",
    "myst",
    "parallel",
    "policy",
    "positions",
    "probe",
    "qemu-compat",
    "standalone",
    "untrusted",
    "xrefs",
)
#: What is not the published output (see the module documentation).
UNPUBLISHED = frozenset({".buildinfo", ".doctrees"})


@dataclass(frozen=True)
class Build:
    warnings: list[str]
    outdir: Path


def export_package(revision: str, target: Path) -> None:
    """The package as it was at ``revision`` (the registry as it is now: both sides render the
    same files), importable from ``target``."""
    target.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", revision, "sphinxext_qemudbus"], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    _registry(target)


def _registry(target: Path) -> None:
    """The registry where the package finds it (its data) and where a checkout has it."""
    shutil.copytree(ROOT / "interfaces", target / "sphinxext_qemudbus" / "interfaces")
    shutil.copytree(ROOT / "interfaces", target / "interfaces")


def working_tree_package(target: Path) -> None:
    target.mkdir(parents=True)
    shutil.copytree(
        ROOT / "sphinxext_qemudbus", target / "sphinxext_qemudbus", ignore=shutil.ignore_patterns("__pycache__")
    )
    _registry(target)


def projects(work: Path, wanted: Sequence[str]) -> dict[str, Path]:
    """Copy every project into ``work`` (once: both sides build the same copy)."""
    found: dict[str, Path] = {}

    def want(name: str) -> bool:
        return not wanted or name in wanted

    if want("docs"):
        shutil.copytree(ROOT / "docs", work / "docs", ignore=shutil.ignore_patterns("_build"))
        shutil.copytree(ROOT / "interfaces", work / "interfaces")  # docs/conf.py reads ../interfaces
        # ... and the pages include the built-in deployments from ../sphinxext_qemudbus (data only:
        # without an __init__.py it cannot shadow the package of PYTHONPATH)
        deployments = Path("sphinxext_qemudbus", "security", "deployments")
        shutil.copytree(ROOT / deployments, work / deployments)
        found["docs"] = work / "docs"
    for name in ROOTS:
        if want(name):
            shutil.copytree(ROOT / "tests" / "roots" / f"test-{name}", work / "roots" / name)
            found[name] = work / "roots" / name
    if want("qemu-tree"):
        found["qemu-tree"] = switched_copy(work / "qemu-tree")
    for name, make in (("qemu-pages", corpora.qemu_pages), ("corpus", corpora.corpus)):
        if want(name):
            source = make(work / name, "ours")
            if isinstance(source, Path):
                found[name] = source
            else:
                print(f"skipped {name}: {source}")
    return found


def build(python: str, package_dir: Path, source: Path, out: Path, jobs: int, reuse: str | None = None) -> Build:
    """Build ``source`` into ``out``; with ``reuse`` (a key such as the baseline revision), a
    build made earlier with the same key is taken as it is."""
    stamp = out.with_name(out.name + ".warnings")
    if reuse is not None and stamp.exists() and out.exists():
        key, _newline, text = stamp.read_text(encoding="utf-8").partition("\n")
        if key == reuse:
            return Build(text.splitlines(), out)
    if out.exists():
        shutil.rmtree(out)
    command = [python, "-m", "sphinx", "-b", "html", "-q", "-j", str(jobs), str(source), str(out)]
    env = {**os.environ, "PYTHONPATH": str(package_dir), "PYTHONHASHSEED": "0"}
    # Not from the checkout: ``python -m`` puts the current folder first on sys.path, and the
    # checkout's package would shadow the one of PYTHONPATH.
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=package_dir, check=False)
    check = subprocess.run(
        [python, "-c", "import sphinxext_qemudbus; print(sphinxext_qemudbus.__file__)"],
        capture_output=True,
        text=True,
        env=env,
        cwd=package_dir,
        check=True,
    ).stdout
    if not check.startswith(str(package_dir)):
        raise RuntimeError(f"{python} imports sphinxext_qemudbus from {check.strip()}, not from {package_dir}")
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr[-4000:]}")
    # The side's own folder (where its package and registry are) is the one path that differs.
    text = result.stderr.replace(str(package_dir), "PACKAGE")
    warnings = [line for line in text.splitlines() if "WARNING" in line or "ERROR" in line]
    if jobs > 1:
        warnings.sort()
    stamp.write_text(f"{reuse}\n" + "".join(f"{line}\n" for line in warnings), encoding="utf-8")
    return Build(warnings, out)


def published_files(top: Path) -> Iterator[str]:
    for path in sorted(top.rglob("*")):
        relative = path.relative_to(top)
        if relative.parts[0] in UNPUBLISHED or not path.is_file():
            continue
        yield relative.as_posix()


_SEARCH_INDEX = "searchindex.js"


def search_index(path: Path, parallel: bool) -> list[str]:
    """``searchindex.js`` as lines of JSON; for a parallel build, with each title's documents
    sorted (see the module documentation)."""
    text = path.read_text(encoding="utf-8")
    data = json.loads(text[text.index("(") + 1 : text.rindex(")")])
    if parallel:
        data["alltitles"] = {title: sorted(places, key=json.dumps) for title, places in data["alltitles"].items()}
    return json.dumps(data, indent=1, sort_keys=True).splitlines()


def differences(before: Build, after: Build, compare_warnings: bool, parallel: bool) -> list[str]:
    found = []
    old, new = set(published_files(before.outdir)), set(published_files(after.outdir))
    for name in sorted(old - new):
        found.append(f"  only before: {name}")
    for name in sorted(new - old):
        found.append(f"  only after: {name}")
    for name in sorted(old & new):
        if filecmp.cmp(before.outdir / name, after.outdir / name, shallow=False):
            continue
        if name == _SEARCH_INDEX:
            a = search_index(before.outdir / name, parallel)
            b = search_index(after.outdir / name, parallel)
            if a == b:
                continue
        else:
            a = (before.outdir / name).read_text(encoding="utf-8", errors="replace").splitlines()
            b = (after.outdir / name).read_text(encoding="utf-8", errors="replace").splitlines()
        found.append(f"  differs: {name}")
        found += ["    " + line[:300] for line in list(difflib.unified_diff(a, b, lineterm="", n=1))[2:40]]
    if compare_warnings and before.warnings != after.warnings:
        found.append("  warnings differ:")
        diff = difflib.unified_diff(before.warnings, after.warnings, lineterm="", n=0)
        found += ["    " + line for line in list(diff)[2:60]]
    return found


def default_baseline() -> str:
    result = subprocess.run(
        ["git", "-C", str(ROOT), "merge-base", "HEAD", "main"], capture_output=True, text=True, check=False
    )
    return result.stdout.strip() or "HEAD"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--baseline", default=None, help="git revision to compare with (default: merge-base with main)")
    parser.add_argument(
        "--python", action="append", help="interpreter with Sphinx (repeatable; default .venv and .venv-oldest)"
    )
    parser.add_argument("--project", action="append", default=[], help="build only these projects (repeatable)")
    parser.add_argument("--jobs", type=int, action="append", help="sphinx-build -j values (default 1 and 2)")
    parser.add_argument("--expect-warnings-diff", action="append", default=[], help="project whose warnings may differ")
    parser.add_argument("--work", type=Path, help="work in this folder and keep it")
    parser.add_argument(
        "--reuse-baseline", action="store_true", help="with --work: keep the baseline builds of an earlier run"
    )
    args = parser.parse_args(argv)
    baseline = args.baseline or default_baseline()
    pythons = (
        [os.path.abspath(p) for p in args.python]
        if args.python
        else [str(p) for p in (ROOT / ".venv/bin/python", ROOT / ".venv-oldest/bin/python") if p.exists()]
    )
    work = args.work or Path(tempfile.mkdtemp(prefix="qemudbus-compare-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        sides = {"before": work / "before", "after": work / "after"}
        revision = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", baseline], capture_output=True, text=True, check=True
        ).stdout.strip()
        for path in sides.values():
            if path.exists():
                shutil.rmtree(path)
        if (work / "projects").exists():
            shutil.rmtree(work / "projects")
        export_package(baseline, sides["before"])
        working_tree_package(sides["after"])
        found = projects(work / "projects", args.project)
        print(f"baseline {baseline}; projects: {', '.join(found)}")
        failed: list[str] = []
        for python in pythons:
            version = subprocess.run(
                [python, "-c", "import sphinx, sys; print(sys.version.split()[0], sphinx.__version__)"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.split()
            tag = f"Python {version[0]}, Sphinx {version[1]}"
            for name, source in found.items():
                for jobs in args.jobs or [1, 2]:
                    results = {}
                    for side, package in sides.items():
                        out = work / "out" / side / f"{name}-py{version[0]}-j{jobs}"
                        reuse = revision if side == "before" and args.reuse_baseline else None
                        results[side] = build(python, package, source, out, jobs, reuse)
                    diff = differences(
                        results["before"], results["after"], name not in args.expect_warnings_diff, jobs > 1
                    )
                    status = "same" if not diff else "DIFFERENT"
                    print(f"{tag}, -j {jobs}, {name}: {status} ({len(results['after'].warnings)} warnings)")
                    for line in diff:
                        print(line)
                    if diff:
                        failed.append(f"{tag} -j {jobs} {name}")
        print("no differences" if not failed else f"{len(failed)} differences: " + "; ".join(failed))
        return 1 if failed else 0
    except RuntimeError as error:
        print(error)
        return 2
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
