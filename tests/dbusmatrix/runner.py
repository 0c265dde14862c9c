"""Run one bus: a real dbus-daemon and one process per peer, each under its own user.

Started by `tests.dbusmatrix.harness` as root inside ``unshare --mount --propagation private``, so
that bind-mounting the test's passwd and group files over ``/etc/passwd`` and ``/etc/group`` is seen
by this process and its children only (dbus-daemon resolves every user through the passwd database;
the machine's users stay untouched).  Standard library only.

Usage: ``runner.py WORKDIR`` where ``WORKDIR/job.json`` says what to run (see the harness) and the
results go to ``WORKDIR/results.json``.  Three modes:

* ``validate``: start dbus-daemon on each configuration, read the address it prints, stop it, and
  record what it wrote on stderr up to then (warnings about unknown users, bad rules);
* ``matrix``: start the daemon as the bus user, start every peer with ``setpriv --reuid --regid
  --clear-groups`` (root's groups must not leak into ``group=`` rules), let them connect, own
  their names one by one in deployment order (so the primary owner of a shared name is known),
  run their probes all at once, collect what each received, try to connect as an outsider, and
  let each intruder (a user the deployment does not list, root too) try to own its names;
* ``claims``: start the daemon as the bus user and let each claimant, under its uid, connect and
  ask for names (what a policy's user rules give a process that is no peer).
"""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import time
from typing import Any

DEADLINE = 120.0


def setpriv(uid: int, gid: int) -> list[str]:
    return ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups"]


def bind(source: str, target: str) -> None:
    subprocess.run(["mount", "--bind", source, target], check=True)


def start_daemon(
    config: str, uid: int | None, gid: int | None, stderr_path: str
) -> tuple[subprocess.Popen[str], str, str]:
    """Start dbus-daemon; return it, its address, and its stderr up to the moment it printed the
    address (config warnings are written before the daemon listens)."""
    command = ["dbus-daemon", f"--config-file={config}", "--nofork", "--print-address=1"]
    if uid is not None and gid is not None:
        command = [*setpriv(uid, gid), *command]
    with open(stderr_path, "w") as stderr:
        daemon = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, text=True)
    assert daemon.stdout is not None
    address = daemon.stdout.readline().strip()
    with open(stderr_path) as stream:
        early = stream.read()
    return daemon, address, early


def stop(process: subprocess.Popen[Any]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def validate(job: dict[str, Any]) -> dict[str, Any]:
    results = []
    for item in job["configs"]:
        daemon, address, early = start_daemon(item["config"], item.get("uid"), item.get("gid"), item["stderr"])
        stop(daemon)
        results.append({"config": item["config"], "address": address, "stderr": early, "returncode": daemon.returncode})
    return {"configs": results}


class PeerProcess:
    """A peer under its own uid, spoken to in JSON lines."""

    def __init__(self, job: dict[str, Any], peer: dict[str, Any], address: str) -> None:
        self.id: str = peer["id"]
        command = [*setpriv(peer["uid"], peer["gid"]), job["python"], "-I", job["peer_script"], address, peer["plan"]]
        with open(peer["stderr"], "w") as stderr:
            self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr)
        self.buffer = b""

    def send(self, command: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write((json.dumps(command) + "\n").encode())
        self.process.stdin.flush()


def read_all(peers: list[PeerProcess], deadline: float) -> dict[str, dict[str, Any]]:
    """One JSON line from every peer, read as they come.  Reading them one after the other would
    deadlock: a peer whose report fills its stdout pipe blocks in write and stops serving the
    others' calls."""
    answers: dict[str, dict[str, Any]] = {}
    selector = selectors.DefaultSelector()
    for peer in peers:
        assert peer.process.stdout is not None
        selector.register(peer.process.stdout, selectors.EVENT_READ, peer)
    try:
        while len(answers) < len(peers):
            for peer in peers:  # a line may already be buffered from an earlier read
                if peer.id not in answers and b"\n" in peer.buffer:
                    line, peer.buffer = peer.buffer.split(b"\n", 1)
                    answers[peer.id] = dict(json.loads(line))
            if len(answers) == len(peers):
                break
            ready = selector.select(timeout=max(deadline - time.monotonic(), 0.0))
            if not ready:
                missing = ", ".join(peer.id for peer in peers if peer.id not in answers)
                raise TimeoutError(f"no answer in time from {missing}")
            for key, _ in ready:
                peer = key.data
                chunk = os.read(key.fd, 1 << 20)
                if not chunk:
                    raise EOFError(f"peer {peer.id} exited (see its stderr)")
                peer.buffer += chunk
    finally:
        selector.close()
    return answers


def matrix(job: dict[str, Any]) -> dict[str, Any]:
    started = time.monotonic()
    deadline = started + DEADLINE
    bus = job["bus"]
    daemon, address, early = start_daemon(job["config"], bus["uid"], bus["gid"], job["daemon_stderr"])
    result: dict[str, Any] = {"address": address, "daemon_stderr_at_start": early}
    peers: list[PeerProcess] = []
    try:
        if not address:
            result["error"] = "dbus-daemon printed no address"
            return result
        peers = [PeerProcess(job, peer, address) for peer in job["peers"]]
        hello = read_all(peers, deadline)
        result["hello"] = hello
        if not all(event.get("ok") for event in hello.values()):
            result["error"] = "a peer could not connect"
            return result
        owned = {}
        for peer in peers:  # one by one: the first owner of a shared name is its primary owner
            peer.send({"cmd": "own"})
            owned[peer.id] = read_all([peer], deadline)[peer.id]["results"]
        result["owned"] = owned
        uniques = {peer_id: event["unique"] for peer_id, event in hello.items()}
        probe_start = time.monotonic()
        for peer in peers:
            peer.send({"cmd": "probe", "peers": uniques})
        result["probed"] = {peer_id: event["results"] for peer_id, event in read_all(peers, deadline).items()}
        for peer in peers:
            peer.send({"cmd": "flush"})
        result["received"] = read_all(peers, deadline)
        result["probe_seconds"] = time.monotonic() - probe_start
        connect = [job["python"], "-I", job["peer_script"], address, "--connect-only"]
        # Processes the deployment does not list (root among them) try to own its names while
        # their owners hold them: allowed, they would be queued, and take over when those leave.
        result["intruders"] = [
            dict(
                run_once([*setpriv(intruder["uid"], intruder["gid"]), *connect, *intruder["names"]]),
                label=intruder["label"],
            )
            for intruder in job.get("intruders", [])
        ]
        for peer in peers:
            peer.send({"cmd": "exit"})
        outsider = job["outsider"]
        result["outsider"] = run_once([*setpriv(outsider["uid"], outsider["gid"]), *connect])
    except (TimeoutError, EOFError) as error:
        result["error"] = str(error)
    finally:
        for peer in peers:
            stop(peer.process)
        stop(daemon)
        result["seconds"] = time.monotonic() - started
    return result


def claims(job: dict[str, Any]) -> dict[str, Any]:
    """Start the daemon as the bus user; each claimant connects under its uid and asks for its
    names, one after the other, each keeping nothing (it disconnects when done)."""
    bus = job["bus"]
    daemon, address, early = start_daemon(job["config"], bus["uid"], bus["gid"], job["daemon_stderr"])
    result: dict[str, Any] = {"address": address, "daemon_stderr_at_start": early, "claims": []}
    try:
        connect = [job["python"], "-I", job["peer_script"], address, "--connect-only"]
        for claimant in job["claimants"]:
            outcome = run_once([*setpriv(claimant["uid"], claimant["gid"]), *connect, *claimant["names"]])
            result["claims"].append(dict(outcome, label=claimant["label"]))
    finally:
        stop(daemon)
    return result


def run_once(command: list[str]) -> dict[str, Any]:
    """Run a ``--connect-only`` peer; its one JSON line, or how it failed."""
    run = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    if run.stdout.strip():
        return dict(json.loads(run.stdout))
    return {"ok": False, "outcome": f"failed:peer:{run.returncode}: {run.stderr[-500:]}"}


def main(workdir: str) -> int:
    with open(os.path.join(workdir, "job.json")) as stream:
        job = json.load(stream)
    bind(job["passwd"], "/etc/passwd")
    bind(job["group"], "/etc/group")
    modes = {"validate": validate, "matrix": matrix, "claims": claims}
    result = modes[job["mode"]](job)
    with open(os.path.join(workdir, "results.json"), "w") as stream:
        json.dump(result, stream, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
