"""Name rules from the D-Bus specification (dbus-facts.md §1)."""

from __future__ import annotations

import pytest

from sphinxext_qemudbus.model.names import (
    bus_name_error,
    interface_name_error,
    is_under_prefix,
    member_name_error,
    object_path_error,
    path_pattern_error,
    path_pattern_regex,
    relative_path_error,
)


@pytest.mark.parametrize("name", ["org.qemu.Display1", "a.b", "_a._b", "org._7_zip", "a" * 126 + "." + "b" * 128])
def test_valid_interface_names(name: str) -> None:
    assert interface_name_error(name) is None


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("", "empty"),
        ("org", "at least two"),
        ("org..qemu", "empty element"),
        (".org.qemu", "empty element"),
        ("org.qemu.", "empty element"),
        ("org.7zip", "starts with a digit"),
        ("org.qemu-x", "may only hold"),
        ("org.qému", "may only hold"),
        ("a" * 127 + "." + "b" * 128, "256 bytes"),
    ],
)
def test_invalid_interface_names(name: str, fragment: str) -> None:
    error = interface_name_error(name)
    assert error is not None
    assert fragment in error


@pytest.mark.parametrize("name", ["Press", "_x", "ScanoutDMABUF", "a1"])
def test_valid_members(name: str) -> None:
    assert member_name_error(name) is None


@pytest.mark.parametrize(
    ("name", "fragment"),
    [("", "empty"), ("1x", "digit"), ("a.b", "'.'"), ("a-b", "may only"), ("x" * 256, "256 bytes")],
)
def test_invalid_members(name: str, fragment: str) -> None:
    error = member_name_error(name)
    assert error is not None
    assert fragment in error


@pytest.mark.parametrize("name", ["org.qemu", "org.qemu.vnc", "a-b.c", ":1.42", ":1.2-3", "org._7zip"])
def test_valid_bus_names(name: str) -> None:
    assert bus_name_error(name) is None


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        (".a.b", "start with '.'"),
        ("org", "two"),
        ("org.7zip", "digit"),
        ("a..b", "empty"),
        (":1", "two"),
        ("a.b$", "may only"),
    ],
)
def test_invalid_bus_names(name: str, fragment: str) -> None:
    error = bus_name_error(name)
    assert error is not None
    assert fragment in error


@pytest.mark.parametrize("path", ["/", "/org", "/org/qemu/Display1/Console_0", "/a_b/0"])
def test_valid_paths(path: str) -> None:
    assert object_path_error(path) is None


@pytest.mark.parametrize(
    ("path", "fragment"),
    [
        ("", "empty"),
        ("org", "start with"),
        ("/org/", "end with"),
        ("//", "end with"),
        ("/a//b", "empty element"),
        ("/a-b", "may only"),
    ],
)
def test_invalid_paths(path: str, fragment: str) -> None:
    error = object_path_error(path)
    assert error is not None
    assert fragment in error


def test_relative_child_node_names() -> None:
    assert relative_path_error("Console_0") is None
    assert relative_path_error("a/b") is None
    assert relative_path_error("a/") is not None


def test_path_patterns() -> None:
    assert path_pattern_error("/org/qemu/Display1/Console_{id}") is None
    assert path_pattern_error("/org/qemu/Display1/Console_{id") is not None
    assert path_pattern_error("/org/qemu/{a-b}") is not None
    regex = path_pattern_regex("/org/qemu/Display1/Console_{id}")
    assert regex.match("/org/qemu/Display1/Console_0")
    assert not regex.match("/org/qemu/Display1/Console_0/x")


@pytest.mark.parametrize(
    ("name", "expected"),
    [("org.qemu.Display1", True), ("org.qemu", False), ("org.qemux.Foo", False), ("org.qemu.", False)],
)
def test_reserved_prefix(name: str, expected: bool) -> None:
    assert is_under_prefix(name, "org.qemu") is expected
