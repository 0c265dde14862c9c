"""``make package``: the project as a user gets it.

1. Build the sdist, then the wheel from that sdist (``python -m build``), with exactly the
   setuptools that ``build-system.requires`` names as the minimum, so the stated requirement is
   the one proven to work.
2. Check what the two archives carry: every registry file and the licence, and nothing stray
   (tests, caches, virtual environments, built docs); ``twine check --strict`` on both, as PyPI
   would check their metadata and render the long description.
3. For each interpreter named with ``--python`` (``make package`` names the default ``python3``
   and Python 3.9, the oldest supported, QEMU's floor): install the wheel into a fresh virtual
   environment and, from a temporary folder outside the repository, with no registry setting:
   build an rST page and a MyST page with ``sphinx-build -W -n``; build QEMU's own three D-Bus
   pages from a copy of QEMU's files (``tests/qemu-tree/``, switched as ``docs/qemu-switch.rst``
   says) with QEMU's settings only, which must give exactly the one real warning; show an
   interface as QEMU 7.2 had it, and write the two-uids bus policy, which a real ``dbus-daemon``
   must then load.

Run it with the project's virtual environment: ``.venv/bin/python ci/check_package.py [--python
PYTHON ...]`` (without ``--python``, the interpreter that runs it).  It needs
the network only to fetch what pip fetches for any user (setuptools, build and the dependencies).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

try:
    import tomllib
except ImportError:  # Python < 3.11
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.qemu_switch import switched_copy  # noqa: E402  (the repository is not installed)

REGISTRY = sorted(p.name for p in (ROOT / "interfaces").iterdir() if re.fullmatch(r"org\.qemu\..*\.xml", p.name))
REGISTRY_FILES = [*REGISTRY, "registry.toml", "SOURCES.md", "probe-results.json"]
#: Paths (or path parts) no archive may carry.
STRAY = re.compile(
    r"(^|/)(tests|bench|docs/_build|\.venv[^/]*|__pycache__|\.pytest_cache|\.mypy_cache|\.ruff_cache|\.qemu-dbus-cache|\.hypothesis|\.git)(/|$)|\.pyc$"
)

#: The one warning QEMU's pages give: a reference to a method Console does not have.
QEMU_WARNING = (
    r"ui/dbus-display1\.xml:\d+: WARNING: reference to method 'org\.qemu\.Display1\.Console\.Register' "
    r"does not resolve \[dbus\.R601\]"
)

CONF_PY = """\
project = "our project"
extensions = ["sphinxext_qemudbus", "myst_parser"]
myst_enable_extensions = ["fieldlist"]
"""
INDEX_RST = """\
Our project
===========

.. toctree::

   thing

.. dbus-interface:: org.qemu.Display1.Console
"""
THING_MD = """\
# Our interface, and one from the registry

```{dbus-interface} org.qemu.Display1.Keyboard
```

````{dbus:interface} org.example.Thing1
:since: 1.0

A hand-written interface; it refers to {dbus:meth}`org.qemu.Display1.Mouse.Press`.

```{dbus:method} Frobnicate
Frobnicate a thing (a MyST field list needs text, or a blank line, before it).

:arg s name: what to frobnicate.
:ret b done: whether it worked.
```
````
"""


def run(argv: list[str | Path], cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(a) for a in argv], cwd=cwd, capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        sys.exit(f"package: FAILED: {' '.join(map(str, argv))}\n{result.stdout}\n{result.stderr}")
    return result


def minimum_setuptools() -> str:
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]["requires"]
    spec = next(r for r in requires if r.startswith("setuptools"))
    match = re.fullmatch(r"setuptools>=([0-9.]+)", spec)
    if match is None:
        sys.exit(f"package: FAILED: build-system.requires should say setuptools>=X.Y.Z, not {spec!r}")
    return match.group(1)


def check_contents(sdist: Path, wheel: Path) -> None:
    with tarfile.open(sdist) as archive:
        names = [name.split("/", 1)[1] for name in archive.getnames() if "/" in name]
    problems = [f"sdist lacks interfaces/{f}" for f in REGISTRY_FILES if f"interfaces/{f}" not in names]
    problems += [f"sdist carries {name}" for name in names if STRAY.search(name)]
    problems += [f"sdist lacks {name}" for name in ("COPYING", "CHANGELOG.md") if name not in names]
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    if not any(name.endswith(".dist-info/licenses/COPYING") for name in names):
        problems.append("wheel lacks the licence (.dist-info/licenses/COPYING)")
    problems += [
        f"wheel lacks sphinxext_qemudbus/interfaces/{f}"
        for f in REGISTRY_FILES
        if f"sphinxext_qemudbus/interfaces/{f}" not in names
    ]
    problems += [f"wheel carries {name}" for name in names if STRAY.search(name)]
    # Every file of the package folder: the code, py.typed and the data (the built-in deployments).
    sources = sorted(
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "sphinxext_qemudbus").rglob("*")
        if p.is_file() and not STRAY.search(p.relative_to(ROOT).as_posix())
    )
    problems += [f"wheel lacks {name}" for name in sources if name not in names]
    if problems:
        sys.exit("package: FAILED:\n  " + "\n  ".join(problems))
    print(
        f"package: sdist and wheel carry the {len(REGISTRY)} interface files, registry.toml, SOURCES.md and "
        "probe-results.json; nothing stray"
    )


def load_in_dbus_daemon(config: Path) -> None:
    daemon = shutil.which("dbus-daemon")
    if daemon is None:
        sys.exit("package: FAILED: dbus-daemon is not installed (Debian: dbus-daemon; .ci/run installs it)")
    process = subprocess.Popen(
        [daemon, f"--config-file={config}", "--nofork", "--print-address"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        address = process.stdout.readline().strip() if process.stdout else ""
        if not address.startswith("unix:"):
            process.kill()
            _, err = process.communicate(timeout=10)
            sys.exit(f"package: FAILED: dbus-daemon did not load the generated configuration:\n{err}")
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=10)
    print(f"package: dbus-daemon loaded the two-uids configuration and listened on {address}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--python", action="append", help="an interpreter to install the wheel with (repeatable)")
    pythons = parser.parse_args().python or [sys.executable]
    work = Path(tempfile.mkdtemp(prefix="qemu-dbus-package-"))
    try:
        setuptools = minimum_setuptools()
        build_env, dist = work / "build-env", work / "dist"
        run([sys.executable, "-m", "venv", build_env])
        run([build_env / "bin/python", "-m", "pip", "install", "-q", f"setuptools=={setuptools}", "build", "twine"])
        # No isolation: the build uses exactly that setuptools.  The wheel is built from the sdist.
        run([build_env / "bin/python", "-m", "build", "--no-isolation", "--outdir", dist, ROOT])
        (sdist,) = dist.glob("*.tar.gz")
        (wheel,) = dist.glob("*.whl")
        print(f"package: built {sdist.name} and {wheel.name} with setuptools {setuptools}")
        check_contents(sdist, wheel)
        # What PyPI would refuse or render badly: the metadata and the long description (README).
        run([build_env / "bin/twine", "check", "--strict", sdist, wheel])
        print("package: twine check --strict passes on both (metadata, and the README as the long description)")
        for number, python in enumerate(pythons):
            check_installed(wheel, python, work / f"user-{number}")
        print("package: ok")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def check_qemu_pages(user_env: Path, where: Path, version: str) -> None:
    """QEMU's three D-Bus pages, as QEMU's build would render them after the switch."""
    docs = switched_copy(where)
    result = run([user_env / "bin/sphinx-build", "--no-color", "-q", "-b", "html", docs, docs / "_build"], cwd=where)
    warnings = [line.replace(str(where) + "/", "") for line in result.stderr.splitlines() if "WARNING" in line]
    if len(warnings) != 1 or not re.fullmatch(QEMU_WARNING, warnings[0]):
        sys.exit(f"package: FAILED: QEMU's pages should give exactly the one real warning, not:\n{result.stderr}")
    print(f"package: on Python {version}, QEMU's own D-Bus pages build with QEMU's settings: {warnings[0]}")


def check_installed(wheel: Path, python: str, work: Path) -> None:
    """The wheel as a user of ``python`` gets it, used from a folder outside the repository."""
    user_env = work / "env"
    run([python, "-m", "venv", user_env])
    version = run([user_env / "bin/python", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"]).stdout.strip()
    run([user_env / "bin/python", "-m", "pip", "install", "-q", wheel])
    print(f"package: the wheel installs on Python {version}")
    project = work / "project"  # outside the repository, no registry setting
    project.mkdir()
    (project / "conf.py").write_text(CONF_PY)
    (project / "index.rst").write_text(INDEX_RST)
    (project / "thing.md").write_text(THING_MD)
    run([user_env / "bin/sphinx-build", "--no-color", "-W", "-n", "-q", "-b", "html", ".", "_build"], cwd=project)
    page = (project / "_build/thing.html").read_text(encoding="utf-8")
    if 'id="org.example.Thing1.Frobnicate"' not in page or "what to frobnicate" not in page:
        sys.exit("package: FAILED: the hand-written MyST method was not rendered with its fields")
    print(f"package: on Python {version}, a project outside the repository builds its rST and MyST pages with -W -n")

    check_qemu_pages(user_env, work / "qemu", version)

    qemu_dbus = user_env / "bin/qemu-dbus"
    path = run([qemu_dbus, "registry", "path"], cwd=project).stdout.strip()
    if not Path(path).is_relative_to(user_env):
        sys.exit(f"package: FAILED: the installed package reads the registry at {path}, not its own")
    shown = run([qemu_dbus, "registry", "show", "org.qemu.Display1.Console", "--qemu-version", "7.2"], cwd=project)
    newer = [line for line in shown.stdout.splitlines() if "[since" in line and "[since 7.0" not in line]
    if newer or "RegisterListener" not in shown.stdout:
        sys.exit(f"package: FAILED: registry show --qemu-version 7.2 lists members newer than 7.2:\n{shown.stdout}")
    socket_dir = work / "bus"
    socket_dir.mkdir()
    policy = run([qemu_dbus, "policy", "--scenario", "two-uids", "--listen", f"unix:dir={socket_dir}"], cwd=project)
    config = project / "bus.conf"
    config.write_text(policy.stdout)
    load_in_dbus_daemon(config)


if __name__ == "__main__":
    os.umask(0o022)
    main()
