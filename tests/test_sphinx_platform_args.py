"""A member whose args differ by platform (``Console.RegisterListener``: ``h`` on Unix, ``ay`` on
Windows, in that order in QEMU's XML: Windows first) is shown in one order everywhere, the order
of its signatures (Unix, then Windows), and the description the two variants share is written
once.  Real Sphinx builds of the registry's own file."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

SHARED = "one end of a connected socket pair"


def _entry(page: str, member: str) -> str:
    """The HTML of one member's reference entry."""
    start = page.index(f'id="org.qemu.Display1.{member}"')
    end = page.index("</dl>", page.index("</dd>", start))
    return page[start:end]


@pytest.mark.sphinx("html", testroot="standalone", freshenv=True)
def test_platform_variants_come_in_the_signatures_order_and_share_their_description(
    app: Any, built: Callable[[Any], Any]
) -> None:
    app.build()
    entry = _entry(built(app).html("index"), "Console.RegisterListener")
    text = re.sub(r"<[^>]+>", "", entry)
    signatures = [text.index("RegisterListener(h listener)"), text.index("RegisterListener(ay listener)")]
    blocks = [text.index("Arguments (Unix)"), text.index("Arguments (Windows)")]
    assert signatures == sorted(signatures), "the signatures: Unix, then Windows"
    assert blocks == sorted(blocks), "the argument blocks in the same order"
    assert text.count(SHARED) == 1, "the shared description, once"
    windows = text[blocks[1] :]
    assert "listener (ay, array of byte) \N{EN DASH} as described for Unix, above." in windows
    # Each variant keeps what is its own: its type and its validation note.
    assert "sizeof(WSAPROTOCOL_INFOW)" in windows
    assert "wrapped as a socket" in text[blocks[0] : blocks[1]]
