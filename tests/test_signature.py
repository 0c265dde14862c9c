"""The D-Bus type grammar, checked against the spec's rules (dbus-facts.md §2)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sphinxext_qemudbus.model.signature import (
    MAX_DEPTH,
    MAX_SIGNATURE_LENGTH,
    SignatureError,
    describe,
    describe_signature,
    parse_signature,
    parse_single_type,
    signature_error,
)

VALID = [
    "",
    "y",
    "b",
    "n",
    "q",
    "i",
    "u",
    "x",
    "t",
    "d",
    "h",
    "s",
    "o",
    "g",
    "v",
    "ay",
    "as",
    "a{sv}",
    "aa{sv}",
    "a(iu)",
    "(ii)",
    "((i)(s))",
    "a{oa{sa{sv}}}",
    "a{ys}",
    "a{hs}",
    "a{ds}",
    "a{os}",
    "a{gs}",
    "ii",
    "sa{sv}as",
    "(a{sv}av)",
]

INVALID = {
    "r": "'r'",
    "e": "'e'",
    "m": "'m'",
    "*": "'*'",
    "?": "'?'",
    "@": "'@'",
    "&": "'&'",
    "^": "'^'",
    "()": "empty struct",
    "a": "array with no element type",
    "aa": "array with no element type",
    "(": "unclosed struct",
    "(i": "unclosed struct",
    ")": "unexpected ')'",
    "i)": "unexpected ')'",
    "{sv}": "dict entry outside an array",
    "a{vs}": "dict key must be a basic type",
    "a{(i)s}": "dict key must be a basic type",
    "a{ass}": "dict key must be a basic type",
    "a{s}": "dict entry needs exactly two types",
    "a{svs}": "dict entry needs exactly two types",
    "a{}": "dict entry needs exactly two types",
    "a{sv": "unclosed dict entry",
    "(}": "unexpected '}'",
    "}": "unexpected '}'",
    "a{s}v}": "dict entry needs exactly two types",
    "(a{sv)": "unexpected ')'",
}


@pytest.mark.parametrize("sig", VALID)
def test_valid_signatures(sig: str) -> None:
    assert signature_error(sig) is None
    assert "".join(t.code for t in parse_signature(sig)) == sig


@pytest.mark.parametrize(("sig", "fragment"), sorted(INVALID.items()))
def test_invalid_signatures(sig: str, fragment: str) -> None:
    with pytest.raises(SignatureError) as info:
        parse_signature(sig)
    assert fragment in info.value.message
    assert 0 <= info.value.position <= len(sig)


def test_length_limit() -> None:
    assert signature_error("i" * MAX_SIGNATURE_LENGTH) is None
    error = signature_error("i" * (MAX_SIGNATURE_LENGTH + 1))
    assert error is not None
    assert "255" in error.message


def test_array_depth_32_is_the_limit() -> None:
    assert signature_error("a" * MAX_DEPTH + "i") is None
    error = signature_error("a" * (MAX_DEPTH + 1) + "i")
    assert error is not None
    assert "32 arrays" in error.message


def test_struct_depth_32_is_the_limit() -> None:
    assert signature_error("(" * MAX_DEPTH + "i" + ")" * MAX_DEPTH) is None
    error = signature_error("(" * (MAX_DEPTH + 1) + "i" + ")" * (MAX_DEPTH + 1))
    assert error is not None
    assert "32 structs" in error.message


def test_array_depth_counts_true_nesting_through_structs() -> None:
    # libdbus counts consecutive 'a's only and accepts this; the spec does not.
    sig = "a(" * 33 + "i" + ")" * 33
    error = signature_error(sig)
    assert error is not None
    assert "32 arrays" in error.message


def test_dict_entries_count_as_struct_nesting() -> None:
    sig = "a{sa{sa{s" * 11
    inner = "i" + "}" * 33
    assert signature_error(sig + inner) is not None


def test_maximum_total_depth_64_is_valid() -> None:
    sig = "a(" * 32 + "i" + ")" * 32
    assert signature_error(sig) is None


def test_single_complete_type() -> None:
    assert parse_single_type("a{sv}").code == "a{sv}"
    with pytest.raises(SignatureError, match="exactly one complete type"):
        parse_single_type("ii")
    with pytest.raises(SignatureError, match="exactly one complete type"):
        parse_single_type("")


@pytest.mark.parametrize(
    ("sig", "text"),
    [
        ("a{sv}", "dict of string to variant"),
        ("a(iu)", "array of (int32, uint32)"),
        ("h", "Unix file descriptor"),
        ("o", "object path"),
        ("g", "signature"),
        ("ay", "array of byte"),
        ("aa{sv}", "array of dict of string to variant"),
        ("(sa{sv})", "(string, dict of string to variant)"),
        ("t", "uint64"),
        ("b", "boolean"),
    ],
)
def test_describe(sig: str, text: str) -> None:
    assert describe(parse_single_type(sig)) == text


def test_describe_signature_joins_complete_types() -> None:
    assert describe_signature("ia{sv}") == "int32, dict of string to variant"
    assert describe_signature("") == "nothing"


# --- property-based -------------------------------------------------------------------------

BASIC = "ybnqiuxtdhsog"


def complete_types(max_leaves: int = 12) -> st.SearchStrategy[str]:
    basic = st.sampled_from(BASIC)
    leaf = st.one_of(basic, st.just("v"))

    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return st.one_of(
            inner.map(lambda t: "a" + t),
            st.tuples(basic, inner).map(lambda kv: "a{" + kv[0] + kv[1] + "}"),
            st.lists(inner, min_size=1, max_size=4).map(lambda ts: "(" + "".join(ts) + ")"),
        )

    return st.recursive(leaf, extend, max_leaves=max_leaves)


@given(st.lists(complete_types(), max_size=5))
@settings(max_examples=400)
def test_generated_valid_signatures_round_trip(parts: list[str]) -> None:
    sig = "".join(parts)
    if len(sig) > MAX_SIGNATURE_LENGTH:
        return
    types = parse_signature(sig)
    assert [t.code for t in types] == parts
    # The description is total: every complete type has one.
    for t in types:
        assert describe(t)


@given(st.text(alphabet=st.sampled_from("ybnqiuxtdhsogva{}()rem*?@&^ Z\x00é"), max_size=80))
@settings(max_examples=1500)
def test_arbitrary_strings_never_crash(text: str) -> None:
    error = signature_error(text)
    if error is None:
        assert "".join(t.code for t in parse_signature(text)) == text
    else:
        assert 0 <= error.position <= len(text)


@given(st.text(max_size=300))
@settings(max_examples=500)
def test_arbitrary_unicode_never_crashes(text: str) -> None:
    signature_error(text)
