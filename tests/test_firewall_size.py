"""The azure-firewall target sizes each rule as Azure stores it (its ARM JSON) to pack rule collection
groups under the 2 MB limit. It measures the JSON shared by every rule once (_Sizer); this proves the
sum of the parts is byte for byte the length of the whole rule's JSON, for any text a rule carries."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from acrrules.targets.azure_firewall import AppRule, NetRule, _size, _Sizer

texts = st.text(max_size=40)  # any code point: JSON escapes (\n, \u2028, surrogates) change the length
values = st.lists(texts, max_size=6).map(tuple)
sources = st.lists(st.sampled_from(["10.0.0.0/8", "192.0.2.0/24", "203.0.113.7"]), max_size=3).map(tuple)
rules = st.one_of(st.builds(AppRule, texts, texts, values), st.builds(NetRule, texts, texts, values))


@given(sources, st.lists(rules, min_size=1, max_size=8))
def test_the_parts_add_up_to_the_whole_rule(srcs, some_rules):
    size_of = _Sizer(srcs)
    for rule in some_rules:  # several rules of both kinds through one sizer: its cache is per kind
        assert size_of(rule) == _size(rule, srcs)
