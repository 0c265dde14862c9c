"""Man pages (``-b man``, which QEMU's build runs too): one line per platform variant.

A member that differs by platform has one signature line per variant (``Unix method
RegisterListener(h listener)`` and ``Windows method RegisterListener(ay listener)``).  HTML and
text show each line apart; Sphinx's man page writer joins a multi-line signature with spaces, into
one run-on line.  For man pages only, such a signature becomes one signature per line, which the
writer gives a line (a term) of its own.
"""

from __future__ import annotations

from typing import Any

from sphinx import addnodes
from sphinx.transforms.post_transforms import SphinxPostTransform


class SignatureLinesForMan(SphinxPostTransform):
    builders = ("man",)
    default_priority = 200

    def run(self, **kwargs: Any) -> None:
        for desc in list(self.document.findall(addnodes.desc)):
            if desc.get("domain") != "dbus":
                continue
            for signature in [child for child in desc.children if isinstance(child, addnodes.desc_signature)]:
                lines = [child for child in signature.children if isinstance(child, addnodes.desc_signature_line)]
                if not signature.get("is_multiline") or len(lines) < 2:
                    continue
                split = []
                for number, line in enumerate(lines):
                    # The first keeps the ids (the target); man pages have no anchors anyway.
                    single = addnodes.desc_signature(
                        "", "", *line.children, ids=signature["ids"] if number == 0 else []
                    )
                    split.append(single)
                signature.replace_self(split)


def setup(app: Any) -> None:
    app.add_post_transform(SignatureLinesForMan)
