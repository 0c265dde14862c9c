"""The benchmarks still run: `make bench` is not part of `make check`, so a change that broke it
(or made the floor builder build a different model) would otherwise go unnoticed."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"


def test_floor_builder_builds_the_parsers_model() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH / "floor.py"), "--verify", str(ROOT / "interfaces")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_checker_bench_runs_on_a_small_corpus() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH / "checker_bench.py"), "--count", "40", "--repeat", "1"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    for label in (
        "bare lxml parse (baseline)",
        "check, cold, all CPUs",
        "check, cold, one process",
        "model only, no checks (floor)",
        "check, filling the cache",
        "check, warm cache",
    ):
        assert label in result.stdout


def test_hostile_bench_runs_small() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH / "hostile_bench.py"), "--scale", "0.01", "--repeat", "1"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    for label in ("one-line corpus", "hostile one-liner", "pathological reference"):
        assert result.stdout.count(label) == 2


def test_interpreters_bench_runs_small() -> None:
    bench = str(BENCH / "interpreters_bench.py")
    small = ["--count", "20", "--hostile", "100", "--repeat", "1"]
    # Both "interpreters" are this one here: the rows and the table are what is checked.
    result = subprocess.run(
        [sys.executable, bench, "--oldest", sys.executable, *small],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    for label in ("bare lxml parse", "check, cold, one process", "check, warm cache", "QEMU's pages, clean build"):
        assert label in result.stdout


def test_sphinx_bench_runs_small() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH / "sphinx_bench.py"), "--registry-only", "--count", "10", "--repeat", "1"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    for label in ("clean build", "incremental, one XML file edited", "doc comments: their reST parse"):
        assert label in result.stdout


def test_live_bench_runs_on_one_hostile_message() -> None:
    if shutil.which("dbus-daemon") is None:
        pytest.skip("no dbus-daemon on this machine")
    result = subprocess.run(
        [sys.executable, str(BENCH / "live_bench.py"), "--only", "empty-struct"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "bus       empty-struct" in result.stdout
    assert "listener  empty-struct" in result.stdout
    assert "2 runs: at most" in result.stdout
