"""A pytest plugin that prints the policy matrix counts in the terminal summary, so that every
``make check`` shows how many allowed and denied combinations the real-daemon tests tried.
Loaded by ``pytest_plugins`` in ``tests/test_policy_daemon.py``."""

from __future__ import annotations

from typing import Any

#: Lines that the matrix tests add as their runs finish.
LINES: list[str] = []


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if LINES:
        terminalreporter.write_sep("-", "dbus-daemon policy matrix")
        for line in LINES:
            terminalreporter.write_line(line)
