"""Real-world documentation projects for the docs benchmark and the build comparison, each built
with this extension or with QEMU's own (``docs/sphinx/dbusdoc.py``).

Neither QEMU's files nor the freedesktop XML are in the repository.  QEMU's extension, its three
D-Bus pages and its XML are fetched by hand into ``bench/_qemu/``, laid out as in QEMU's tree
(``bench/README.md`` lists them); the freedesktop files are what Debian's
``xdg-desktop-portal-dev`` and ``modemmanager-dev`` install in ``/usr/share/dbus-1/interfaces``.
Each function returns the source folder of the project it wrote, or, when a file it needs is
missing, the reason it could not.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Union

HERE = Path(__file__).resolve().parent
QEMU = HERE / "_qemu"
QEMU_EXTENSION = ("docs/sphinx/dbusdoc.py", "docs/sphinx/dbusdomain.py", "docs/sphinx/dbusparser.py")
QEMU_PAGES = ("docs/interop/dbus.rst", "docs/interop/dbus-display.rst", "docs/interop/dbus-vmstate.rst")
QEMU_XML = ("ui/dbus-display1.xml", "backends/dbus-vmstate1.xml", "tools/qemu-vnc/qemu-vnc1.xml")
SYSTEM_INTERFACES = Path("/usr/share/dbus-1/interfaces")
#: One file of each Debian package the corpus needs, to say which one is missing.
DEBIAN_PACKAGES = {
    "xdg-desktop-portal-dev": "org.freedesktop.portal.Request.xml",
    "modemmanager-dev": "org.freedesktop.ModemManager1.xml",
}
EXTENSIONS = ("ours", "qemu")

Project = Union[Path, str]  # the source folder, or why there is none


def _missing_qemu(names: tuple[str, ...]) -> str | None:
    missing = [name for name in names if not (QEMU / name).is_file()]
    if missing:
        return f"QEMU's {', '.join(missing)} not in {QEMU} (bench/README.md says how to fetch them)"
    return None


def _conf(extension: str, srctree: Path) -> str:
    """``conf.py`` lines that load one extension over the D-Bus files under ``srctree``."""
    if extension == "ours":
        return f'extensions = ["sphinxext_qemudbus"]\ndbusdoc_srctree = {str(srctree)!r}\n'
    # QEMU's dbusdoc reads qapidoc_srctree, a setting of QEMU's qapidoc extension.
    return (
        "import sys\n"
        f"sys.path.insert(0, {str(QEMU / 'docs' / 'sphinx')!r})\n"
        'extensions = ["dbusdoc"]\n'
        f"qapidoc_srctree = {str(srctree)!r}\n\n\n"
        "def setup(app):\n"
        '    app.add_config_value("qapidoc_srctree", None, "env")\n'
    )


def qemu_pages(target: Path, extension: str) -> Project:
    """QEMU's three D-Bus pages and their two XML files, with QEMU's settings (``default_role``,
    ``dbus_index_common_prefix``); the source folder is ``target/docs``."""
    problem = _missing_qemu(QEMU_PAGES + QEMU_XML[:2] + (QEMU_EXTENSION if extension == "qemu" else ()))
    if problem:
        return problem
    if target.exists():
        shutil.rmtree(target)
    for name in QEMU_PAGES + QEMU_XML[:2]:
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(QEMU / name, target / name)
    docs = target / "docs"
    (docs / "conf.py").write_text(
        _conf(extension, target)
        + 'project = "QEMU"\ndefault_role = "any"\ndbus_index_common_prefix = ["org.qemu."]\n'
        + 'exclude_patterns = ["_build"]\n',
        encoding="utf-8",
    )
    pages = "".join(f"   {Path(name).relative_to('docs').with_suffix('').as_posix()}\n" for name in QEMU_PAGES)
    (docs / "index.rst").write_text(f"QEMU\n====\n\n.. toctree::\n\n{pages}", encoding="utf-8")
    return docs


def corpus_files() -> list[Path] | str:
    """QEMU's display, vmstate and vnc XML and every file of ``/usr/share/dbus-1/interfaces``
    (72 here: the two Debian packages' and PackageKit's)."""
    problem = _missing_qemu(QEMU_XML)
    if problem:
        return problem
    missing = [package for package, name in DEBIAN_PACKAGES.items() if not (SYSTEM_INTERFACES / name).is_file()]
    if missing:
        return f"{', '.join(missing)} not installed ({SYSTEM_INTERFACES}): apt-get install {' '.join(missing)}"
    return [QEMU / name for name in QEMU_XML] + sorted(SYSTEM_INTERFACES.glob("*.xml"))


def corpus(target: Path, extension: str) -> Project:
    """One page per file of `corpus_files`, each a ``.. dbus-doc::`` of its file."""
    files = corpus_files()
    if isinstance(files, str):
        return files
    if extension == "qemu":
        problem = _missing_qemu(QEMU_EXTENSION)
        if problem:
            return problem
    if target.exists():
        shutil.rmtree(target)
    xml = target / "xml"
    xml.mkdir(parents=True)
    toctree = []
    for index, path in enumerate(files):
        shutil.copyfile(path, xml / path.name)
        title = path.stem
        docname = f"page{index:03d}"
        toctree.append(f"   {docname}\n")
        (target / f"{docname}.rst").write_text(
            f"{title}\n{'=' * len(title)}\n\n.. dbus-doc:: {path.name}\n", encoding="utf-8"
        )
    (target / "conf.py").write_text(
        _conf(extension, xml) + 'project = "corpus"\nexclude_patterns = ["_build", "xml"]\n', encoding="utf-8"
    )
    (target / "index.rst").write_text(f"Corpus\n======\n\n.. toctree::\n\n{''.join(toctree)}", encoding="utf-8")
    return target
