"""Benchmark the shapes of input that once made ``qemu-dbus check`` quadratic, each against a bare
lxml parse of the same bytes, at two sizes ten times apart: linear work takes about ten times as
long at the larger size, quadratic work a hundred times.

* one-line corpus: copies of the registry (as ``corpus.py`` makes them), each file's XML joined
  onto one line, as minified XML comes;
* hostile one-liner: ``<node><interface name="org.qemu.A1">`` and ``<q/>`` a great many times, all
  on one line (one unknown-element warning per ``<q/>``);
* pathological reference: one doc comment holding ``:dbus:meth:`~a<spaces>b``` with a long run
  of spaces (the reference pattern once retried the run at every space).

Every timing is a separate process started the same way, best of N, as in ``checker_bench.py``:
interpreter start-up is in both sides of each ratio, so read the ratios at the larger sizes.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from checker_bench import BARE_PARSE, best
from corpus import generate

_BETWEEN_TAGS = re.compile(rb">\s+<")


def one_line_corpus(target: Path, count: int) -> list[Path]:
    """``count`` registry copies, each file's XML on one line."""
    paths = generate(target, count)
    for path in paths:
        data = path.read_bytes()
        # Whitespace between tags goes; a doc comment's own newlines become spaces, so each doc
        # comment stays one (its lines run together, as in a minified file).
        path.write_bytes(_BETWEEN_TAGS.sub(b"><", data).replace(b"\n", b" "))
    return paths


def hostile_one_liner(target: Path, elements: int) -> Path:
    target.mkdir(parents=True)
    path = target / "org.qemu.A1.xml"
    path.write_bytes(b'<node><interface name="org.qemu.A1">' + b"<q/>" * elements + b"</interface></node>\n")
    return path


def pathological_reference(target: Path, spaces: int) -> Path:
    target.mkdir(parents=True)
    path = target / "org.qemu.A1.xml"
    comment = b"<!--\n  org.qemu.A1:\n\n  See :dbus:meth:`~a" + b" " * spaces + b"b`.\n-->\n"
    path.write_bytes(b"<node>\n" + comment + b'<interface name="org.qemu.A1"/>\n</node>\n')
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every size (the test runs 0.01)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    python = sys.executable
    package = Path(__file__).resolve().parent.parent / "sphinxext_qemudbus"
    subprocess.run([python, "-m", "compileall", "-q", str(package)], check=True)
    check = [python, "-m", "sphinxext_qemudbus", "check", "-q", "--no-cache"]

    cases = [
        ("one-line corpus", "interfaces", 1_000, one_line_corpus),
        ("hostile one-liner", "<q/> elements", 50_000, lambda folder, n: [hostile_one_liner(folder, n)]),
        ("pathological reference", "spaces", 360_000, lambda folder, n: [pathological_reference(folder, n)]),
    ]
    print(f"hostile shapes against a bare lxml parse of the same bytes, best of {args.repeat}")
    print(f"  {'':24} {'size':>26} {'bytes':>10} {'bare parse':>11} {'check':>8} {'vs parse':>9} {'x10 size':>9}")
    work = Path(tempfile.mkdtemp(prefix="qemu-dbus-hostile-bench-"))
    try:
        for label, unit, base, make in cases:
            previous = None
            for factor in (1, 10):
                count = max(int(base * args.scale), 1) * factor
                folder = work / f"{unit.split()[0]}-{count}"
                files = make(folder, count)
                size = sum(path.stat().st_size for path in files)
                bare = best([python, "-c", BARE_PARSE, str(folder)], args.repeat)
                checked = best([*check, str(folder)], args.repeat)
                growth = f"{checked / previous:8.1f}x" if previous else ""
                print(
                    f"  {label:24} {count:>11,} {unit:<14} {size:>10,} {bare:10.2f}s {checked:7.2f}s "
                    f"{checked / bare:8.1f}x {growth:>9}"
                )
                previous = checked
                shutil.rmtree(folder)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
