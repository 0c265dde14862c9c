"""One probing run from start to end: introspect, plan, set up, probe, report.

`probe_peer` is what ``qemu-dbus probe`` runs once it has a bus connection (and, with
``--launch``, the `QemuLaunch`): it introspects the peer, plans the targets in the registry's
view of the release, probes first what QEMU waits for from its listeners, then every target, and
returns the `Report` whatever stopped it (the deadline, a peer it cannot relaunch).
"""

from __future__ import annotations

import fnmatch
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from typing import Any

from ...model.registry import Registry
from ..conform import LiveBus, current_platform, introspect_objects
from ..listen import CONSOLE
from ..wire import Wire
from .engine import Options, Probe, Report, Stop, registrations
from .plan import plan_targets


def probe_peer(
    registry: Registry,
    wire: Wire,
    dest: str,
    options: Options,
    launched: Any = None,
    patterns: Sequence[str] = (),
    say: Callable[[str], None] = lambda text: None,
    address: str | None = None,
) -> Report:
    """Probe ``dest`` with the registry view ``registry``; ``patterns`` keep a subset of members
    (shell patterns on ``interface.Member``)."""
    bus = LiveBus(wire, options.call_timeout, options.deadline)
    walk = introspect_objects(bus, dest, ["/"], True)
    objects = {live.path: tuple(i.name for i in live.node.interfaces) for live in walk.objects if live.node is not None}
    targets = plan_targets(registry, walk.objects, current_platform(), patterns)
    consoles = sorted(path for path, names in objects.items() if CONSOLE in names)
    probe = Probe(registry, wire, dest, options, launched, say, address)
    report = probe.report
    report.unchecked += [d.message for d in walk.unchecked]
    say(f"{len(targets)} members to probe on {len(objects)} objects")
    pending = list(targets)
    try:
        probe.setup(consoles)
        calls = [f"{r.interface}.{r.method}" for r in registrations()]
        if not patterns or any(fnmatch.fnmatchcase(c, p) for c in calls for p in patterns):
            say("probing what QEMU waits for from its listeners")
            probe.probe_answers(objects, patterns)
        while pending:
            target = pending[0]
            say(f"probing {target.name} on {target.path}")
            probe.probe_member(target)
            pending.pop(0)
    except Stop as stop:
        report.stopped = str(stop)
        report.unchecked += [
            f"{t.name}: {'not finished' if t.name in report.probed else 'not probed'} ({stop})" for t in pending
        ]
    finally:
        probe.close()
        shutil.rmtree(probe.folder, ignore_errors=True)
    return report


def qemu_version(binary: str, timeout: float = 30.0) -> tuple[str, str] | None:
    """(``10.0.2``, QEMU's version line) from ``QEMU --version``, or None when it does not say."""
    try:
        done = subprocess.run([binary, "--version"], capture_output=True, timeout=timeout, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    line = done.stdout.decode("utf-8", "replace").strip().splitlines()[:1]
    match = re.search(r"version (\d+\.\d+(?:\.\d+)?)", line[0]) if line else None
    return (match.group(1), line[0].strip()) if match else None


def deadline_after(seconds: float) -> float:
    return time.monotonic() + seconds
