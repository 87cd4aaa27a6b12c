from __future__ import annotations

import json

import jiter
import pytest
from hypothesis import given
from hypothesis import strategies as st

from policysync.jsonsource import SourceMap, parse, position

TEXT = """{
  "organization_id": "acme",
  "org_policy": {
    "roles": [
      {"role_id": "a", "permissions": []},
      {"role_id": "b/c", "permissions": [{"resource_id": "x", "actions": ["r", "w"]}]}
    ]
  }
}"""


def test_position_is_one_based() -> None:
    assert position("ab\ncd", 0) == (1, 1)
    assert position("ab\ncd", 4) == (2, 2)


def test_source_map_places_values_and_keys() -> None:
    smap = SourceMap(TEXT, 32)
    line, col = position(TEXT, smap.offset_of("/org_policy/roles/1/permissions/0/actions/1"))
    assert (line, col) == (6, 80)
    assert TEXT.splitlines()[5][col - 1 : col + 2] == '"w"'
    line, col = position(TEXT, smap.offset_of("/organization_id", key=True))
    assert (line, col) == (2, 3)


def test_pointer_escaping_and_missing_pointer_falls_back_to_ancestor() -> None:
    text = '{"a/b": {"c~d": 1}}'
    smap = SourceMap(text, 32)
    assert smap.offset_of("/a~1b/c~0d") == text.index("1")
    assert smap.offset_of("/a~1b/nope") == text.index("{", 1)


def test_duplicate_keys_are_found_with_both_positions() -> None:
    text = '{"a": 1,\n "b": {"x": 1, "x": 2}, "a": 3}'
    data, problems = parse(text, 32)
    assert data is None
    assert [(p.code, p.pointer) for p in problems] == [
        ("json-duplicate-key", "/b/x"),
        ("json-duplicate-key", "/a"),
    ]
    assert position(text, problems[0].offset) == (2, 16)
    assert "first at line 2, column 8" in problems[0].message


def test_nesting_bomb_is_reported_not_raised() -> None:
    text = "[" * 200_000 + "]" * 200_000
    data, problems = parse(text, 32)
    assert data is None
    assert [p.code for p in problems] == ["json-too-deep"]
    assert problems[0].offset == 32


@pytest.mark.parametrize(
    ("text", "offset"),
    [("[1, 2,]", 5), ('{"a" 1}', 5), ("{'a': 1}", 1), ("[1] [2]", 4), ('{"a": NaN}', 6)],
)
def test_syntax_errors_are_placed(text: str, offset: int) -> None:
    data, problems = parse(text, 32)
    assert data is None
    assert [(p.code, p.offset) for p in problems] == [("json-syntax", offset)]


def test_huge_integer_is_read_as_a_value_of_the_wrong_type_not_a_crash() -> None:
    assert parse("[" + "9" * 5000 + "]", 32) == ([float("inf")], [])


def test_lone_surrogates_are_reported_in_document_order() -> None:
    text = '{"b": "\\ud800", "a": ["ok", "\\udc00"], "\\ud801": 1}'
    data, problems = parse(text, 32)
    assert data is None
    assert [(p.code, p.pointer) for p in problems] == [
        ("json-surrogate", "/b"),
        ("json-surrogate", "/a/1"),
        ("json-surrogate", "/\ud801"),
    ]
    assert problems[2].offset == text.index('"\\ud801"')


def test_a_surrogate_pair_is_a_character() -> None:
    assert parse('["\\ud83d\\ude00"]', 32) == (["\U0001f600"], [])


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=4), children, max_size=4)
    ),
    max_leaves=20,
)


def _pointers(value: object, ptr: str = "") -> list[str]:
    out = [ptr]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _pointers(v, ptr + "/" + k.replace("~", "~0").replace("/", "~1"))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _pointers(v, f"{ptr}/{i}")
    return out


@given(json_values, st.booleans())
def test_every_pointer_maps_to_the_text_of_its_value(value: object, indent: bool) -> None:
    text = json.dumps(value, indent=2 if indent else None)
    assert parse(text, 64) == (value, [])
    smap = SourceMap(text, 64)
    assert smap.stopped_at is None
    for ptr in _pointers(value):
        offset = smap.offset_of(ptr)
        decoded, _ = json.JSONDecoder().raw_decode(text, offset)
        assert decoded == _resolve(value, ptr)


def _resolve(value: object, ptr: str) -> object:
    for part in ptr.split("/")[1:]:
        key = part.replace("~1", "/").replace("~0", "~")
        value = value[int(key)] if isinstance(value, list) else value[key]  # type: ignore[index]
    return value


@given(json_values, st.integers(min_value=0), st.sampled_from(["", ",", '"', "]", "}", "x", "\\"]))
def test_fast_path_agrees_with_the_standard_parser(value: object, at: int, insert: str) -> None:
    """jiter (the fast path) accepts only what json accepts, as the same data; what only
    json accepts goes through the slow path (duplicate keys are then reported)."""
    text = json.dumps(value)
    at %= len(text) + 1
    text = text[:at] + insert + text[at:]
    try:
        slow = json.loads(text)
    except ValueError:
        slow = ValueError
    data, problems = parse(text, 64)
    try:
        fast = jiter.from_json(text.encode(), allow_inf_nan=False, catch_duplicate_keys=True)
    except ValueError:
        if not problems:
            assert data == slow  # e.g. an escaped lone surrogate, which jiter refuses
        return
    assert fast == slow
    assert (data, problems) == (fast, [])
