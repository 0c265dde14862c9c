"""Parse generated reStructuredText once, in reST and MyST documents alike.

In a reST document the directive's own state does a nested parse, with the reporter switched to the
generated lines so every message carries the XML file and line (what autodoc does).

In a MyST document the directive's state is MyST's mock, whose ``nested_parse`` reads Markdown; the
generated text is reST, so it is parsed by a real reST state machine instead, run on the same
document (so ids, targets and labels are registered where they belong) and rooted at a container
node.  `NestedStateMachine.run` and the memo it needs are the same from docutils 0.18 to 0.22.
"""

from __future__ import annotations

from typing import Any

from docutils import nodes
from docutils.languages import get_language
from docutils.nodes import Node
from docutils.parsers.rst.states import Inliner, NestedStateMachine, RSTState, state_classes
from docutils.statemachine import StateMachine, StringList
from docutils.utils import Reporter
from sphinx.util.docutils import switch_source_input


def parse_generated(state: Any, content: StringList) -> list[Node]:
    """Parse ``content`` (reST whose lines carry their own source and line) into nodes."""
    container = nodes.Element()
    container.document = state.document
    if isinstance(state, RSTState):
        with switch_source_input(state, content):
            state.nested_parse(content, 0, container, match_titles=True)
    else:
        _parse_outside_rst(state.document, content, container)
    return list(container.children)


def _parse_outside_rst(document: nodes.document, content: StringList, container: nodes.Element) -> None:
    settings = document.settings
    reporter: Reporter = document.reporter
    inliner = Inliner()
    inliner.init_customizations(settings)
    memo = _Memo(
        document=document,
        reporter=reporter,
        language=get_language(settings.language_code, reporter),
        title_styles=[],
        section_level=0,
        section_bubble_up_kludge=False,
        inliner=inliner,
    )
    machine = NestedStateMachine(state_classes=state_classes, initial_state="Body")
    lines: StateMachine[None] = StateMachine([], None)  # type: ignore[arg-type]  # maps lines of `content` to their sources
    lines.input_lines = content
    saved = getattr(reporter, "get_source_and_line", None)
    reporter.get_source_and_line = lines.get_source_and_line
    try:
        machine.run(content, 0, memo, container, True)
    finally:
        machine.unlink()
        if saved is None:
            del reporter.get_source_and_line
        else:
            reporter.get_source_and_line = saved


class _Memo:
    """The parse-global data that docutils' state machines share (``RSTStateMachine.memo``)."""

    def __init__(self, **attributes: Any) -> None:
        self.__dict__.update(attributes)
