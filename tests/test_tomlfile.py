"""The bounded TOML reader (`model.tomlfile`): the scan that bounds nesting reads strings and
comments as tomllib does, and no text gets anything but a document or a located `TomlError`."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from sphinxext_qemudbus._compat import tomllib
from sphinxext_qemudbus.model.tomlfile import MAX_NESTING, TomlError, nesting_error, parse_toml


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("x = " + "[" * 33 + "]" * 33, (1, 37)),
        ("\n\nx = " + "{a=" * 33 + "1" + "}" * 33, (3, 101)),
        ("[t]\nx = [[[\n" + "[" * 30 + "]" * 33 + "\n", (3, 30)),
    ],
)
def test_the_first_bracket_too_many_is_located(text: str, where: tuple[int, int]) -> None:
    assert nesting_error(text) == (*where, "arrays and inline tables")
    with pytest.raises(TomlError) as caught:
        parse_toml(text, "f.toml")
    assert (caught.value.location.line, caught.value.location.column) == where


@pytest.mark.parametrize(
    "text",
    [
        "x = " + "[" * MAX_NESTING + "]" * MAX_NESTING,
        "x = '" + "[" * 100 + "'",
        "x = '''" + "[" * 100 + "''''' # [",
        'x = """' + "[" * 100 + '\\""" """""',
        'x = "' + "{" * 100 + '\\""',
        "# " + "[" * 100 + "\nx = 1",
        '"[[[[" = 1',
    ],
)
def test_brackets_in_strings_comments_and_keys_are_text(text: str) -> None:
    assert nesting_error(text) is None
    assert parse_toml(text, "f.toml") == tomllib.loads(text)


def test_syntax_errors_are_located() -> None:
    with pytest.raises(TomlError) as caught:
        parse_toml("a = 1\nb = = 2\n", "f.toml")
    assert (caught.value.location.line, caught.value.location.column) == (2, 5)
    assert caught.value.message.startswith("TOML syntax: ")
    assert "(at line" not in caught.value.message


PIECES = st.sampled_from(
    ["[", "]", "{", "}", "[[", "]]", '"', "'", '"""', "'''", "\\", "#", "\n", "=", ",", ".", "a", "1", " ", "x = "]
)


@given(st.lists(st.one_of(PIECES, st.builds(lambda s, n: s * n, st.sampled_from("[{"), st.integers(1, 3000)))))
@example(["x = ", "[" * 3000])
@example(["x = ", '"""', "[" * 3000])
@example(["a", ".a" * 3000, " = 1"])
def test_any_text_gives_a_document_or_a_located_error(pieces: list[str]) -> None:
    text = "".join(pieces)
    problem: TomlError | None = None
    try:
        parse_toml(text, "f.toml")
    except TomlError as error:
        problem = error
    assert problem is None or problem.location.path == "f.toml"


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("a" + ".a" * 32 + " = 1", (1, 64)),
        ("[t]\n[" + "a." * 32 + "a]", (2, 65)),
        ("x = {" + "a." * 32 + "a = 1}", (1, 69)),
        ('"q.q"' + ".a" * 31 + " = 1\n" + "b" + ".b" * 32 + " = 1", (2, 64)),  # a quoted part is one part
    ],
)
def test_the_first_key_part_too_many_is_located(text: str, where: tuple[int, int]) -> None:
    assert nesting_error(text) == (*where, "parts in one key")


@pytest.mark.parametrize(
    "text",
    [
        "a" + ".a" * 31 + " = 1",
        "x = [" + ", ".join(["1.5"] * 100) + "]",
        "".join(f"x{k} = {{a = 1.5, b = 2.5}}\n" for k in range(50)),
        "# a.b.c" + ".c" * 100 + "\nx = 1",
        "x = 1979-05-27T07:32:00.999\ny = 3.14",
    ],
)
def test_dots_in_values_and_comments_are_not_key_parts(text: str) -> None:
    assert nesting_error(text) is None
    assert parse_toml(text, "f.toml") == tomllib.loads(text)


def test_inline_tables_with_long_keys_are_measured_as_a_document() -> None:
    text = "x = " + "{" + "a." * 30 + "a = " + ("{" + "a." * 30 + "a = ") * 3 + "1" + "}" * 4
    assert nesting_error(text) is None
    with pytest.raises(TomlError, match="tables nested deeper than 96 levels"):
        parse_toml(text, "f.toml")
