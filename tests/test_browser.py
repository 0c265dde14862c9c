"""The pictures as a person sees them: the documentation built as ``make docs`` builds it, opened
in a real headless Chromium (driven by Selenium through Debian's chromedriver).

For every diagram of the security, display and vmstate pages, at a desktop and at a phone width:
every lane and label of the model is on the page; no text leaves the picture; no two texts
overlap (the browser's own text boxes, ``getBBox``); the picture is drawn at its natural size, its
figure scrolling sideways rather than shrinking the text on a phone; and in a dark theme its text
takes the theme's colour.  In the generated tables, long names break at their dots only.

What a newcomer met (issue 23) is held here too: at 1280 px every frame is whole and in view, its
outline unbroken by the labels that cross it; a note is as wide as its text needs; at 390 px no
page is wider than the screen and the display page's sequence shows both its lanes; the sidebar's
text keeps a WCAG AA contrast where a phone shows it on dark grey.

Without Chromium and chromedriver the tests are skipped; CI sets ``QEMU_DBUS_REQUIRE_BROWSER=1``,
which makes a missing browser an error instead.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sphinxext_qemudbus.diagrams.deployment import deployment_diagram
from sphinxext_qemudbus.diagrams.lanes import Diagram, layout, plain
from sphinxext_qemudbus.model.registry import Registry
from sphinxext_qemudbus.security.deployment import SCENARIOS, builtin_deployment

from .test_diagrams import docs_sequence
from .test_policy import REGISTRY

ROOT = Path(__file__).resolve().parent.parent
DESKTOP, PHONE = 1280, 390
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",  # root in CI: Chromium's sandbox refuses to run as root
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)


def _find(*names: str) -> str | None:
    return next((path for name in names if (path := shutil.which(name))), None)


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    browser = _find("chromium", "chromium-browser", "google-chrome")
    chromedriver = _find("chromedriver")
    problem = None
    if browser is None or chromedriver is None:
        problem = "no chromium and chromedriver on PATH (Debian: apt-get install chromium chromium-driver)"
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        problem = "selenium is not installed (make check installs it; or pip install -e '.[test]')"
    if problem:
        if os.environ.get("QEMU_DBUS_REQUIRE_BROWSER"):
            pytest.fail(f"QEMU_DBUS_REQUIRE_BROWSER is set but the browser tests cannot run: {problem}")
        pytest.skip(problem)
    profile = tempfile.mkdtemp(prefix="qemu-dbus-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(browser)
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    # Naming the driver keeps Selenium from looking for (and downloading) one of its own.
    session = webdriver.Chrome(options=options, service=Service(str(chromedriver)))
    try:
        yield session
    finally:
        session.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def docs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The documentation, built as ``make docs`` builds it."""
    out = tmp_path_factory.mktemp("html")
    subprocess.run(
        [sys.executable, "-m", "sphinx", "--no-color", "-b", "html", "-n", "-q", str(ROOT / "docs"), str(out)],
        check=True,
        capture_output=True,
    )
    return out


def _show(driver: Any, page: Path, width: int, dark: bool = False) -> None:
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": width < 600},
    )
    driver.get(page.as_uri())
    if dark:  # what a dark theme does: light text on a dark page
        driver.execute_script(
            "const s = document.createElement('style');"
            "s.textContent = 'html, body, div.body, div.document, div.bodywrapper "
            "{ background: #111 !important; color: rgb(230, 230, 230) !important; }';"
            "document.head.appendChild(s);"
        )


#: What the page shows of each diagram, measured by the browser.
MEASURE = """
return Array.from(document.querySelectorAll('figure.dbus-diagram-figure')).map(figure => {
  const svg = figure.querySelector('svg.dbus-diagram');
  const scroll = figure.querySelector('div.dbus-diagram-scroll');
  const view = svg.viewBox.baseVal;
  const rect = svg.getBoundingClientRect();
  const texts = Array.from(svg.querySelectorAll('text')).map(text => {
    const box = text.getBBox();
    const style = getComputedStyle(text);
    return {text: text.textContent, cls: text.getAttribute('class'),
            box: [box.x, box.y, box.width, box.height],
            size: parseFloat(style.fontSize), fill: style.fill};
  });
  return {
    view: [view.width, view.height], shown: [rect.width, rect.height],
    scroll: {client: scroll.clientWidth, scroll: scroll.scrollWidth, overflow: getComputedStyle(scroll).overflowX},
    figure: figure.getBoundingClientRect().right, page: document.documentElement.clientWidth,
    boxes: svg.querySelectorAll('rect.dbus-d-lane-box').length,
    color: getComputedStyle(svg).color, texts: texts,
  };
});
"""


@pytest.fixture(scope="module")
def expected() -> dict[str, list[Diagram]]:
    """The diagrams each page must show, in order, from the same model the directives use."""
    registry = Registry.load([REGISTRY])
    default, lockdown = builtin_deployment("default"), builtin_deployment("lockdown")
    return {
        "interop/dbus.html": [
            *(deployment_diagram(registry, default, scenario) for scenario in SCENARIOS),
            deployment_diagram(registry, lockdown, "many-uids"),
        ],
        "interop/dbus-display.html": [docs_sequence(registry, "dbus-display.rst")],
        "interop/dbus-vmstate.html": [docs_sequence(registry, "dbus-vmstate.rst")],
    }


def _overlap(a: list[float], b: list[float]) -> float:
    width = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    height = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    return max(0.0, width) * max(0.0, height)


@pytest.mark.parametrize("width", [DESKTOP, PHONE], ids=["desktop", "phone"])
@pytest.mark.parametrize("page", ["interop/dbus.html", "interop/dbus-display.html", "interop/dbus-vmstate.html"])
def test_every_label_is_there_whole_and_apart(
    driver: Any, docs: Path, expected: dict[str, list[Diagram]], page: str, width: int
) -> None:
    _show(driver, docs / page, width)
    figures = driver.execute_script(MEASURE)
    diagrams = expected[page]
    assert len(figures) == len(diagrams)
    for figure, diagram in zip(figures, diagrams):
        # Every box and label of the model, in order.
        assert figure["boxes"] == len(diagram.lanes)
        assert [text["text"] for text in figure["texts"]] == [plain(t.spans) for t in layout(diagram).texts()]
        # Nothing clipped: every text inside the picture, the picture at its natural size (not
        # shrunk on a phone), and where the page is narrower, the figure scrolls.
        view_width, view_height = figure["view"]
        for text in figure["texts"]:
            x, y, w, h = text["box"]
            inside = 0 <= x <= x + w <= view_width and 0 <= y <= y + h <= view_height
            assert inside, (diagram.title, text)
            assert text["size"] >= 11, text
        assert figure["shown"] == pytest.approx([view_width, view_height], abs=0.5)
        assert figure["scroll"]["overflow"] == "auto"
        assert figure["scroll"]["scroll"] >= view_width - 1
        assert figure["figure"] <= figure["page"] + 1, "the figure is wider than the page"
        # No label over another.
        for a, b in itertools.combinations(figure["texts"], 2):
            assert _overlap(a["box"], b["box"]) < 0.5, (diagram.title, a, b)


def test_dark_theme_text_takes_the_theme_colour(driver: Any, docs: Path) -> None:
    _show(driver, docs / "interop/dbus.html", DESKTOP, dark=True)
    for figure in driver.execute_script(MEASURE):
        assert figure["color"] == "rgb(230, 230, 230)"
        assert {text["fill"] for text in figure["texts"]} == {"rgb(230, 230, 230)"}


LONG_NAMES = """
// For every name in a generated table: the characters after which the browser broke the line.
return Array.from(document.querySelectorAll('table.dbus-table code span.pre')).filter(span => span.textContent.includes('.'))
  .map(span => {
    const text = span.firstChild;
    const breaks = [];
    let top = null;
    for (let i = 0; i < span.textContent.length; i++) {
      if (text.nodeType !== Node.TEXT_NODE) break;
      const range = document.createRange();
      let node = span.firstChild, offset = i;
      for (const child of span.childNodes) {
        if (child.nodeType !== Node.TEXT_NODE) continue;
        if (offset < child.length) { node = child; break; }
        offset -= child.length;
      }
      range.setStart(node, offset); range.setEnd(node, offset + 1);
      const y = Math.round(range.getBoundingClientRect().top);
      if (top !== null && y > top) breaks.push(span.textContent[i - 1]);
      top = y;
    }
    return {text: span.textContent, breaks: breaks};
  });
"""


def test_long_names_in_tables_break_at_dots_only(driver: Any, docs: Path) -> None:
    _show(driver, docs / "registry.html", PHONE)
    names = driver.execute_script(LONG_NAMES)
    assert any(name["text"] == "org.qemu.Display1.AudioInListener" for name in names)
    for name in names:
        assert set(name["breaks"]) <= {"."}, name  # a line ends after a dot, never inside a word
    assert any(name["breaks"] for name in names), "at phone width some long name should wrap (at a dot)"


# --- what a newcomer saw (issue 23): frames cut or broken, squeezed notes, pages too wide --------

PAGES = [
    "index.html",
    "registry.html",
    "extension.html",
    *(f"interop/{p}.html" for p in ("index", "dbus", "dbus-display", "dbus-vmstate", "dbus-vnc", "dbus-policies")),
]
DIAGRAM_PAGES = ["interop/dbus.html", "interop/dbus-display.html", "interop/dbus-vmstate.html"]

#: Each frame of each diagram: its box, and the parts of its outline the browser draws at the left
#: and right edges (a stroked rect draws its whole edge; lines only where they are).
FRAMES = """
return Array.from(document.querySelectorAll('svg.dbus-diagram')).map(svg => {
  const scroll = svg.closest('div.dbus-diagram-scroll');
  const visible = scroll.getBoundingClientRect();
  return Array.from(svg.querySelectorAll('g.dbus-d-frame-box')).map(group => {
    const box = group.getBBox();
    const screen = group.getBoundingClientRect();
    const edges = {left: [], right: []};
    for (const item of group.querySelectorAll('rect, line')) {
      const style = getComputedStyle(item);
      // The outline is what is stroked (a frame's faint fill is no border).
      if (style.stroke === 'none' || !(parseFloat(style.strokeOpacity) > 0) || !(parseFloat(style.strokeWidth) > 0)) continue;
      const b = item.getBBox();
      for (const [side, x] of [['left', box.x], ['right', box.x + box.width]]) {
        if (item.tagName === 'rect' && b.x <= x + 0.5 && x - 0.5 <= b.x + b.width) edges[side].push([b.y, b.y + b.height]);
        if (item.tagName === 'line' && Math.abs(b.x - x) < 0.5 && b.width < 0.5) edges[side].push([b.y, b.y + b.height]);
      }
    }
    return {box: [box.x, box.y, box.width, box.height], edges: edges,
            right: screen.right, visible: visible.left + scroll.clientWidth};
  });
});
"""


def _gaps(spans: list[list[float]], top: float, bottom: float) -> list[tuple[float, float]]:
    """The parts of [top, bottom] that no span covers."""
    gaps, y = [], top
    for start, end in sorted(spans):
        if start > y + 0.5:
            gaps.append((y, start))
        y = max(y, end)
    if y < bottom - 0.5:
        gaps.append((y, bottom))
    return gaps


@pytest.mark.parametrize("page", DIAGRAM_PAGES)
def test_frames_are_whole_unbroken_and_in_view_at_desktop(driver: Any, docs: Path, page: str) -> None:
    """At 1280 px every frame is on screen, not behind the figure's scrollbar, and its outline
    runs the whole height on both sides: no label cuts a gap in it."""
    _show(driver, docs / page, DESKTOP)
    for frames in driver.execute_script(FRAMES):
        for frame in frames:
            assert frame["right"] <= frame["visible"] + 0.5, f"a frame is cut at the figure's edge: {frame}"
            _x, y, _width, height = frame["box"]
            for side in ("left", "right"):
                # Rounded corners aside (rx 6), the edge is drawn from top to bottom.
                assert _gaps(frame["edges"][side], y + 6, y + height - 6) == [], (side, frame)


NOTES = """
return Array.from(document.querySelectorAll('svg.dbus-diagram g.dbus-d-note-row')).map(group => {
  const texts = Array.from(group.querySelectorAll('text'));
  const chars = texts.reduce((n, t) => n + t.textContent.length, 0);
  const width = texts.reduce((w, t) => w + t.getBBox().width, 0);
  return {text: texts.map(t => t.textContent).join(' '), lines: texts.length,
          box: group.querySelector('rect').getBBox().width, char: width / chars,
          view: group.ownerSVGElement.viewBox.baseVal.width};
});
"""
#: A note may wrap its text, but not into a column narrower than this many characters (unless the
#: picture itself is narrower).
NOTE_CHARS = 30


@pytest.mark.parametrize("page", DIAGRAM_PAGES)
def test_a_note_is_as_wide_as_its_text_needs(driver: Any, docs: Path, page: str) -> None:
    _show(driver, docs / page, DESKTOP)
    for note in driver.execute_script(NOTES):
        needed = min(len(note["text"]), NOTE_CHARS) * note["char"]
        assert note["box"] >= min(needed, note["view"] - 20), note


@pytest.mark.parametrize("page", PAGES)
def test_no_page_is_wider_than_a_phone(driver: Any, docs: Path, page: str) -> None:
    """At 390 px nothing pushes the page sideways: long names wrap, wide tables and pictures
    scroll inside their own box."""
    _show(driver, docs / page, PHONE)
    wide = driver.execute_script(
        "const width = document.documentElement.clientWidth;"
        "return [document.documentElement.scrollWidth, width, Array.from(document.querySelectorAll('div.body *'))"
        ".filter(e => e.getBoundingClientRect().right > width + 1 && !e.closest('pre, div.dbus-diagram-scroll, div.dbus-table-scroll'))"
        ".slice(0, 5).map(e => e.tagName + ' ' + (e.textContent || '').slice(0, 50))];"
    )
    assert wide[0] <= wide[1], wide


def test_every_lane_of_the_display_sequence_is_on_a_phone_screen(driver: Any, docs: Path) -> None:
    _show(driver, docs / "interop/dbus-display.html", PHONE)
    lanes = driver.execute_script(
        "const svg = document.querySelector('svg.dbus-diagram');"
        "const scroll = svg.closest('div.dbus-diagram-scroll');"
        "const right = scroll.getBoundingClientRect().left + scroll.clientWidth;"
        "return Array.from(svg.querySelectorAll('rect.dbus-d-lane-box')).map(box => [box.getBoundingClientRect().right, right]);"
    )
    assert len(lanes) == 2
    for lane_right, visible_right in lanes:
        assert lane_right <= visible_right + 0.5


CONTRAST = """
function rgba(text) { const v = text.match(/[\\d.]+/g).map(Number); return v.length === 3 ? [...v, 1] : v; }
function luminance(c) {
  const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
  return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]);
}
function background(element) {
  const layers = [];
  for (let e = element; e; e = e.parentElement) {
    const c = rgba(getComputedStyle(e).backgroundColor);
    if (c[3] > 0) { layers.push(c); if (c[3] >= 1) break; }
  }
  let color = [255, 255, 255];
  for (const c of layers.reverse()) color = color.map((v, i) => c[i] * c[3] + v * (1 - c[3]));
  return color;
}
return Array.from(document.querySelectorAll('div.sphinxsidebar *')).filter(e =>
  e.tagName !== 'SCRIPT' && e.getBoundingClientRect().width > 0 &&
  Array.from(e.childNodes).some(n => n.nodeType === 3 && n.textContent.trim())
).map(e => {
  const style = getComputedStyle(e);
  const fg = luminance(rgba(style.color)), bg = luminance(background(e));
  const size = parseFloat(style.fontSize), bold = parseInt(style.fontWeight) >= 700;
  return {text: e.textContent.trim().slice(0, 40), ratio: (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05),
          large: size >= 24 || (bold && size >= 18.66)};
});
"""


@pytest.mark.parametrize("width", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_the_sidebar_text_meets_wcag_aa_contrast(driver: Any, docs: Path, width: int) -> None:
    """At a phone width the sidebar moves under the page, on dark grey: every text there,
    the project's name in code font included, stays readable (WCAG AA: 4.5:1, 3:1 for large text)."""
    _show(driver, docs / "index.html", width)
    texts = driver.execute_script(CONTRAST)
    assert any("sphinxext_qemudbus" in text["text"] for text in texts)
    for text in texts:
        assert text["ratio"] >= (3.0 if text["large"] else 4.5), text
