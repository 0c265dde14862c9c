"""Generate a benchmark corpus from the registry: realistic interfaces, not synthetic stubs.

Group ``k`` is a full copy of ``interfaces/`` with ``org.qemu.`` renamed to ``org.qemu.BenchK.``,
so every doc comment, platform variant, annotation and cross-reference of the real registry is
exercised, and references still resolve inside each group.
"""

from __future__ import annotations

import argparse
import re
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REGISTRY = ROOT / "interfaces"


def generate(target: Path, count: int) -> list[Path]:
    """Write ``count`` interface files under ``target`` (emptied first); return their paths."""
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    sources = sorted(REGISTRY.glob("*.xml"))
    texts = [(p.name, p.read_text(encoding="utf-8")) for p in sources]
    paths: list[Path] = []
    group = 0
    while len(paths) < count:
        prefix = f"org.qemu.Bench{group}."
        path_prefix = f"/org/qemu/Bench{group}/"
        for name, text in texts:
            if len(paths) == count:
                break
            renamed = re.sub(r"\borg\.qemu\.(?=[A-Z])(?!Registry\.)", prefix, text)
            renamed = renamed.replace("/org/qemu/", path_prefix)
            path = target / name.replace("org.qemu.", prefix)
            path.write_text(renamed, encoding="utf-8")
            paths.append(path)
        group += 1
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("target", type=Path)
    parser.add_argument("--count", type=int, default=10_000)
    args = parser.parse_args()
    print(f"wrote {len(generate(args.target, args.count))} files to {args.target}")


if __name__ == "__main__":
    main()
