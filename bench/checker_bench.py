"""Benchmark ``qemu-dbus check`` against a bare lxml parse of the same files, in the same run.

Every timing is a separate process started the same way (so interpreter start-up is in both),
repeated, best of N.  Reported: wall time, per-interface cost and the ratio to the bare parse,
for a cold check (no cache), the first cached run (checks and fills the cache) and a warm run.
The machines are shared and noisy: read the ratios, not the absolute numbers.

One more row, the floor: ``floor.py`` builds the same model in one process with no check at all
(verified equal to the parser's model on the corpus first).  Compare it with the one-process
check: it is what any pure-Python checker with this model pays before its first rule.

The package is byte-compiled first, as ``pip install`` does: with ``PYTHONDONTWRITEBYTECODE`` set
(as on the CI machines) an editable install would otherwise compile every module from source at
each start, a cost an installed ``qemu-dbus`` never pays.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpus import generate

BARE_PARSE = """
import sys
from pathlib import Path
from lxml import etree
parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
for path in sorted(Path(sys.argv[1]).glob("*.xml")):
    etree.fromstring(path.read_bytes(), parser)
"""


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=False, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def best(command: list[str], repeat: int, before: list[str] | None = None) -> float:
    results = []
    for _ in range(repeat):
        if before:
            subprocess.run(before, check=True)
        results.append(timed(command))
    return min(results)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=10_000, help="interfaces in the corpus")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="qemu-dbus-bench-"))
    try:
        corpus = work / "corpus"
        cache = work / "cache"
        files = generate(corpus, args.count)
        size = sum(p.stat().st_size for p in files)
        python = sys.executable
        package = Path(__file__).resolve().parent.parent / "sphinxext_qemudbus"
        subprocess.run([python, "-m", "compileall", "-q", str(package)], check=True)
        check = [python, "-m", "sphinxext_qemudbus", "check", "-q", "--strict"]
        drop_cache = [python, "-c", f"import shutil; shutil.rmtree({str(cache)!r}, ignore_errors=True)"]

        bare = best([python, "-c", BARE_PARSE, str(corpus)], args.repeat)
        cold = best([*check, "--no-cache", str(corpus)], args.repeat)
        single = best([*check, "--no-cache", "--jobs", "1", str(corpus)], args.repeat)
        floor_script = str(Path(__file__).resolve().parent / "floor.py")
        subprocess.run([python, floor_script, "--verify", str(corpus)], check=True)
        floor = best([python, floor_script, str(corpus)], args.repeat)
        filling = best([*check, "--cache-dir", str(cache), str(corpus)], args.repeat, before=drop_cache)
        warm = best([*check, "--cache-dir", str(cache), str(corpus)], args.repeat)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    n = len(files)
    print(f"qemu-dbus check: {n} interfaces ({size / 1e6:.1f} MB, copies of the real registry), best of {args.repeat}")
    print(f"  {'':32} {'wall':>8} {'per interface':>14} {'vs bare parse':>14}")
    rows = [
        ("bare lxml parse (baseline)", bare),
        ("check, cold, all CPUs", cold),
        ("check, cold, one process", single),
        ("model only, no checks (floor)", floor),
        ("check, filling the cache", filling),
        ("check, warm cache", warm),
    ]
    for label, seconds in rows:
        print(f"  {label:32} {seconds:7.2f}s {seconds / n * 1e6:11.0f} us {seconds / bare:13.1f}x")


if __name__ == "__main__":
    main()
