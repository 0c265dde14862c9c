"""``parallel_read_safe`` and ``parallel_write_safe`` are true because this passes: a ``-j 2``
build produces the same anchors, links and inventory as a serial one, without warnings."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest


def _build(make_app: Any, app_params: Any, built: Callable[[Any], Any], parallel: int) -> Any:
    args, kwargs = app_params
    app = make_app(*args, **{**kwargs, "freshenv": True, "parallel": parallel})
    app.build()
    return built(app)


@pytest.mark.sphinx("html", testroot="parallel")
def test_parallel_build_matches_serial_build(make_app: Any, app_params: Any, built: Callable[[Any], Any]) -> None:
    serial = _build(make_app, app_params, built, 0)
    serial_anchors, serial_inventory = serial.anchors(), serial.inventory()
    serial_pages = {name: serial.html(name) for name in ("page0", "page7")}
    serial_warnings = serial.warnings()

    parallel = _build(make_app, app_params, built, 2)
    assert parallel.app.parallel == 2
    assert serial_warnings == parallel.warnings() == []
    assert parallel.anchors() == serial_anchors
    assert parallel.inventory() == serial_inventory
    assert len(serial_inventory) == 8 * 4  # 8 interfaces, each with a method, a signal and a property
    for name, page in serial_pages.items():
        assert parallel.html(name) == page
    # a link from one worker's page to another worker's object
    assert 'href="page0.html#dbus-org.qemu.Par1.I0.Press"' in parallel.html("page7")


@pytest.mark.sphinx("html", testroot="parallel", freshenv=True)
def test_setup_declares_parallel_safety(app: Any) -> None:
    extension = app.extensions["sphinxext_qemudbus"]
    assert extension.parallel_read_safe is True
    assert extension.parallel_write_safe is True
    assert isinstance(extension.metadata["env_version"], int)
