"""The description loader (acrrules.load) builds data and positions from the parser's events itself,
with fast paths for the events most of a large file is made of.  These tests hold it to independent
references on generated documents: the data is what PyYAML's own safe_load makes of the text, and
every value's and key's position is the start mark of its node in PyYAML's pure-Python composer
(no libyaml), in block and flow style, with anchors and aliases."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from acrrules.errors import InputError
from acrrules.load import load_yaml

# Text that both YAML versions read as text when PyYAML's dumper leaves it plain (it quotes what
# YAML 1.1 reads otherwise; what only YAML 1.2 would read otherwise, such as `1e3`, is not drawn).
texts = st.from_regex(r"[a-z]{2}[a-z0-9./ -]{0,10}", fullmatch=True)
leaves = st.one_of(texts, st.booleans(), st.integers(-(10**6), 10**6), st.none())


def documents() -> st.SearchStrategy[dict[str, Any]]:
    values = st.recursive(
        leaves,
        lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(texts, inner, max_size=4)),
        max_leaves=30,
    )
    return st.dictionaries(texts, values, min_size=1, max_size=5)


@st.composite
def shared(draw: st.DrawFn) -> dict[str, Any]:
    """A document in which one collection appears twice: the dumper writes an anchor and an alias."""
    doc = draw(documents())
    part = draw(st.one_of(st.lists(leaves, min_size=1, max_size=3), st.dictionaries(texts, leaves, min_size=1)))
    doc["first"] = part
    doc["again"] = {"inner": part}
    return doc


def dump(doc: dict[str, Any], flow: bool | None) -> str:
    return yaml.safe_dump(doc, default_flow_style=flow, sort_keys=False, width=60)


def positions(node: yaml.Node, path: tuple[Any, ...], out: dict[tuple[Any, ...], tuple[int, int]], keys: dict) -> None:
    out[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            positions(item, path + (i,), out, keys)
    elif isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = yaml.SafeLoader("").construct_object(key_node)
            keys[path + (key,)] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            positions(value_node, path + (key,), out, keys)


@settings(max_examples=150, deadline=None)
@given(documents(), st.sampled_from([None, True, False]))
def test_data_and_every_position_match_pyyaml(doc, flow):
    text = dump(doc, flow)
    loaded = load_yaml("t.yaml", text)
    assert loaded.data == yaml.safe_load(text) == doc
    assert loaded.problems == []
    values: dict[tuple[Any, ...], tuple[int, int]] = {}
    keys: dict[tuple[Any, ...], tuple[int, int]] = {}
    positions(yaml.compose(text, Loader=yaml.SafeLoader), (), values, keys)
    for path, where in values.items():
        assert tuple(loaded.written_at(path)) == where, (path, text)
    for path, where in keys.items():
        assert tuple(loaded.mark(path, key=True)) == where, (path, text)


@settings(max_examples=60, deadline=None)
@given(shared(), st.sampled_from([None, True, False]))
def test_anchors_and_aliases_give_the_same_data(doc, flow):
    text = dump(doc, flow)
    assert "&id" in text and "*id" in text
    assert load_yaml("t.yaml", text).data == yaml.safe_load(text) == doc


@pytest.mark.parametrize(
    ("text", "line", "column", "words"),
    [
        # A duplicate key whose value is a collection (the fast path for collections must not take it).
        ("a: {x: 1}\nb: 2\na: [1, 2]\n", 3, 1, "duplicate key 'a'"),
        ("top:\n  - {k: v, k: [w]}\n", 2, 12, "duplicate key 'k'"),
        # A collection where a key belongs.
        ("? [a, b]\n: c\n", 1, 3, "cannot be used as a key"),
        # A merge key, plain and quoted, with a collection as its value.
        ("base: &b {x: 1}\nuse:\n  <<: *b\n", 3, 3, "merge keys"),
        ("use:\n  '<<': {x: 1}\n", 2, 3, "merge keys"),
        # A collection of another tag.
        ("a: !!set {x, y}\n", 1, 4, "tag !!set is not supported"),
    ],
)
def test_what_the_fast_paths_hand_over_is_reported(text, line, column, words):
    with pytest.raises(InputError) as caught:
        doc = load_yaml("t.yaml", text)
        raise InputError(doc.problems)
    found = [(d.line, d.column) for d in caught.value.diagnostics if words in d.message]
    assert found == [(line, column)], caught.value.diagnostics


def test_a_duplicate_collection_value_is_dropped_and_the_first_kept():
    doc = load_yaml("t.yaml", "a: {x: 1}\na: [1, 2]\nb: [{c: d}]\n")
    assert doc.data == {"a": {"x": 1}, "b": [{"c": "d"}]}
    assert tuple(doc.written_at(("b", 0, "c"))) == (3, 9)


def test_keys_that_are_not_text_are_flagged_for_validate():
    assert load_yaml("t.yaml", "a: {b: c}\n").text_keys_only is True
    assert load_yaml("t.yaml", "a: {1: c}\n").text_keys_only is False
    assert load_yaml("t.yaml", "a:\n  true: c\n").text_keys_only is False


def test_duplicate_keys_name_their_first_place_as_keys_are_added_between_them():
    """The keys' positions are indexed at the first duplicate and extended for keys added later."""
    doc = load_yaml("t.yaml", "a: 1\nb: 2\na: 3\nc: 4\nc: 5\nb: 6\nd: 7\nd: 8\n")
    firsts = [
        re.search(r"duplicate key '(\w)' .*first defined at line (\d+), column 1", d.message) for d in doc.problems
    ]
    assert [(m.group(1), int(m.group(2))) for m in firsts if m] == [("a", 1), ("c", 4), ("b", 2), ("d", 7)]
    assert [d.line for d in doc.problems] == [3, 5, 6, 8]
    assert doc.data == {"a": 1, "b": 2, "c": 4, "d": 7}
