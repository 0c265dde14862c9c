"""The paragraph fast path of `rst.DocParser`: a doc comment that `plain_paragraphs` accepts is
built paragraph by paragraph with the inliner alone, which is right only if docutils' own parse
of the same text gives exactly those paragraphs.  Checked against docutils on generated text."""

from __future__ import annotations

from docutils import nodes
from docutils.frontend import get_default_settings
from docutils.parsers.rst import Parser
from docutils.parsers.rst.states import RSTStateMachine, state_classes
from docutils.statemachine import StringList
from docutils.utils import new_document
from hypothesis import example, given
from hypothesis import strategies as st

from sphinxext_qemudbus.sphinx.rst import is_paragraph, plain_paragraphs

# Characters that start or shape block markup, and ordinary ones.
_LINE = st.text(st.sampled_from(list("aZ 9.-*+#()|:=`_>~\t\u2022")), max_size=8)


def docutils_paragraphs(lines: list[str]) -> list[tuple[str, int]] | None:
    """``(text, line)`` of each top-level paragraph docutils makes of ``lines``, or None when it
    makes anything else (a list, a block quote, a title, a literal block...)."""
    settings = get_default_settings(Parser)
    settings.report_level = settings.halt_level = 5
    document = new_document("test", settings)
    # Lines as DocParser gives them (a StringList: no tab expansion), to docutils' own parser.
    RSTStateMachine(state_classes=state_classes, initial_state="Body").run(StringList(lines, "test"), document)
    found = []
    for child in document.children:
        if isinstance(child, nodes.system_message):
            continue
        if not isinstance(child, nodes.paragraph):
            return None
        found.append((child.rawsource, child.line - 1))
    return found


@given(st.lists(_LINE, max_size=6))
@example(["A. Einstein was here"])
@example(["Text", "----"])
@example(["Text::"])
@example(["Text", "  indented"])
@example(["- item"])
@example(["one", "", "", "two", "three"])
@example(["(a) x"])
@example(["#. x"])
@example(["-x  y"])
@example([":field: x"])
def test_plain_paragraphs_are_what_docutils_makes(lines: list[str]) -> None:
    lines = [line.rstrip() for line in lines]  # a doc comment's body has no trailing spaces
    found = plain_paragraphs(lines)
    if found is None:
        return
    expected = docutils_paragraphs(lines)
    assert expected is not None, lines
    assert [("\n".join(lines[start : start + count]), start + 1) for start, count in found] == [
        (text, line + 1) for text, line in expected
    ]


@given(_LINE)
def test_a_line_is_a_paragraph_when_docutils_says_so(line: str) -> None:
    line = line.strip()  # what DocParser gets: a short description, one_line's @arg: text
    if is_paragraph(line):
        assert docutils_paragraphs([line]) == [(line, 0)]
