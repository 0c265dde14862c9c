"""Roles of some other extension that make what a doc comment may not put in a page: raw HTML
and a local image (the allowlist of directives cannot see roles; the sweep after the parse does)."""

from docutils import nodes


def evil_raw(name, rawtext, text, lineno, inliner, options=None, content=None):
    return [nodes.raw(rawtext, f"<script>alert('{text}')</script>", format="html")], []


def evil_image(name, rawtext, text, lineno, inliner, options=None, content=None):
    return [nodes.image(rawtext, uri=text)], []


def setup(app):
    app.add_role("evil-raw", evil_raw)
    app.add_role("evil-image", evil_image)
    return {"parallel_read_safe": True}
