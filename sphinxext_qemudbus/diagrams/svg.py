"""A laid-out lane diagram as SVG: inline in HTML pages, or a file of its own (``qemu-dbus policy
--diagram svg``).

Every colour is ``currentColor`` (the text colour around the picture), so the picture follows a
light or a dark theme without knowing which; the one accent, for arrows that cross from one user
to another, is a mid-tone orange that keeps a contrast of at least 3:1 against white and black
alike, and those arrows are also thicker, so colour is never the only signal.  The picture is
``role="img"`` with a title and a description that say in words everything it shows.

Every name in the picture may come from a hostile file (an interface name, a user name in a
deployment): all text and attribute values are escaped, and characters XML cannot carry are
replaced.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping

from .lanes import Diagram, Group, Layout, Shape, Span, Text, _num, layout

SVG_NS = "http://www.w3.org/2000/svg"
FONT_FAMILY = "'DejaVu Sans Mono', Menlo, Consolas, 'Liberation Mono', monospace"
ACCENT = "#e8590c"

#: The stylesheet of the diagrams: in the extension's CSS file for HTML pages, and inside a
#: standalone SVG file.
CSS = f"""\
svg.dbus-diagram {{ max-width: none; height: auto; overflow: visible; }}
svg.dbus-diagram text {{ font-family: {FONT_FAMILY}; fill: currentColor; }}
svg.dbus-diagram .dbus-d-lane-label, svg.dbus-diagram .dbus-d-frame-label {{ font-size: 12px; }}
svg.dbus-diagram .dbus-d-label, svg.dbus-diagram .dbus-d-note-text, svg.dbus-diagram .dbus-d-legend {{ font-size: 11px; }}
svg.dbus-diagram .dbus-d-frame-label {{ font-weight: bold; }}
svg.dbus-diagram .dbus-d-lane-box {{ fill: currentColor; fill-opacity: 0.07; stroke: currentColor; stroke-width: 1.2; }}
svg.dbus-diagram .dbus-d-daemon {{ fill-opacity: 0.16; stroke-width: 2; }}
svg.dbus-diagram .dbus-d-frame {{ fill: currentColor; fill-opacity: 0.04; stroke: currentColor; stroke-opacity: 0.35; stroke-width: 1; }}
svg.dbus-diagram .dbus-d-lifeline {{ stroke: currentColor; stroke-opacity: 0.4; stroke-dasharray: 2 3; }}
svg.dbus-diagram .dbus-d-arrow {{ stroke: currentColor; stroke-width: 1.4; fill: none; }}
svg.dbus-diagram .dbus-d-p2p {{ stroke-dasharray: 6 4; }}
svg.dbus-diagram .dbus-d-cross {{ stroke: {ACCENT}; stroke-width: 2.8; }}
svg.dbus-diagram .dbus-d-head {{ fill: currentColor; stroke-dasharray: none; stroke-width: 1; }}
svg.dbus-diagram .dbus-d-cross.dbus-d-head {{ fill: {ACCENT}; }}
svg.dbus-diagram .dbus-d-management.dbus-d-head {{ fill: none; stroke-width: 1.6; }}
svg.dbus-diagram .dbus-d-note {{ fill: currentColor; fill-opacity: 0.06; stroke: currentColor; stroke-opacity: 0.5; }}
svg.dbus-diagram a {{ text-decoration: underline; }}
svg.dbus-diagram a:hover, svg.dbus-diagram a:focus {{ fill: {ACCENT}; }}
"""

_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def escape(text: str) -> str:
    """Text or attribute value safe in XML and HTML."""
    return html.escape(_NOT_XML.sub("\ufffd", text), quote=True)


def render_svg(
    diagram: Diagram,
    *,
    id_prefix: str = "dbus-diagram",
    hrefs: Mapping[str, str] | None = None,
    standalone: bool = False,
) -> str:
    """The diagram as one ``<svg>`` element.  ``hrefs`` maps full D-Bus names to the URL of their
    reference entry (names without one stay plain text); ``standalone`` adds the XML declaration
    and the stylesheet, for a file of its own.  ``id_prefix`` must be unique in the page."""
    return svg_of_layout(layout(diagram), diagram, id_prefix=id_prefix, hrefs=hrefs or {}, standalone=standalone)


def svg_of_layout(
    placed: Layout, diagram: Diagram, *, id_prefix: str, hrefs: Mapping[str, str], standalone: bool
) -> str:
    title_id, desc_id = f"{id_prefix}-title", f"{id_prefix}-desc"
    width, height = _num(placed.width), _num(placed.height)
    out: list[str] = []
    if standalone:
        out.append('<?xml version="1.0" encoding="utf-8"?>')
    out.append(
        f'<svg xmlns="{SVG_NS}" class="dbus-diagram" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-labelledby="{escape(title_id)} {escape(desc_id)}">'
    )
    out.append(f'<title id="{escape(title_id)}">{escape(diagram.title)}</title>')
    out.append(f'<desc id="{escape(desc_id)}">{escape(diagram.description())}</desc>')
    if standalone:
        out.append(f"<style>svg.dbus-diagram {{ color: black; background: white; }}\n{CSS}</style>")
    mask = f"{id_prefix}-holes"
    out.append(_mask(mask, placed))
    for group in placed.groups:
        out.append(_group(group, hrefs, mask))
    out.append("</svg>")
    return "\n".join(out) + ("\n" if standalone else "")


def _mask(mask_id: str, placed: Layout) -> str:
    """The picture's one mask: everywhere but the holes (white shows, black hides).  Masked
    groups pass under every label and note with one element each, however many rows cross
    them."""
    width, height = _num(placed.width), _num(placed.height)
    holes = "".join(
        f'<rect x="{_num(x)}" y="{_num(y)}" width="{_num(w)}" height="{_num(h)}" fill="black"/>'
        for x, y, w, h in placed.holes
    )
    return (
        f'<defs><mask id="{escape(mask_id)}" maskUnits="userSpaceOnUse" x="0" y="0" width="{width}" height="{height}">'
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="white"/>{holes}</mask></defs>'
    )


def _group(group: Group, hrefs: Mapping[str, str], mask_id: str) -> str:
    masked = f' mask="url(#{escape(mask_id)})"' if group.masked else ""
    parts = [f'<g class="{escape(group.cls)}"{masked}>']
    if group.title:
        parts.append(f"<title>{escape(group.title)}</title>")
    for item in group.items:
        parts.append(_text(item, hrefs) if isinstance(item, Text) else _shape(item))
    parts.append("</g>")
    return "".join(parts)


def _shape(shape: Shape) -> str:
    attributes = " ".join(
        f'{name}="{_num(value) if isinstance(value, (float, int)) else escape(value)}"'
        for name, value in shape.attributes
    )
    return f'<{shape.tag} class="{escape(shape.cls)}" {attributes}/>'


def _text(text: Text, hrefs: Mapping[str, str]) -> str:
    anchor = ' text-anchor="middle"' if text.anchor == "middle" else ""
    body = "".join(_span(span, hrefs) for span in text.spans)
    return f'<text class="{escape(text.cls)}" x="{_num(text.x)}" y="{_num(text.y)}"{anchor} xml:space="preserve">{body}</text>'


def _span(span: Span, hrefs: Mapping[str, str]) -> str:
    content = escape(span.text)
    href = hrefs.get(span.target) if span.target else None
    if href is None:
        return content
    return f'<a href="{escape(href)}"><tspan>{content}</tspan></a>'
