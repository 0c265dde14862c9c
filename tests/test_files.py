"""Paths and files: every file the tools read goes through one reader (`model.files.read_file`),
which reads regular files only, without blocking, up to one size bound, and reports everything
else as a located diagnostic or an error line, never a hang, a MemoryError or a traceback.

The commands run as real processes: a FIFO made the old readers block forever, so each run has a
timeout, far above what a refusal takes, that turns a hang into a failure instead of a stuck suite.
"""

from __future__ import annotations

import os
import resource
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sphinxext_qemudbus.compat.gitbaseline import BaselineError, read_baseline_file
from sphinxext_qemudbus.model.files import MAX_FILE_SIZE, FileRefused, read_file
from sphinxext_qemudbus.model.parser import parse_file
from sphinxext_qemudbus.model.registry import read_registry_file
from sphinxext_qemudbus.security.deployment import DeploymentError, load_deployment

ROOT = Path(__file__).resolve().parent.parent
REGISTRY = ROOT / "interfaces"
CLEAN = '<node><interface name="org.example.Clean1"/></node>\n'
TIMEOUT = 60  # seconds: a refusal takes milliseconds; only a hang comes near this


def run(*args: str, cwd: Path | None = None, memory: int | None = None) -> subprocess.CompletedProcess[str]:
    """``qemu-dbus ARGS`` in a process of its own (with ``memory``, its address space bounded:
    a reader that slurps /dev/zero fails fast instead of taking the machine's memory)."""

    def limit() -> None:
        if memory is not None:
            resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

    try:
        return subprocess.run(
            [sys.executable, "-m", "sphinxext_qemudbus", *args],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            cwd=cwd,
            preexec_fn=limit,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"qemu-dbus {' '.join(args)} still ran after {TIMEOUT} s (blocked on a file?)")


class Blocked(BaseException):
    """Not an OSError, nor an Exception: no reader's error handling can mistake it for its own."""


@pytest.fixture
def no_hang() -> Iterator[None]:
    """Fail a test that blocks (reading a FIFO in this process) or reads without end (/dev/zero)
    instead of hanging the suite or taking the machine's memory: an alarm, and an address-space
    bound of 1 GiB above what the process has now."""

    def expire(signum: int, frame: object) -> None:
        raise Blocked(f"blocked for {TIMEOUT} s")

    page = os.sysconf("SC_PAGE_SIZE")
    with open("/proc/self/statm") as statm:
        mapped = int(statm.read().split()[0]) * page
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    bound = mapped + 1024**3
    if hard != resource.RLIM_INFINITY:
        bound = min(bound, hard)
    previous = signal.signal(signal.SIGALRM, expire)
    resource.setrlimit(resource.RLIMIT_AS, (bound, hard))
    signal.alarm(TIMEOUT)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "fifo.xml"
    os.mkfifo(path)
    return path


# --- the reader, over every kind of file -----------------------------------------------------------


def make(kind: str, path: Path) -> str:
    """Make ``path`` a path of ``kind`` that is not a readable file; the rule code expected."""
    if kind == "FIFO":
        os.mkfifo(path)
    elif kind == "device":
        path.symlink_to("/dev/zero")  # a link to it: the reader follows links, as it must
    elif kind == "folder":
        path.mkdir()
    elif kind == "socket":
        with socket.socket(socket.AF_UNIX) as server:
            server.bind(str(path))
    elif kind == "link loop":
        path.symlink_to(path.name + ".other")
        path.with_name(path.name + ".other").symlink_to(path.name)
        return "X006"
    elif kind == "dangling link":
        path.symlink_to("nowhere")
        return "X006"
    else:
        with path.open("wb") as stream:
            stream.truncate(MAX_FILE_SIZE + 1)  # sparse: nothing behind it to read
        return "X004"
    return "X007"


KINDS = ["FIFO", "device", "folder", "socket", "link loop", "dangling link", "over the bound"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.usefixtures("no_hang")
def test_the_reader_refuses_every_other_kind_of_path(tmp_path: Path, kind: str) -> None:
    code = make(kind, tmp_path / "file.xml")
    with pytest.raises(FileRefused) as refused:
        read_file(tmp_path / "file.xml")
    assert refused.value.code == code
    assert [d.code for d in parse_file(tmp_path / "file.xml").diagnostics] == [code]


def test_the_reader_reads_regular_files_and_links_to_them(tmp_path: Path) -> None:
    (tmp_path / "a.xml").write_text(CLEAN)
    (tmp_path / "link.xml").symlink_to("a.xml")
    assert read_file(tmp_path / "link.xml") == CLEAN.encode()
    assert read_file(tmp_path / "a.xml", limit=len(CLEAN)) == CLEAN.encode()
    with pytest.raises(FileRefused, match="larger than"):
        read_file(tmp_path / "a.xml", limit=len(CLEAN) - 1)


def _read_release(path: Path) -> None:
    settings = read_registry_file(str(path.parent))
    assert settings.release is None
    assert settings.problems
    problem = settings.problems[0]
    raise ValueError(f"{problem.code}: {problem.message}")


# Every other reader of the tools: each goes through read_file, so each refuses the same paths with
# an error that says why (the XML readers are the parser's, tested above).
READERS: dict[str, tuple[str, Callable[[Path], object], type[Exception]]] = {
    "baseline file": ("compat-baseline", read_baseline_file, BaselineError),
    "deployment": ("deployment.toml", lambda path: load_deployment(str(path)), DeploymentError),
    "registry.toml": ("registry.toml", _read_release, ValueError),
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("reader", sorted(READERS))
@pytest.mark.usefixtures("no_hang")
def test_every_reader_refuses_the_same_paths(tmp_path: Path, reader: str, kind: str) -> None:
    name, read, error = READERS[reader]
    make(kind, tmp_path / name)
    with pytest.raises(error) as raised:
        read(tmp_path / name)
    assert str(raised.value)


# --- the commands -------------------------------------------------------------------------------


def test_check_refuses_a_fifo_instead_of_blocking(fifo: Path) -> None:
    result = run("check", "--no-cache", str(fifo))
    assert result.returncode == 2
    assert f"{fifo}: error: a FIFO, not a regular file: only regular files are read [X007]" in result.stdout


def test_diff_refuses_a_fifo_instead_of_blocking(fifo: Path, tmp_path: Path) -> None:
    (tmp_path / "a.xml").write_text(CLEAN)
    result = run("diff", str(tmp_path / "a.xml"), str(fifo))
    assert result.returncode == 2
    assert "[X007]" in result.stdout
    assert "qemu-dbus diff: error: cannot compare: 1 file above could not be read" in result.stderr


def test_policy_refuses_a_fifo_deployment(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "deployment.toml")
    result = run("policy", "--scenario", "single-uid", "--deployment", str(tmp_path / "deployment.toml"), cwd=ROOT)
    assert result.returncode == 2
    assert "a FIFO, not a regular file" in result.stderr


@pytest.mark.usefixtures("no_hang")
def test_a_registry_toml_that_is_a_fifo_is_a_finding(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "registry.toml")
    settings = read_registry_file(str(tmp_path))
    assert settings.release is None
    assert [problem.code for problem in settings.problems] == ["M303"]
    assert "a FIFO" in settings.problems[0].message


@pytest.mark.parametrize("baseline", ["/dev/zero", "fifo"])
def test_baseline_file_that_never_ends_is_an_error(tmp_path: Path, baseline: str) -> None:
    if baseline == "fifo":
        os.mkfifo(tmp_path / "fifo")
        baseline = str(tmp_path / "fifo")
    result = run("diff", "--baseline-file", baseline, str(REGISTRY), cwd=ROOT, memory=2 * 1024**3)
    assert result.returncode == 2
    assert "cannot read baseline file" in result.stderr
    assert "not a regular file" in result.stderr
    assert "MemoryError" not in result.stderr


def test_dbus_doc_of_a_fifo_warns_instead_of_blocking(tmp_path: Path) -> None:
    source = tmp_path / "docs"
    source.mkdir()
    (source / "conf.py").write_text('extensions = ["sphinxext_qemudbus"]\n')
    (source / "index.rst").write_text("Title\n=====\n\n.. dbus-doc:: fifo.xml\n\nAfter.\n")
    os.mkfifo(source / "fifo.xml")
    try:
        result = subprocess.run(
            [sys.executable, "-m", "sphinx", "--no-color", "-b", "html", "-q", str(source), str(tmp_path / "out")],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"sphinx-build still ran after {TIMEOUT} s: dbus-doc blocked on a FIFO")
    warning = f"index.rst:4: WARNING: {source / 'fifo.xml'}: a FIFO, not a regular file: only regular files are read"
    assert warning in result.stderr
    assert "After." in (tmp_path / "out" / "index.html").read_text()


def test_symbolic_link_loop_in_a_folder_is_reported_not_a_traceback(tmp_path: Path) -> None:
    folder = tmp_path / "xml"
    folder.mkdir()
    (folder / "org.example.Clean1.xml").write_text(CLEAN)
    (folder / "a.xml").symlink_to("b.xml")
    (folder / "b.xml").symlink_to("a.xml")
    result = run("check", "--no-cache", "--profile", "generic", "--select", "X", str(folder))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stdout.splitlines()
    assert f"{folder / 'a.xml'}: error: cannot read file: Too many levels of symbolic links [X006]" in lines
    assert f"{folder / 'b.xml'}: error: cannot read file: Too many levels of symbolic links [X006]" in lines


def test_a_folder_with_no_xml_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no XML here")
    (tmp_path / "org.example.Clean1.xml").write_text(CLEAN)
    result = run("check", "--no-cache", "--profile", "generic", str(tmp_path / "empty"))
    assert result.returncode == 2
    assert f"qemu-dbus check: error: {tmp_path / 'empty'}: no *.xml file in this folder" in result.stderr
    # Beside a file that is fine, still an error: one of the paths named checks nothing.
    result = run(
        "check", "--no-cache", "--profile", "generic", str(tmp_path / "org.example.Clean1.xml"), str(tmp_path / "empty")
    )
    assert result.returncode == 2
    result = run("diff", str(tmp_path / "org.example.Clean1.xml"), str(tmp_path / "empty"))
    assert result.returncode == 2
    assert "no *.xml file in this folder" in result.stderr


@pytest.mark.parametrize("jobs", ["0", "-1", "-8", "two"])
def test_jobs_must_be_at_least_one(tmp_path: Path, jobs: str) -> None:
    (tmp_path / "org.example.Clean1.xml").write_text(CLEAN)
    result = run("check", "--no-cache", f"--jobs={jobs}", str(tmp_path))
    assert result.returncode == 2
    assert "--jobs" in result.stderr
    assert "Traceback" not in result.stderr
