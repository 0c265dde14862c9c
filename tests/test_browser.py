"""The pictures as a person sees them: the documentation built as ``make docs`` builds it, opened
in a real headless Chromium (driven by Selenium through Debian's chromedriver).

For every diagram of the security, display and vmstate pages, at a desktop and at a phone width:
every lane and label of the model is on the page; no text leaves the picture; no two texts
overlap (the browser's own text boxes, ``getBBox``); the picture is drawn at its natural size, its
figure scrolling sideways rather than shrinking the text on a phone; and in a dark theme its text
takes the theme's colour.  In the generated tables, long names break at their dots only.

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
        [sys.executable, "-m", "sphinx", "-b", "html", "-n", "-q", str(ROOT / "docs"), str(out)],
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
