"""Reviewable IP diffs (issue 14, item 5): one changed prefix is one changed line.

Two real consecutive weeks of the Public Service Tags file render acrrules.nft, ipset.rules and the
lists; difflib compares the two renders of each file.  Below each file's leading comment block (the
header, which names the Service Tags file and changeNumbers and is not a prefix), every changed line
must hold exactly one prefix, added or removed, and the number of changed lines must equal the number
of prefix changes, computed straight from the raw JSON (tests/netns.py expected_prefixes, ipaddress only).
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from pathlib import Path

import netns
import pytest
from conftest import SERVICETAGS, run_cli

# Consecutive weeks: prefixes added in both families, in IPv4 only, and a quiet week (no line may change).
WEEKS = [
    ("ServiceTags_Public_20250804.json", "ServiceTags_Public_20250811.json"),
    ("ServiceTags_Public_20251006.json", "ServiceTags_Public_20251013.json"),
    ("ServiceTags_Public_20251013.json", "ServiceTags_Public_20251020.json"),
    ("ServiceTags_Public_20251020.json", "ServiceTags_Public_20251027.json"),
]
FILES = ("acrrules.nft", "ipset.rules", "edl-ipv4.txt", "edl-ipv6.txt")
PREFIX = re.compile(r"[0-9a-f:.]+/\d+")


def body(text: str) -> list[str]:
    """The lines after the leading block of comment (and blank) lines."""
    lines = text.splitlines()
    i = 0
    while i < len(lines) and (lines[i].startswith("#") or not lines[i].strip()):
        i += 1
    return lines[i:]


def render(tmp: Path, tags: Path) -> dict[str, str]:
    tmp.mkdir(parents=True, exist_ok=True)
    spec = tmp / "spec.yaml"
    spec.write_text(netns.real_description("AzureCloud", "nftables", "{mode: include}"), encoding="utf-8")
    out = tmp / "out"
    r = run_cli("render", spec, "-t", "nftables", "-t", "iptables", "-t", "lists", "--service-tags", tags, "--out", out)
    assert r.code == 0, r.err
    return {name: (out / name).read_text(encoding="utf-8") for name in FILES}


def changed_lines(old: str, new: str) -> tuple[list[str], list[str]]:
    added, removed = [], []
    for line in difflib.unified_diff(body(old), body(new), lineterm="", n=0):
        if line.startswith(("+++", "---", "@@")):
            continue
        (added if line.startswith("+") else removed).append(line[1:])
    return added, removed


def the_prefix(line: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """The one prefix a changed line holds (nft `\t\tP,`, ipset `add SET P`, list `P`)."""
    found = PREFIX.findall(line)
    assert len(found) == 1, f"a changed line that is not one prefix: {line!r}"
    return ipaddress.ip_network(found[0])


@pytest.mark.parametrize("old_name,new_name", WEEKS)
def test_one_changed_prefix_is_one_changed_line(tmp_path, old_name, new_name):
    old_tags, new_tags = SERVICETAGS / old_name, SERVICETAGS / new_name
    if not (old_tags.exists() and new_tags.exists()):
        pytest.skip(f"{SERVICETAGS} lacks {old_name} or {new_name}")
    want = {}
    for version, old_set, new_set in zip(
        (4, 6), netns.expected_prefixes(old_tags, "AzureCloud"), netns.expected_prefixes(new_tags, "AzureCloud")
    ):
        want[version] = (new_set - old_set, old_set - new_set)  # (added, removed), from the raw JSON

    old, new = render(tmp_path / "old", old_tags), render(tmp_path / "new", new_tags)
    per_file = {
        "acrrules.nft": (4, 6),
        "ipset.rules": (4, 6),
        "edl-ipv4.txt": (4,),
        "edl-ipv6.txt": (6,),
    }
    for name, versions in per_file.items():
        added, removed = changed_lines(old[name], new[name])
        want_added = set().union(*(want[v][0] for v in versions))
        want_removed = set().union(*(want[v][1] for v in versions))
        assert len(added) + len(removed) == len(want_added) + len(want_removed), (name, added, removed)
        assert sorted(map(the_prefix, added), key=str) == sorted(want_added, key=str), name
        assert sorted(map(the_prefix, removed), key=str) == sorted(want_removed, key=str), name
