"""Sphinx's own test fixtures, with the test projects under ``tests/roots/test-<name>/``, and the
few helpers the Sphinx tests share to read what a build produced."""

from __future__ import annotations

import os
import re
import shutil
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sphinx
from hypothesis import settings
from sphinx.util.console import strip_colors

from .helpers import read_inventory

pytest_plugins = ["sphinx.testing.fixtures"]

# make check draws the same examples on every run, so that a submission is never refused by
# chance: a counterexample found while exploring is kept as an @example of its test.  make fuzz
# (QEMU_DBUS_HYPOTHESIS=explore) draws fresh ones.
settings.register_profile("check", derandomize=True, database=None)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("QEMU_DBUS_HYPOTHESIS", "check"))

# Started with SIGINT ignored (under nohup, or as a background job of a shell without job
# control), the test run would pass that on to every child it starts, and the tests that press
# Ctrl-C on a child would see it ignored.  A handler of our own is not inherited: children start
# with the default again, as they do from a terminal.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

ROOTS = Path(__file__).parent / "roots"


@pytest.fixture(scope="session")
def rootdir() -> Any:
    """Sphinx 7.2 moved its testing fixtures to `pathlib`; 5.3 wants its own ``path`` class."""
    if sphinx.version_info >= (7, 2):
        return ROOTS
    from sphinx.testing.path import path

    return path(str(ROOTS))


class Built:
    """What a test app produced: warnings (colours stripped, the source folder shown as
    ``SRC``), HTML pages, anchors and the object inventory."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.srcdir = Path(app.srcdir)
        self.outdir = Path(app.outdir)

    def warnings(self) -> list[str]:
        text = strip_colors(self.app._warning.getvalue())
        text = text.replace(str(self.srcdir) + "/", "SRC/")
        # Sphinx >= 8 appends the warning type itself; 5.3 gets it from the extension.  Both
        # end the same way, but docutils' own messages are typed only on newer Sphinx.
        text = text.replace(" [docutils]", "")
        return [
            line
            for line in text.splitlines()
            if ("WARNING" in line or "ERROR" in line)
            # a second test app in one process registers Sphinx's own nodes and directives again
            and "is already registered" not in line
        ]

    def html(self, docname: str) -> str:
        return (self.outdir / f"{docname}.html").read_text(encoding="utf-8")

    def anchors(self) -> set[tuple[str, str]]:
        """Every ``id`` of every page (the search and index pages aside)."""
        result = set()
        for page in self.outdir.rglob("*.html"):
            name = page.relative_to(self.outdir).as_posix()
            if name in {"search.html", "genindex.html"}:
                continue
            for anchor in re.findall(r'\sid="([^"]+)"', page.read_text(encoding="utf-8")):
                result.add((name, anchor))
        return result

    def inventory(self) -> dict[str, tuple[str, str]]:
        """``objects.inv``: name → (``domain:role``, URI), for the ``dbus`` domain's objects (the
        bare-name aliases for QEMU's extension aside: `DBusDomain.get_objects`)."""
        rows = read_inventory(self.outdir / "objects.inv")
        return {name: (kind, uri) for name, kind, priority, uri in rows if kind.startswith("dbus:") and priority >= 0}


@pytest.fixture
def built() -> Callable[[Any], Built]:
    """``built(app)`` wraps a test app that has run ``app.build()``."""
    return Built


@pytest.fixture
def copied_root(tmp_path: Path, rootdir: Any) -> Callable[[str], Any]:
    """``copied_root("intersphinx")``: a private copy of a test root, as the ``srcdir`` of an
    app made with ``make_app`` (a build never writes into ``tests/roots``)."""

    def copy(name: str) -> Any:
        target = tmp_path / name
        shutil.copytree(ROOTS / f"test-{name}", target)
        return type(rootdir)(str(target))  # pathlib.Path, or sphinx.testing.path.path on 5.3

    return copy
