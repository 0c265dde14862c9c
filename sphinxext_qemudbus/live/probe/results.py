"""The probe's results as the registry records them: ``probe-results.json`` beside the XML files.

One entry per QEMU release probed (``10.0.2``): the probe's version, QEMU's own version line,
the members probed, and the faults found, each with its member, call, kind, threshold, evidence
and reproduction.  `record` replaces the entry of the release a run probed, whole: a fault that
no longer reproduces is gone with the old entry.  The file is JSON written with sorted keys and a
stable order, so a re-run that finds the same shows no diff.

`load_results` reads it without jeepney, for the Sphinx extension (each member's entry, the trust
notes, the page "What a peer can do to QEMU"); what it cannot use it skips, with the reason, so a
damaged file costs the documentation of the probe results and nothing else.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

from ...diagnostics.frozen import record
from ...model.releases import parse_release

#: The file's name in a registry folder.
RESULTS_FILE = "probe-results.json"
FORMAT = 1
#: The fields of a recorded fault, all strings.
FAULT_FIELDS = ("kind", "code", "interface", "member", "path", "call", "threshold", "trigger", "evidence", "command")
_MAX_BYTES = 4 << 20


@record(frozen=True)
class RecordedFault:
    release: str
    kind: str
    code: str
    interface: str
    member: str
    path: str
    call: str
    threshold: str
    trigger: str
    evidence: str
    command: str

    @property
    def qualified(self) -> str:
        return f"{self.interface}.{self.member}"


@record(frozen=True)
class ReleaseResults:
    release: str
    probe_version: str
    qemu: str
    probed: tuple[str, ...]
    calls: int
    faults: tuple[RecordedFault, ...]


@record(frozen=True)
class Results:
    releases: tuple[ReleaseResults, ...] = ()
    problems: tuple[str, ...] = ()

    def for_member(self, qualified: str) -> list[RecordedFault]:
        return [f for r in self.releases for f in r.faults if f.qualified == qualified]

    def probed_in(self, qualified: str) -> list[str]:
        return [r.release for r in self.releases if qualified in r.probed]


def results_path(folder: str) -> str:
    return os.path.join(folder, RESULTS_FILE)


def load_results(folder: str) -> Results:
    """The results recorded in the registry at ``folder`` (none when there is no file)."""
    path = results_path(folder)
    try:
        with open(path, "rb") as stream:
            data = stream.read(_MAX_BYTES + 1)
    except FileNotFoundError:
        return Results()
    except OSError as error:
        return Results(problems=(f"{path}: cannot read: {error.strerror or error}",))
    if len(data) > _MAX_BYTES:
        return Results(problems=(f"{path}: larger than {_MAX_BYTES} bytes; not read",))
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        return Results(problems=(f"{path}: not JSON: {error}",))
    return parse_results(document, path)


def parse_results(document: Any, path: str = RESULTS_FILE) -> Results:
    problems: list[str] = []
    releases: list[ReleaseResults] = []
    entries = document.get("releases") if isinstance(document, dict) else None
    if not isinstance(entries, dict) or document.get("format") != FORMAT:
        return Results(problems=(f"{path}: not a results file of format {FORMAT}",))
    for release, entry in entries.items():
        if not isinstance(entry, dict) or parse_release(str(release)) is None:
            problems.append(f"{path}: release {release!r}: not a release entry; skipped")
            continue
        faults = []
        for index, item in enumerate(entry.get("faults", ())):
            if not isinstance(item, dict) or not all(isinstance(item.get(k, ""), str) for k in FAULT_FIELDS):
                problems.append(f"{path}: release {release}: fault {index + 1} is malformed; skipped")
                continue
            faults.append(RecordedFault(release, *(str(item.get(k, "")) for k in FAULT_FIELDS)))
        probed = entry.get("probed", ())
        releases.append(
            ReleaseResults(
                release,
                str(entry.get("probe-version", "")),
                str(entry.get("qemu", "")),
                tuple(str(p) for p in probed) if isinstance(probed, list) else (),
                int(entry.get("calls", 0)) if isinstance(entry.get("calls", 0), int) else 0,
                tuple(faults),
            )
        )
    releases.sort(key=lambda r: parse_release(r.release) or (0, 0, 0))
    return Results(tuple(releases), tuple(problems))


def record_release(
    folder: str,
    release: str,
    probe_version: str,
    qemu: str,
    probed: Sequence[str],
    calls: int,
    faults: Sequence[Mapping[str, str]],
) -> str:
    """Write ``release``'s results into the registry at ``folder``, replacing what was recorded
    for that release before (other releases stay); the file's path."""
    path = results_path(folder)
    document: dict[str, Any] = {"format": FORMAT, "releases": {}}
    if os.path.exists(path):
        with open(path, encoding="utf-8") as stream:
            existing = json.load(stream)
        if isinstance(existing, dict) and isinstance(existing.get("releases"), dict):
            document["releases"] = existing["releases"]
    ordered = sorted(faults, key=lambda f: (f["interface"], f["member"], f["kind"], f["call"]))
    document["releases"][release] = {
        "probe-version": probe_version,
        "qemu": qemu,
        "probed": sorted(probed),
        "calls": calls,
        "faults": [{k: f.get(k, "") for k in FAULT_FIELDS} for f in ordered],
    }
    text = json.dumps(document, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    temporary = path + ".tmp"
    with open(temporary, "w", encoding="utf-8") as stream:
        stream.write(text)
    os.replace(temporary, path)
    return path
