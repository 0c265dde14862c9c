"""``make bench``: every benchmark of the project, each against a baseline measured in the same run.

* ``checker_bench``: ``qemu-dbus check`` on 10,000 interfaces against a bare lxml parse.
* ``hostile_bench``: the shapes that were once quadratic (a one-line corpus, a hostile
  one-liner, a pathological reference) at two sizes, against a bare lxml parse of the same bytes.
* ``sphinx_bench``: a docs build rendering 200 interfaces against plain reST of the same shape,
  and an incremental rebuild after editing one XML file.
* ``interpreters_bench``: the same stages on Python 3.9 (``.venv-oldest``) and the default Python.
* ``live_bench``: ``qemu-dbus conform`` against hostile peers, each run's time against its
  deadline and its peak RSS.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import checker_bench
import hostile_bench
import interpreters_bench
import live_bench
import sphinx_bench


def main() -> int:
    checker_bench.main([])
    print()
    hostile_bench.main([])
    print()
    interpreters_bench.main([])
    print()
    status = sphinx_bench.main([])
    print()
    return live_bench.main([]) or status


if __name__ == "__main__":
    raise SystemExit(main())
