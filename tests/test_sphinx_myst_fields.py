"""A hand-written method in MyST whose fields MyST leaves as text (no ``fieldlist`` extension): the
signature is built from those lines, so the extension knows they are there, and says that the
page shows them as raw text, at their line, with the fix.  Real Sphinx builds."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

#: The README's own MyST example.
THING = """\
# A thing

````{dbus:interface} org.example.Thing1
```{dbus:method} Frobnicate
Frobnicate a thing.

:arg s name: what to frobnicate.
:ret b done: whether it worked.
```

```{dbus:signal} Frobnicated
Said after each frobnication.

:arg s name: what was frobnicated.
```

```{dbus:method} Rest
Takes nothing, returns nothing: no field, no warning.
```
````
"""

CONF = """\
project = "fields"
extensions = ["sphinxext_qemudbus", "myst_parser"]
exclude_patterns = ["_build"]
"""


def _build(make_app: Callable[..., Any], tmp_path: Path, conf: str) -> Any:
    (tmp_path / "conf.py").write_text(conf)
    (tmp_path / "index.md").write_text(THING)
    app = make_app("html", srcdir=_srcdir(tmp_path), freshenv=True)
    app.build()
    return app


def _srcdir(path: Path) -> Any:
    try:  # Sphinx 5.3's testing fixtures want their own path class
        from sphinx.testing.path import path as sphinx_path
    except ImportError:
        return path
    return sphinx_path(str(path))


def test_fields_myst_leaves_as_text_are_a_located_warning_with_the_fix(
    make_app: Callable[..., Any], tmp_path: Path, built: Callable[[Any], Any]
) -> None:
    app = _build(make_app, tmp_path, CONF)
    fix = 'MyST parses field lists only with its fieldlist extension: add myst_enable_extensions = ["fieldlist"] to conf.py'
    assert built(app).warnings() == [
        f"SRC/index.md:7: WARNING: the :arg:/:ret: fields of method org.example.Thing1.Frobnicate are shown as "
        f"plain text; {fix} [dbus.field-list]",
        f"SRC/index.md:14: WARNING: the :arg:/:ret: fields of signal org.example.Thing1.Frobnicated are shown as "
        f"plain text; {fix} [dbus.field-list]",
    ]


def test_with_fieldlist_the_fields_render_and_nothing_warns(
    make_app: Callable[..., Any], tmp_path: Path, built: Callable[[Any], Any]
) -> None:
    app = _build(make_app, tmp_path, CONF + 'myst_enable_extensions = ["fieldlist"]\n')
    result = built(app)
    assert result.warnings() == []
    page = result.html("index")
    assert "what to frobnicate." in page
    assert ":arg s name:" not in page


@pytest.mark.sphinx("html", testroot="myst", freshenv=True)
def test_generated_methods_in_a_myst_page_never_warn(app: Any, built: Callable[[Any], Any]) -> None:
    """``{dbus-interface}`` in MyST generates reST, whose fields are always a field list."""
    app.build()
    assert not [warning for warning in built(app).warnings() if "field-list" in warning]
