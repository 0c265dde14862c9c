"""Parse reStructuredText in reST and MyST documents alike: doc comments (`DocParser`) and the
project's own generated tables (`parse_generated`).

Only text that is reST is parsed: a doc comment's body, short description, ``@arg:`` texts and
deprecation reason.  Every node around them (descriptions, fields, notes) is built directly.

In a reST document the directive's own state parses, with the reporter switched to the text's
lines so that every message carries the XML file and line (what autodoc does).  In a MyST
document the directive's state is MyST's mock, whose parsing reads Markdown; doc comments are
reST, so they are parsed by the Body state of a real reST state machine run on the same document
(so ids, targets and labels are registered where they belong).  `NestedStateMachine.run` and the
memo it needs are the same from docutils 0.18 to 0.22.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import sphinx
from docutils import nodes
from docutils.nodes import Node
from docutils.parsers.rst.languages import get_language
from docutils.parsers.rst.states import Body, Inliner, NestedStateMachine, RSTState, state_classes
from docutils.statemachine import StateMachine, StringList
from docutils.utils import Reporter
from sphinx.util.docutils import SphinxDirective, switch_source_input

# Sphinx 7.4 added nested_parse_to_nodes (what ObjectDescription parses its content with);
# before, ObjectDescription used nested_parse_with_titles.  A doc comment is parsed as the
# description's own content would be.
_NESTED_PARSE_TO_NODES = sphinx.version_info >= (7, 4)

_SourceAndLine = Callable[..., "tuple[str | None, int | None]"]

# What makes a line more than a paragraph for docutils' Body state: its transitions other than
# plain text (bullets, enumerators, fields, options, doctests, line blocks, tables, explicit
# markup, anonymous targets, section adornments), indentation, and a trailing "::" (a literal
# block follows).  A line that matches none of them is parsed as one paragraph whatever it
# holds, so it takes the inliner alone.  Each pattern is compiled on its own: the section
# adornment's refers to its own first group.
_BLOCK_STARTS = tuple(
    re.compile(Body.patterns[name])
    for name in (entry if isinstance(entry, str) else entry[0] for entry in Body.initial_transitions)
    if name != "text"
)

# A second line of a paragraph that is a section title's underline instead.
_UNDERLINE = re.compile(Body.patterns["line"])


def is_paragraph(text: str) -> bool:
    """Whether docutils parses the one-line ``text`` as a single paragraph."""
    if not text or "\n" in text or text[0].isspace() or text.endswith("::"):
        return False
    return not any(pattern.match(text) for pattern in _BLOCK_STARTS)


def plain_paragraphs(lines: Sequence[str]) -> list[tuple[int, int]] | None:
    """``(first line, number of lines)`` of each paragraph when ``lines`` (without trailing
    spaces) are nothing but paragraphs that docutils would parse as such: each starts with a
    line `is_paragraph` accepts, has no indented line (a definition list or an indentation
    error) and no line of punctuation alone (a title's underline), and none ends with "::" (a
    literal block follows).  None otherwise."""
    found: list[tuple[int, int]] = []
    start = -1
    for index, line in enumerate([*lines, ""]):
        if not line:
            if start >= 0:
                if lines[index - 1].endswith("::"):
                    return None
                found.append((start, index - start))
                start = -1
        elif line[0].isspace():
            return None
        elif start < 0:
            if not is_paragraph(line):
                return None
            start = index
        elif _UNDERLINE.match(line):
            return None
    return found


class DocParser:
    """Parses text of one XML file as reST, with every node and message located in that file.
    Use it inside `located`: the reporter then maps a line number to the XML line itself."""

    def __init__(self, state: Any, path: str) -> None:
        self.document: nodes.document = state.document
        self.path = path
        self._machine: NestedStateMachine | None = None
        self.state: RSTState = state if isinstance(state, RSTState) else self._standalone_state()

    def _standalone_state(self) -> RSTState:
        """The Body state of a reST state machine of our own, for documents that are not reST."""
        document = self.document
        settings = document.settings
        reporter: Reporter = document.reporter
        inliner = Inliner()
        inliner.init_customizations(settings)
        memo = _Memo(
            document=document,
            reporter=reporter,
            # The reST parser's language module (directive and role names), as RSTStateMachine
            # has it; docutils' document-level one has no directive names.
            language=get_language(settings.language_code, reporter),
            title_styles=[],
            section_level=0,
            section_bubble_up_kludge=False,
            inliner=inliner,
        )
        self._machine = NestedStateMachine(state_classes=state_classes, initial_state="Body")
        root = nodes.Element()
        root.document = document
        with _reporter_lines(reporter, lambda lineno=None: (self.path, lineno)):
            self._machine.run(StringList(), 0, memo, root, True)  # gives the states their memo
        state = self._machine.get_state()
        assert isinstance(state, RSTState)
        return state

    def close(self) -> None:
        if self._machine is not None:
            self._machine.unlink()
            self._machine = None

    @contextmanager
    def located(self) -> Iterator[None]:
        """Line numbers given to the parser (`inline`, `paragraph`) are lines of the XML file."""
        with _reporter_lines(self.document.reporter, lambda lineno=None: (self.path, lineno)):
            yield

    def inline(self, text: str, line: int, parent: nodes.Element | None = None) -> tuple[list[Node], list[Node]]:
        """``text`` (one paragraph's worth) as inline nodes, and the messages of its parse."""
        state = self.state
        found, messages = state.inliner.parse(text, line, state.memo, parent if parent is not None else state.parent)
        return list(found), list(messages)

    def paragraph(self, text: str, line: int, parent: nodes.Element) -> list[Node]:
        """One line of text as the body elements docutils makes of it (nearly always one
        paragraph, built here from the inline nodes, as docutils' Body state builds it)."""
        if not is_paragraph(text):
            return self.body(text, line)
        found, messages = self.inline(text, line, parent)
        paragraph = nodes.paragraph(text, "", *found)
        paragraph.source, paragraph.line = self.path, line
        return [paragraph, *messages]

    def body(self, text: str, first_line: int) -> list[Node]:
        """Lines of text (starting on ``first_line`` of the XML) as body elements, parsed as a
        description's content is: with section titles allowed, in a title context of their own.
        Text that is only paragraphs (most doc comments) takes the inliner alone, paragraph by
        paragraph, as docutils' Text state does: a state machine costs more than the text."""
        lines = text.split("\n")
        paragraphs = plain_paragraphs(lines)
        if paragraphs is not None:
            container = nodes.Element()
            container.document = self.document
            for start, count in paragraphs:
                data = "\n".join(lines[start : start + count])
                found, messages = self.inline(data, first_line + start, container)
                paragraph = nodes.paragraph(data, "", *found)
                paragraph.source, paragraph.line = self.path, first_line + start
                container += paragraph
                container += messages
            return list(container.children)
        content = StringList(lines, items=[(self.path, first_line - 1 + index) for index in range(len(lines))])
        with _content_lines(self.document.reporter, content):
            if _NESTED_PARSE_TO_NODES:
                from sphinx.util.parsing import nested_parse_to_nodes

                return list(nested_parse_to_nodes(self.state, content, allow_section_headings=True))
            from sphinx.util.nodes import nested_parse_with_titles

            container = nodes.Element()
            container.document = self.document
            nested_parse_with_titles(self.state, content, container)
            return list(container.children)


@contextmanager
def _reporter_lines(reporter: Reporter, source_and_line: _SourceAndLine) -> Iterator[None]:
    """Have ``reporter`` locate messages with ``source_and_line`` for a while (as Sphinx's
    `switch_source_input` does; a MyST document's reporter may have no such function yet)."""
    saved = reporter.__dict__.get("get_source_and_line")
    reporter.get_source_and_line = source_and_line
    try:
        yield
    finally:
        if saved is None:
            del reporter.get_source_and_line
        else:
            reporter.get_source_and_line = saved


def _content_lines(reporter: Reporter, content: StringList) -> Any:
    """Have ``reporter`` locate messages by the lines of ``content``, which carry their own
    source and line."""
    lines: StateMachine[None] = StateMachine([], None)  # type: ignore[arg-type]
    lines.input_lines = content
    return _reporter_lines(reporter, lines.get_source_and_line)


def parse_generated(directive: SphinxDirective, lines: Sequence[str]) -> list[Node]:
    """Parse reST the project itself generates (a table of its rules) at the directive's place."""
    source, line = directive.get_source_info()
    content = StringList(list(lines), items=[(source or "", max((line or 1) - 1, 0))] * len(lines))
    state: Any = directive.state  # MyST's mock in a Markdown document
    container = nodes.Element()
    container.document = state.document
    if isinstance(state, RSTState):
        with switch_source_input(state, content):
            state.nested_parse(content, 0, container, match_titles=True)
        return list(container.children)
    parser = DocParser(state, source or "")
    try:
        with _content_lines(parser.document.reporter, content):
            parser.state.nested_parse(content, 0, container, match_titles=True)
    finally:
        parser.close()
    return list(container.children)


class _Memo:
    """The parse-global data that docutils' state machines share (``RSTStateMachine.memo``)."""

    def __init__(self, **attributes: Any) -> None:
        self.__dict__.update(attributes)
