"""The stylesheet of the reference pages: badges, validation notes, design notes.

Kept as a string and written into the HTML output's ``_static`` folder after the build, so the
package ships no data files and works from a plain checkout.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ..diagrams.svg import CSS as DIAGRAM_CSS

if TYPE_CHECKING:
    from sphinx.application import Sphinx

CSS_FILE = "sphinxext-qemudbus.css"

CSS = (
    """\
/* sphinxext-qemudbus: D-Bus reference pages */
.dbus-badge {
    display: inline-block;
    padding: 0 0.45em;
    margin-left: 0.2em;
    border-radius: 0.6em;
    font-size: 0.75em;
    font-weight: normal;
    font-family: sans-serif;
    line-height: 1.5;
    vertical-align: middle;
    background: #e8eef5;
    color: #24405c;
    border: 1px solid #b8c8da;
}
.dbus-badge-deprecated { background: #fbe9e7; color: #8a1c0b; border-color: #e8a598; }
.dbus-badge-stability { background: #e8f5e9; color: #1b5e20; border-color: #a5d6a7; }
.dbus-badge-platform, .dbus-badge-platform-variant { background: #fff8e1; color: #6d4c00; border-color: #e6c66e; }
.dbus-badge-noreply { background: #f3e5f5; color: #4a148c; border-color: #cfa6d8; }
.dbus-badge-platform-variant { margin-left: 0; margin-right: 0.3em; }
.dbus-human-type { color: #555; }
div.dbus-short p { font-size: 1.05em; font-style: italic; margin-bottom: 0.5em; }
div.dbus-validation p {
    margin: 0.2em 0 0.4em 0;
    padding-left: 0.6em;
    border-left: 3px solid #b8c8da;
    font-size: 0.95em;
}
div.admonition.dbus-design-note { border-left: 4px solid #e6c66e; }
div.admonition.dbus-deprecated { border-left: 4px solid #e8a598; }
dl.field-list.dbus-metadata > dt { white-space: nowrap; }
table.dbus-table { width: 100%; }
table.dbus-table td p { margin: 0; }
/* Long D-Bus names wrap at their dots (the <wbr> the extension puts after each), never in the
   middle of a word: each piece between two dots stays whole.  Other literals of a reference entry
   (object paths, bus names) may break anywhere rather than push a phone's page sideways. */
table.dbus-table td span.pre, code.xref.dbus span.pre, code.dbus-name span.pre,
dt.sig-object.dbus span.sig-name span.pre {
    white-space: normal; overflow-wrap: normal; word-break: normal;
}
dl.dbus-metadata code span.pre { white-space: normal; overflow-wrap: anywhere; }
/* A reference entry's fields (a grid in Sphinx's stylesheet) shrink to the page, and a long word
   of their text (an error name in a validation note) breaks rather than widen it. */
dl.dbus dl.field-list > dd { min-width: 0; overflow-wrap: break-word; }
dl.dbus dl.field-list > dt { word-break: normal; overflow-wrap: normal; }
/* On a phone, a field's name goes above its text, which then has the page's width. */
@media screen and (max-width: 600px) {
    dl.dbus dl.field-list { display: block; }
    dl.dbus dl.field-list > dd { margin-left: 1em; }
}
/* A table wider than the page scrolls in its own box. */
div.dbus-table-scroll { overflow-x: auto; max-width: 100%; }
/* Diagrams: inline SVG at its natural size (its text stays readable on a phone, the figure
   scrolls sideways instead); figures to compare sit side by side where the page is wide enough. */
div.dbus-diagram-row { display: flex; flex-wrap: wrap; gap: 1em 1.5em; align-items: flex-start; }
div.dbus-diagram-row > figure.dbus-diagram-figure { flex: 0 1 auto; min-width: 0; }
figure.dbus-diagram-figure { margin: 1em 0; max-width: 100%; }
div.dbus-diagram-scroll { overflow-x: auto; max-width: 100%; }
figure.dbus-diagram-figure figcaption { font-style: italic; margin: 0.3em 0; }
details.dbus-diagram-text > summary { cursor: pointer; font-size: 0.9em; }
"""
    + DIAGRAM_CSS
)


def write_css(app: Sphinx, exception: BaseException | None) -> None:
    """``build-finished``: put the stylesheet next to Sphinx's own in ``_static``."""
    if exception is not None or app.builder.format != "html":
        return
    static = os.path.join(app.outdir, "_static")
    os.makedirs(static, exist_ok=True)
    path = os.path.join(static, CSS_FILE)
    try:
        with open(path, encoding="utf-8") as stream:
            if stream.read() == CSS:
                return
    except OSError:
        pass
    with open(path, "w", encoding="utf-8") as stream:
        stream.write(CSS)
