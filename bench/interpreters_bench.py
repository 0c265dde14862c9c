"""The same stages on the oldest supported Python and on the default one, in the same run.

QEMU's docs build runs on Python 3.9, so the package supports it; 3.9 must not make any stage
much slower (the target: no stage over 1.5x its time on the default interpreter; CPython 3.11
alone is about 1.25x faster than 3.9).  Each stage is a separate process per interpreter, the two
interpreters alternating within every repetition so that a noisy minute weighs on both; the
figure is the median.

The stages: a bare lxml parse (the checker bench's baseline), a cold check in one process and on
all CPUs, the model alone (``floor.py``), a warm cached check, the hostile one-liner (500,000
elements on one line) and the one-line corpus, and a clean build of QEMU's own three D-Bus pages
(``tests/qemu-tree/``; each interpreter with its own virtual environment's Sphinx: 5.3 in
``.venv-oldest``, the newest in ``.venv``, so that row compares the two set-ups QEMU and newer
projects use, not the interpreters alone).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from checker_bench import BARE_PARSE
from corpus import generate
from hostile_bench import hostile_one_liner, one_line_corpus

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.qemu_switch import switched_copy

ROOT = Path(__file__).resolve().parent.parent
OLDEST = ROOT / ".venv-oldest" / "bin" / "python"
LIMIT = 1.5


def _version(python: str) -> str:
    out = subprocess.run(
        [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


def _timed(command: list[str], cwd: Path | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=cwd)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--oldest", default=str(OLDEST), help="the oldest supported Python (default: .venv-oldest's)")
    parser.add_argument("--count", type=int, default=10_000, help="interfaces in the corpus")
    parser.add_argument("--hostile", type=int, default=500_000, help="elements of the hostile one-liner")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    oldest, default = args.oldest, sys.executable
    if not Path(oldest).exists():
        print(f"interpreters: skipped, no {oldest} (make check creates it; or --oldest PATH)")
        return 0
    pythons = [default, oldest]
    versions = [_version(python) for python in pythons]

    work = Path(tempfile.mkdtemp(prefix="qemu-dbus-interpreters-bench-"))
    try:
        corpus, cache = work / "corpus", work / "cache"
        generate(corpus, args.count)
        one_line = work / "one-line"
        one_line_corpus(one_line, args.count)
        hostile = work / "hostile"
        hostile_one_liner(hostile, args.hostile)
        docs = switched_copy(work / "qemu")
        for python in pythons:
            subprocess.run([python, "-m", "compileall", "-q", str(ROOT / "sphinxext_qemudbus")], check=True)
            # The warm row reads a cache each interpreter fills for itself (the key has the code).
            subprocess.run(
                [python, "-m", "sphinxext_qemudbus", "check", "-q", "--cache-dir", str(cache), str(corpus)], check=False
            )

        def check(*options: str) -> Callable[[str], list[str]]:
            return lambda python: [python, "-m", "sphinxext_qemudbus", "check", "-q", *options]

        floor = str(ROOT / "bench" / "floor.py")
        stages: list[tuple[str, Callable[[str], list[str]]]] = [
            ("bare lxml parse", lambda python: [python, "-c", BARE_PARSE, str(corpus)]),
            ("check, cold, one process", lambda python: [*check("--no-cache", "--jobs", "1")(python), str(corpus)]),
            ("check, cold, all CPUs", lambda python: [*check("--no-cache")(python), str(corpus)]),
            ("model only (floor)", lambda python: [python, floor, str(corpus)]),
            ("check, warm cache", lambda python: [*check("--cache-dir", str(cache))(python), str(corpus)]),
            ("one-line corpus", lambda python: [*check("--no-cache")(python), str(one_line)]),
            ("hostile one-liner", lambda python: [*check("--no-cache")(python), str(hostile)]),
            (
                "QEMU's pages, clean build",
                lambda python: [
                    python,
                    "-m",
                    "sphinx",
                    "-q",
                    "-E",
                    "-b",
                    "html",
                    str(docs),
                    str(work / f"out-{pythons.index(python)}"),
                ],
            ),
        ]
        print(
            f"the same stages on Python {versions[1]} and {versions[0]}, interleaved, median of {args.repeat} "
            f"({args.count} interfaces)"
        )
        print(f"  {'':28} {'Python ' + versions[0]:>12} {'Python ' + versions[1]:>12} {'ratio':>7}")
        slow = []
        for label, command in stages:
            times: list[list[float]] = [[], []]
            for _ in range(args.repeat):
                for index, python in enumerate(pythons):
                    times[index].append(_timed(command(python)))
            new, old = (statistics.median(t) for t in times)
            ratio = old / new
            flag = "  over the limit" if ratio > LIMIT else ""
            print(f"  {label:28} {new:11.2f}s {old:11.2f}s {ratio:6.2f}x{flag}")
            if ratio > LIMIT:
                slow.append(label)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if slow:
        print(f"  slower than {LIMIT}x on Python {versions[1]}: {', '.join(slow)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
