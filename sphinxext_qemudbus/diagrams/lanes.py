"""Lane diagrams: the one drawing model both kinds of picture share, and its layout.

A diagram is a row of *lanes* (a process of a deployment, a participant of a sequence), grouped in
*frames* (the user the processes run as), with a vertical lifeline under each lane; below them,
one *row* per arrow (from one lane to another, its label above it) or note.  A deployment diagram
has one row per caller → implementer pair; a sequence diagram one row per message, in order.

Why a layout of our own rather than a graph-layout library: graphviz is a system dependency
(``make docs`` must work from pip alone), and the pip-installable layered layouts (grandalf) know
neither frames around groups of nodes nor label placement.  This picture needs neither graph
search nor crossing minimisation: lanes sit side by side in frame order, and every arrow gets a
row of its own, so no two labels can share a place and the whole layout is one pass over the
lanes and one over the rows.  What it draws is linear too: one line per lifeline and one box
per frame, whatever the number of rows; where a label or note crosses a lifeline, the lifeline
is hidden by one mask of the picture (`Layout.holes`: a hole per text box), not cut into
segments per row, which made a page of 1,000 lanes and rows hundreds of megabytes.  Frames are
never cut: a label may cross a frame's border, which stays whole.  Text is set in a monospace
font so that its width can be computed here, without a browser: the browser test checks the
result (nothing clipped, no label over another, frames whole and in view, notes not squeezed).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import field
from typing import Union

from ..diagnostics.frozen import record

# --- the model -----------------------------------------------------------------------------------


@record(frozen=True)
class Span:
    """A run of text; ``target`` (a full D-Bus name) and ``kind`` (interface, method, signal,
    property) make it a link to that name's reference entry where the output can link."""

    text: str
    target: str | None = None
    kind: str | None = None


@record(frozen=True)
class Lane:
    id: str
    label: str
    daemon: bool = False  # the bus daemon: it relays bus messages and applies the policy


@record(frozen=True)
class Frame:
    """Adjacent lanes that share something (a user), drawn as a box around them."""

    label: str
    lanes: tuple[str, ...]


@record(frozen=True)
class Arrow:
    source: str  # lane id
    target: str  # lane id
    label: tuple[Span, ...]
    peer_to_peer: bool = False  # dashed: a private connection, no bus policy on the way
    management: bool = False  # open arrowhead: a management interface
    crossing: bool = False  # thick and coloured: from one user to another
    title: str = ""  # the arrow in one plain sentence (tooltip, screen readers)


@record(frozen=True)
class Note:
    first: str  # lane id
    last: str  # lane id
    text: str


Row = Union[Arrow, Note]


@record(frozen=True)
class LegendEntry:
    style: str  # "bus", "p2p", "cross", "management", "peer"
    text: str


@record(frozen=True)
class Table:
    """The diagram's text equivalent: what other builders print instead of the picture."""

    headers: tuple[str, ...]
    rows: tuple[tuple[tuple[Span, ...], ...], ...]


@record(frozen=True)
class Diagram:
    title: str
    summary: str  # what the picture shows, in a sentence or two (the SVG's description)
    lanes: tuple[Lane, ...]
    frames: tuple[Frame, ...]
    rows: tuple[Row, ...]
    legend: tuple[LegendEntry, ...]
    table: Table

    def lane(self, lane_id: str) -> Lane:
        for lane in self.lanes:
            if lane.id == lane_id:
                return lane
        raise KeyError(lane_id)

    @property
    def arrows(self) -> tuple[Arrow, ...]:
        return tuple(row for row in self.rows if isinstance(row, Arrow))

    def description(self) -> str:
        """The whole picture as plain text: the summary, then every row in order."""
        sentences = [self.summary]
        for row in self.rows:
            sentences.append(row.title if isinstance(row, Arrow) else f"Note: {row.text}")
        return " ".join(sentence if sentence.endswith(".") else sentence + "." for sentence in sentences if sentence)


def plain(spans: Iterable[Span]) -> str:
    return "".join(span.text for span in spans)


# --- text metrics --------------------------------------------------------------------------------

#: Advance width of one character of the diagrams' monospace fonts, in em (DejaVu Sans Mono and
#: Menlo: 0.602; Liberation Mono and Courier: 0.600), with a little to spare.
CHAR_EM = 0.61
#: A text box's height in em (DejaVu: ascent 0.928 + descent 0.236), and where the baseline sits.
BOX_EM, ASCENT_EM = 1.17, 0.93
LANE_SIZE, LABEL_SIZE = 12, 11
LINE = {LANE_SIZE: 16.0, LABEL_SIZE: 14.0}


def text_width(chars: int, size: int) -> float:
    return chars * CHAR_EM * size


def chars_in(width: float, size: int) -> int:
    return max(1, int(width / (CHAR_EM * size)))


def wrap(spans: Sequence[Span], max_chars: int) -> list[tuple[Span, ...]]:
    """Break a label into lines of at most ``max_chars`` characters, only between words: after a
    space or a separator span (``, ``).  A linked span is never broken, nor ``Name.{First`` nor
    any word, so a line is longer than ``max_chars`` only when one word is."""
    words: list[list[Span]] = [[]]
    for span in spans:
        pieces = [span] if span.target is not None else _split_words(span.text)
        for piece in pieces:
            words[-1].append(piece)
            if piece.text.endswith((" ", ",")):
                words.append([])
    lines: list[list[Span]] = [[]]
    length = 0
    for word in words:
        size = len(plain(word))
        if not size:
            continue
        if lines[-1] and length + len(plain(word).rstrip()) > max_chars:
            lines.append([])
            length = 0
        lines[-1] += word
        length += size
    return [_merge(line) for line in lines if line]


def _split_words(text: str) -> list[Span]:
    """Plain text as words, each keeping the space after it."""
    parts = text.split(" ")
    return [
        Span(part + (" " if index < len(parts) - 1 else ""))
        for index, part in enumerate(parts)
        if part or index < len(parts) - 1
    ]


def _merge(line: list[Span]) -> tuple[Span, ...]:
    """Adjacent plain spans as one; the line's trailing space dropped."""
    merged: list[Span] = []
    for span in line:
        if merged and span.target is None and merged[-1].target is None:
            merged[-1] = Span(merged[-1].text + span.text)
        else:
            merged.append(span)
    if merged and merged[-1].target is None:
        merged[-1] = Span(merged[-1].text.rstrip())
    return tuple(span for span in merged if span.text)


def wrap_text(text: str, max_chars: int) -> list[str]:
    return [plain(line) for line in wrap([Span(text)], max_chars)]


# --- the layout ----------------------------------------------------------------------------------

MARGIN = 10.0
PAD = 6.0
FRAME_PAD = 4.0
LANE_GAP = 14.0
FRAME_GAP = 6.0
LANE_CHARS = 11  # a lane's label wraps at this many characters
MIN_LANE_WIDTH = 80.0
#: The narrowest picture: two lanes and their labels fit a phone's column (about 310 px).
MIN_WIDTH = 300.0
#: A note wraps its text at no fewer characters than this (the picture's width permitting),
#: however few lanes it spans: a note over one lane is not squeezed into it.
NOTE_CHARS = 36
HEAD = 9.0  # arrowhead length
LEGEND_SAMPLE = 40.0


@record(frozen=True)
class Text:
    x: float
    y: float  # the baseline
    spans: tuple[Span, ...]
    size: int
    cls: str
    anchor: str = "start"  # or "middle"

    @property
    def width(self) -> float:
        return text_width(len(plain(self.spans)), self.size)

    @property
    def box(self) -> tuple[float, float, float, float]:
        """Where the text is estimated to be: (x, top, width, height)."""
        left = self.x - self.width / 2 if self.anchor == "middle" else self.x
        return (left, self.y - ASCENT_EM * self.size, self.width, BOX_EM * self.size)


@record(frozen=True)
class Shape:
    tag: str  # rect, line, polygon, polyline
    attributes: tuple[tuple[str, float | str], ...]
    cls: str


@record(frozen=True)
class Group:
    cls: str
    items: tuple[Text | Shape, ...]
    title: str = ""
    #: Drawn through the layout's mask: hidden under every hole (the lifelines).
    masked: bool = False


#: A rectangle: (x, top, width, height).
Box = tuple[float, float, float, float]


@record(frozen=True)
class Layout:
    width: float
    height: float
    groups: tuple[Group, ...]
    #: Where the masked groups are not drawn: the text boxes and notes the lifelines pass under.
    holes: tuple[Box, ...] = ()

    def texts(self) -> list[Text]:
        return [item for group in self.groups for item in group.items if isinstance(item, Text)]


def _block(
    x: float, top: float, lines: Sequence[str | tuple[Span, ...]], size: int, cls: str, anchor: str = "start"
) -> list[Text | Shape]:
    """Lines of text, one under the other, the first line's box starting at ``top``."""
    return [
        Text(
            x,
            top + ASCENT_EM * size + n * LINE[size],
            (Span(line),) if isinstance(line, str) else line,
            size,
            cls,
            anchor,
        )
        for n, line in enumerate(lines)
    ]


def _block_height(lines: int, size: int) -> float:
    return (lines - 1) * LINE[size] + BOX_EM * size


def _rect(x: float, y: float, w: float, h: float, cls: str, rx: float = 0) -> Shape:
    attributes: list[tuple[str, float | str]] = [("x", x), ("y", y), ("width", w), ("height", h)]
    if rx:
        attributes.append(("rx", rx))
    return Shape("rect", tuple(attributes), cls)


def _line(x1: float, y1: float, x2: float, y2: float, cls: str) -> Shape:
    return Shape("line", (("x1", x1), ("y1", y1), ("x2", x2), ("y2", y2)), cls)


def _points(points: Sequence[tuple[float, float]]) -> str:
    return " ".join(f"{_num(x)},{_num(y)}" for x, y in points)


def _num(value: float) -> str:
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


@record
class _Columns:
    """Where each lane and frame sits horizontally."""

    centers: dict[str, float] = field(default_factory=dict)
    frames: list[tuple[Frame, float, float]] = field(default_factory=list)  # frame, left, right
    lane_width: float = 0.0
    right: float = 0.0


def _groups_of(diagram: Diagram) -> list[tuple[Frame | None, tuple[str, ...]]]:
    """The lanes in drawing order, by frame; lanes outside every frame stand alone."""
    framed = {lane for frame in diagram.frames for lane in frame.lanes}
    groups: list[tuple[Frame | None, tuple[str, ...]]] = [(frame, frame.lanes) for frame in diagram.frames]
    groups += [(None, (lane.id,)) for lane in diagram.lanes if lane.id not in framed]
    return groups


def _columns(diagram: Diagram, min_width: float) -> _Columns:
    lane_lines = [wrap_text(lane.label, LANE_CHARS) for lane in diagram.lanes]
    widest = max((len(line) for lines in lane_lines for line in lines), default=1)
    lane_width = max(MIN_LANE_WIDTH, text_width(widest, LANE_SIZE) + 2 * PAD)
    # A frame's label wraps between words, inside the frame's padding: the lanes are wide enough
    # for its longest word (a frame holds at least one lane).
    longest = max((len(word) for frame in diagram.frames for word in frame.label.split()), default=0)
    lane_width = max(lane_width, text_width(longest, LANE_SIZE) + 2 * PAD - 2 * FRAME_PAD)
    groups = _groups_of(diagram)
    # Spread the lanes when the labels need more room than the lanes take (a sequence of two).
    natural = MARGIN * 2 - FRAME_GAP
    for frame, lanes in groups:
        pad = FRAME_PAD if frame else 0.0
        natural += 2 * pad + len(lanes) * lane_width + (len(lanes) - 1) * LANE_GAP + FRAME_GAP
    gaps = max(1, len(diagram.lanes) - 1)
    extra = max(0.0, min_width - natural) / gaps
    columns = _Columns(lane_width=lane_width)
    x = MARGIN
    for frame, lanes in groups:
        pad = FRAME_PAD if frame else 0.0
        left = x
        x += pad
        for index, lane_id in enumerate(lanes):
            if index:
                x += LANE_GAP + extra
            columns.centers[lane_id] = x + lane_width / 2
            x += lane_width
        x += pad
        if frame:
            columns.frames.append((frame, left, x))
        x += FRAME_GAP + extra
    columns.right = x - FRAME_GAP - extra + MARGIN
    return columns


def _longest_word(diagram: Diagram) -> int:
    longest = 0
    for row in diagram.rows:
        spans = row.label if isinstance(row, Arrow) else (Span(row.text),)
        for line in wrap(spans, 1):
            longest = max(longest, len(plain(line)))
    for entry in diagram.legend:
        longest = max(longest, *(len(word) for word in entry.text.split()))
    return longest


def layout(diagram: Diagram) -> Layout:
    """Place every lane, frame, arrow, note and legend entry."""
    min_width = max(MIN_WIDTH, text_width(_longest_word(diagram), LABEL_SIZE) + 2 * MARGIN + LEGEND_SAMPLE)
    columns = _columns(diagram, min_width)
    width = max(columns.right, min_width)
    right = width - MARGIN
    holes: list[Box] = []  # text boxes and notes the lifelines pass under

    # Frame labels, at the top of each frame.
    y = MARGIN
    frame_heads: list[Group] = []
    head_height = 0.0
    for frame, left, frame_right in columns.frames:
        lines = wrap_text(frame.label, chars_in(frame_right - left - 2 * PAD, LANE_SIZE))
        texts = _block(left + PAD, y + PAD, lines, LANE_SIZE, "dbus-d-frame-label")
        frame_heads.append(Group("dbus-d-frame-head", tuple(texts)))
        head_height = max(head_height, 2 * PAD + _block_height(len(lines), LANE_SIZE))
    lanes_top = y + head_height + (PAD if columns.frames else 0.0)

    # Lane boxes.
    lane_lines = {lane.id: wrap_text(lane.label, LANE_CHARS) for lane in diagram.lanes}
    most = max((len(lines) for lines in lane_lines.values()), default=1)
    lane_height = 2 * PAD + _block_height(most, LANE_SIZE)
    lane_groups: list[Group] = []
    for lane in diagram.lanes:
        center = columns.centers[lane.id]
        lines = lane_lines[lane.id]
        first = lanes_top + (lane_height - _block_height(len(lines), LANE_SIZE)) / 2
        items: list[Text | Shape] = [
            _rect(
                center - columns.lane_width / 2,
                lanes_top,
                columns.lane_width,
                lane_height,
                "dbus-d-lane-box" + (" dbus-d-daemon" if lane.daemon else ""),
                rx=8 if lane.daemon else 3,
            )
        ]
        items += _block(center, first, lines, LANE_SIZE, "dbus-d-lane-label", "middle")
        lane_groups.append(Group("dbus-d-lane", tuple(items), lane.label))

    # Rows.
    y = lanes_top + lane_height + 14
    row_groups: list[Group] = []
    for row in diagram.rows:
        if isinstance(row, Note):
            group, y = _note(row, columns, y, right)
        else:
            group, y = _arrow(row, columns, y, right)
        row_groups.append(group)
        holes += [_padded(item.box) for item in group.items if isinstance(item, Text)]
        holes += [_shape_box(item) for item in group.items if isinstance(item, Shape) and item.tag == "rect"]
    rows_bottom = y + 4

    # Lifelines run from the lanes to below the last row, one line each, under the mask; each
    # frame is one box around its lanes, from its label to below the last row.
    lifelines = Group(
        "dbus-d-lifelines",
        tuple(
            _line(
                columns.centers[lane.id],
                lanes_top + lane_height,
                columns.centers[lane.id],
                rows_bottom,
                "dbus-d-lifeline",
            )
            for lane in diagram.lanes
        ),
        masked=True,
    )
    frame_groups: list[Group] = []
    for (_, left, frame_right), head in zip(columns.frames, frame_heads):
        bottom = rows_bottom + PAD
        frame_groups.append(
            Group("dbus-d-frame-box", (_rect(left, MARGIN, frame_right - left, bottom - MARGIN, "dbus-d-frame", rx=6),))
        )
        frame_groups.append(head)

    # The legend.
    y = rows_bottom + (PAD if columns.frames else 0.0) + 16
    legend_items: list[Text | Shape] = []
    text_x = MARGIN + LEGEND_SAMPLE + 8
    for entry in diagram.legend:
        lines = wrap_text(entry.text, chars_in(right - text_x, LABEL_SIZE))
        mid = y + BOX_EM * LABEL_SIZE / 2
        legend_items += _sample(entry.style, MARGIN, MARGIN + LEGEND_SAMPLE, mid)
        legend_items += _block(text_x, y, lines, LABEL_SIZE, "dbus-d-legend")
        y += _block_height(len(lines), LABEL_SIZE) + 6
    height = y + MARGIN - 6
    all_groups = [*frame_groups, lifelines, *lane_groups, *row_groups, Group("dbus-d-legend-box", tuple(legend_items))]
    return Layout(round(width), round(height), tuple(all_groups), tuple(holes))


def _padded(box: Box) -> Box:
    x, y, w, h = box
    return (x - 3, y - 2, w + 6, h + 4)


def _shape_box(shape: Shape) -> Box:
    values = dict(shape.attributes)
    return (float(values["x"]), float(values["y"]), float(values["width"]), float(values["height"]))


def _arrow_classes(arrow: Arrow) -> str:
    classes = ["dbus-d-arrow", "dbus-d-p2p" if arrow.peer_to_peer else "dbus-d-bus"]
    if arrow.crossing:
        classes.append("dbus-d-cross")
    if arrow.management:
        classes.append("dbus-d-management")
    return " ".join(classes)


def _head(tip: float, y: float, direction: float, management: bool, cls: str) -> Shape:
    base = tip - direction * HEAD
    points = [(base, y - 4.5), (tip, y), (base, y + 4.5)]
    return Shape("polyline" if management else "polygon", (("points", _points(points)),), cls)


def _arrow(arrow: Arrow, columns: _Columns, y: float, right: float) -> tuple[Group, float]:
    start, end = columns.centers[arrow.source], columns.centers[arrow.target]
    direction = 1.0 if end > start else -1.0
    left = min(start, end) + PAD
    available = right - left
    needed = max(len(plain(line)) for line in wrap(arrow.label, 1))  # the longest word
    if available < text_width(max(needed, 24), LABEL_SIZE):
        left = max(MARGIN, right - text_width(max(needed, 24), LABEL_SIZE))
        available = right - left
    lines = wrap(arrow.label, chars_in(available, LABEL_SIZE))
    classes = _arrow_classes(arrow)
    items = _block(left, y, lines, LABEL_SIZE, "dbus-d-label")
    line_y = y + _block_height(len(lines), LABEL_SIZE) + 7
    tip = end - direction * 1.5
    items.append(_line(start, line_y, tip - direction * (HEAD - 1 if not arrow.management else 0), line_y, classes))
    items.append(_head(tip, line_y, direction, arrow.management, classes + " dbus-d-head"))
    return Group("dbus-d-row", tuple(items), arrow.title), line_y + 12


def _note(note: Note, columns: _Columns, y: float, right: float) -> tuple[Group, float]:
    """A note over the lanes from ``first`` to ``last``, and at least as wide as `NOTE_CHARS`
    characters of its text (or its whole text, when shorter): over one lane it reaches into the
    room beside it, to the right, or to the left at the right edge."""
    first, last = sorted((columns.centers[note.first], columns.centers[note.last]))
    left = max(MARGIN, first - columns.lane_width / 2 + 4)
    box_right = min(right, last + columns.lane_width / 2 - 4)
    wanted = text_width(min(len(note.text), NOTE_CHARS), LABEL_SIZE) + 2 * PAD
    if box_right - left < wanted:
        box_right = min(right, left + wanted)
        left = max(MARGIN, box_right - wanted)
    lines = wrap_text(note.text, chars_in(box_right - left - 2 * PAD, LABEL_SIZE))
    height = 2 * PAD + _block_height(len(lines), LABEL_SIZE)
    items: list[Text | Shape] = [_rect(left, y, box_right - left, height, "dbus-d-note", rx=3)]
    items += _block(left + PAD, y + PAD, lines, LABEL_SIZE, "dbus-d-note-text")
    return Group("dbus-d-row dbus-d-note-row", tuple(items), f"Note: {note.text}"), y + height + 10


def _sample(style: str, left: float, right: float, y: float) -> list[Text | Shape]:
    """A short arrow in the legend, drawn as the rows draw that style."""
    arrow = Arrow("", "", (), peer_to_peer=style == "p2p", management=style == "management", crossing=style == "cross")
    classes = _arrow_classes(arrow)
    return [
        _line(left, y, right - (HEAD - 1 if style != "management" else 0), y, classes),
        _head(right, y, 1.0, style == "management", classes + " dbus-d-head"),
    ]
