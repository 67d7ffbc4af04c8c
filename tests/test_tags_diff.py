"""`acrrules tags diff` on the real consecutive weekly Service Tags files.

Expected values are derived here, independently, with plain set arithmetic on
the raw JSON (no acrrules code), and compared with the command's JSON output.
"""

from __future__ import annotations

import ipaddress
import json
from functools import cache
from pathlib import Path

import pytest
from conftest import SERVICETAGS, need_shared, run_cli, run_cli_process


def st(name: str) -> Path:
    need_shared()
    path = SERVICETAGS / name
    if not path.is_file():
        pytest.skip(f"{path} is not present")
    return path


PUB_1006, PUB_1013 = "ServiceTags_Public_20251006.json", "ServiceTags_Public_20251013.json"
PUB_1020, PUB_1027 = "ServiceTags_Public_20251020.json", "ServiceTags_Public_20251027.json"
GOV_1013, GOV_1020 = "ServiceTags_AzureGovernment_20251013.json", "ServiceTags_AzureGovernment_20251020.json"
CN_1013, CN_1020 = "ServiceTags_China_20251013.json", "ServiceTags_China_20251020.json"


@cache
def raw(name: str) -> dict:
    with open(st(name), encoding="utf-8") as fh:
        return json.load(fh)


@cache
def tag_prefixes(name: str) -> dict[str, frozenset[str]]:
    return {v["name"]: frozenset(v["properties"]["addressPrefixes"]) for v in raw(name)["values"]}


def tag_change_number(name: str, tag: str) -> int | None:
    for v in raw(name)["values"]:
        if v["name"] == tag:
            return v["properties"]["changeNumber"]
    return None


def expected_changes(old: str, new: str, tags=None) -> dict[str, tuple[set[str], set[str]]]:
    """tag -> (added, removed), for every tag whose prefix set differs (absent tag = empty set)."""
    a, b = tag_prefixes(old), tag_prefixes(new)
    names = set(a) | set(b) if tags is None else set(tags)
    out = {}
    for n in names:
        before, after = a.get(n, frozenset()), b.get(n, frozenset())
        if before != after:
            out[n] = (set(after - before), set(before - after))
    return out


def diff_json(*args) -> tuple[int, dict]:
    r = run_cli("tags", "diff", *map(str, args), "--format", "json")
    assert r.code in (0, 1), r.err
    assert r.err == ""
    return r.code, json.loads(r.out)


def assert_matches(doc: dict, expected: dict[str, tuple[set[str], set[str]]]) -> None:
    got = {c["tag"]: (set(c["added"]), set(c["removed"])) for c in doc["changed"]}
    assert got == expected
    assert [c["tag"] for c in doc["changed"]] == sorted(got)
    for c in doc["changed"]:
        for key in ("added", "removed"):
            nets = [ipaddress.ip_network(p) for p in c[key]]
            assert nets == sorted(nets, key=lambda n: (n.version, n)), f"{c['tag']} {key} not sorted"


def write_spec(tmp_path: Path, text: str, name: str = "spec.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def one_registry(location: str, cloud: str = "AzureCloud", mcr: bool = False) -> str:
    return (
        f"version: 1\ncloud: {cloud}\nmcr: {str(mcr).lower()}\n"
        f"registries:\n  - name: contosoacr\n    sku: Standard\n    location: {location}\n"
    )


# ---- Public 20251006 -> 20251013: a week with real changes ----------------------------


def test_public_week_with_changes_every_tag():
    code, doc = diff_json(st(PUB_1006), st(PUB_1013))
    expected = expected_changes(PUB_1006, PUB_1013)
    assert code == 1
    assert_matches(doc, expected)
    # The documented week: AzureContainerRegistry gained 4 prefixes (2 v4, 2 v6), lost none.
    acr = next(c for c in doc["changed"] if c["tag"] == "AzureContainerRegistry")
    assert len(acr["added"]) == 4 and acr["removed"] == []
    assert sorted(ipaddress.ip_network(p).version for p in acr["added"]) == [4, 4, 6, 6]
    assert acr["changeNumber"] == [
        tag_change_number(PUB_1006, "AzureContainerRegistry"),
        tag_change_number(PUB_1013, "AzureContainerRegistry"),
    ]
    assert doc["old"] == {"file": str(st(PUB_1006)), "cloud": "Public", "changeNumber": raw(PUB_1006)["changeNumber"]}
    assert doc["new"]["changeNumber"] == raw(PUB_1013)["changeNumber"]
    all_tags = set(tag_prefixes(PUB_1006)) | set(tag_prefixes(PUB_1013))
    assert doc["compared"] == len(all_tags)
    assert doc["unchanged"] == len(all_tags) - len(expected) - len(doc["renumbered"])


def _changed_storage_regions() -> list[str]:
    """Regions (tag suffix) whose Storage.<Region> prefixes changed and that have an ACR tag too."""
    changed = expected_changes(PUB_1006, PUB_1013)
    acr_regions = {n.split(".", 1)[1] for n in tag_prefixes(PUB_1013) if n.startswith("AzureContainerRegistry.")}
    return sorted(n.split(".", 1)[1] for n in changed if n.startswith("Storage.") and n.split(".", 1)[1] in acr_regions)


def test_public_week_with_changes_spec_in_affected_region(tmp_path):
    regions = _changed_storage_regions()
    assert regions, "the 20251006 -> 20251013 week changed Storage.<Region> tags (PROVENANCE.md)"
    for region in regions:
        spec = write_spec(tmp_path, one_registry(region.lower()), f"{region}.yaml")
        code, doc = diff_json(st(PUB_1006), st(PUB_1013), "--spec", spec)
        needed = {f"AzureContainerRegistry.{region}", f"Storage.{region}"}
        assert code == 1, region
        assert doc["compared"] == 2 and doc["spec"] == str(spec)
        assert_matches(doc, expected_changes(PUB_1006, PUB_1013, needed))
        assert f"Storage.{region}" in {c["tag"] for c in doc["changed"]}


def test_public_week_with_changes_spec_in_unaffected_region(tmp_path):
    changed = expected_changes(PUB_1006, PUB_1013)
    quiet = sorted(
        n.split(".", 1)[1]
        for n in tag_prefixes(PUB_1013)
        if n.startswith("AzureContainerRegistry.")
        and n not in changed
        and f"Storage.{n.split('.', 1)[1]}" not in changed
    )
    assert quiet
    spec = write_spec(tmp_path, one_registry(quiet[0].lower()))
    code, doc = diff_json(st(PUB_1006), st(PUB_1013), "--spec", spec)
    assert (code, doc["changed"], doc["compared"], doc["unchanged"]) == (0, [], 2, 2)
    # The same region with mcr: MicrosoftContainerRegistry changed that week (the global tag is not needed).
    spec = write_spec(tmp_path, one_registry(quiet[0].lower(), mcr=True))
    code, doc = diff_json(st(PUB_1006), st(PUB_1013), "--spec", spec)
    needed = {
        f"AzureContainerRegistry.{quiet[0]}",
        f"Storage.{quiet[0]}",
        "MicrosoftContainerRegistry",
        "AzureFrontDoor.FirstParty",
    }
    assert doc["compared"] == len(needed)
    assert_matches(doc, expected_changes(PUB_1006, PUB_1013, needed))
    assert code == (1 if doc["changed"] else 0)
    assert "AzureContainerRegistry" not in {c["tag"] for c in doc["changed"]}


def test_text_output_lists_the_same_changes_as_json(tmp_path):
    spec = write_spec(tmp_path, one_registry(_changed_storage_regions()[0].lower(), mcr=True))
    _, doc = diff_json(st(PUB_1006), st(PUB_1013), "--spec", spec)
    r = run_cli("tags", "diff", st(PUB_1006), st(PUB_1013), "--spec", spec)
    assert r.code == 1 and r.err == ""
    plus = {ln.strip()[1:] for ln in r.out.splitlines() if ln.startswith("  +")}
    minus = {ln.strip()[1:] for ln in r.out.splitlines() if ln.startswith("  -")}
    assert plus == {p for c in doc["changed"] for p in c["added"]}
    assert minus == {p for c in doc["changed"] for p in c["removed"]}
    for c in doc["changed"]:
        assert f"{c['tag']}: changeNumber {c['changeNumber'][0]} -> {c['changeNumber'][1]}" in r.out
    assert "summary:" in r.out.splitlines()[-1] and "out of date" in r.out


# ---- weeks without relevant changes ---------------------------------------------------


def test_public_identical_but_top_level_change_number(tmp_path):
    assert expected_changes(PUB_1020, PUB_1027) == {}
    assert raw(PUB_1020)["changeNumber"] != raw(PUB_1027)["changeNumber"]
    code, doc = diff_json(st(PUB_1020), st(PUB_1027))
    assert (code, doc["changed"], doc["renumbered"]) == (0, [], [])
    assert doc["unchanged"] == doc["compared"] == len(tag_prefixes(PUB_1027))
    spec = write_spec(tmp_path, one_registry("westeurope", mcr=True))
    code, doc = diff_json(st(PUB_1020), st(PUB_1027), "--spec", spec)
    assert (code, doc["changed"], doc["compared"]) == (0, [], 4)
    r = run_cli("tags", "diff", st(PUB_1020), st(PUB_1027))
    assert r.code == 0
    old_cn, new_cn = raw(PUB_1020)["changeNumber"], raw(PUB_1027)["changeNumber"]
    assert f"only the file's changeNumber differs ({old_cn} -> {new_cn})" in r.out


def test_gov_week_without_changes(tmp_path):
    assert expected_changes(GOV_1013, GOV_1020) == {}
    code, doc = diff_json(st(GOV_1013), st(GOV_1020))
    assert (code, doc["changed"]) == (0, [])
    spec = write_spec(tmp_path, one_registry("usgovvirginia", "AzureUSGovernment", mcr=True))
    code, doc = diff_json(st(GOV_1013), st(GOV_1020), "--spec", spec)
    assert (code, doc["changed"], doc["compared"]) == (0, [], 3)


def test_china_week_changes_only_a_tag_no_registry_needs(tmp_path):
    expected = expected_changes(CN_1013, CN_1020)
    code, doc = diff_json(st(CN_1013), st(CN_1020))
    assert code == 1
    assert_matches(doc, expected)
    assert set(expected) == {"EOPExternalPublishedIPs"}
    added, removed = expected["EOPExternalPublishedIPs"]
    assert (len(added), len(removed)) == (5, 6)
    spec = write_spec(tmp_path, one_registry("chinaeast2", "AzureChinaCloud", mcr=True))
    code, doc = diff_json(st(CN_1013), st(CN_1020), "--spec", spec)
    assert (code, doc["changed"], doc["compared"]) == (0, [], 3)


# ---- synthetic files: tags added, removed, renumbered --------------------------------


def _edited(tmp_path: Path, base: str, name: str, edit) -> Path:
    data = json.loads(json.dumps(raw(base)))
    edit(data)
    p = tmp_path / name
    p.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return p


def _entry(data: dict, tag: str) -> dict:
    return next(v for v in data["values"] if v["name"] == tag)


def test_added_removed_and_renumbered_tags(tmp_path):
    new = _edited(
        tmp_path,
        CN_1020,
        "new.json",
        lambda d: (
            d["values"].remove(_entry(d, "AzureContainerRegistry.ChinaNorth")),
            d["values"].append(
                {
                    "name": "Brand.New",
                    "id": "Brand.New",
                    "properties": {"changeNumber": 1, "addressPrefixes": ["192.0.2.0/24", "2001:db8::/32"]},
                }
            ),
            _entry(d, "Storage.ChinaEast2")["properties"].__setitem__("changeNumber", 99),
        ),
    )
    code, doc = diff_json(st(CN_1020), new)
    assert code == 1
    by_tag = {c["tag"]: c for c in doc["changed"]}
    assert by_tag["Brand.New"] == {
        "tag": "Brand.New",
        "status": "added",
        "changeNumber": [None, 1],
        "added": ["192.0.2.0/24", "2001:db8::/32"],
        "removed": [],
    }
    gone = by_tag["AzureContainerRegistry.ChinaNorth"]
    assert gone["status"] == "removed" and gone["added"] == []
    assert set(gone["removed"]) == tag_prefixes(CN_1020)["AzureContainerRegistry.ChinaNorth"]
    assert set(by_tag) == {"Brand.New", "AzureContainerRegistry.ChinaNorth"}
    old_cn = tag_change_number(CN_1020, "Storage.ChinaEast2")
    assert doc["renumbered"] == [{"tag": "Storage.ChinaEast2", "changeNumber": [old_cn, 99]}]


def test_change_number_only_is_exit_0_but_said(tmp_path):
    new = _edited(
        tmp_path,
        CN_1020,
        "new.json",
        lambda d: _entry(d, "Storage.ChinaEast2")["properties"].__setitem__("changeNumber", 99),
    )
    spec = write_spec(tmp_path, one_registry("chinaeast2", "AzureChinaCloud"))
    r = run_cli("tags", "diff", st(CN_1020), new, "--spec", spec)
    assert r.code == 0, r.err
    assert "changeNumber only (same prefixes)" in r.out and "Storage.ChinaEast2" in r.out
    assert "no prefix changes in 2 tag(s); 1 tag(s) have a new changeNumber only" in r.out


def test_tag_needed_by_spec_but_absent_from_old_counts_as_added(tmp_path):
    old = _edited(tmp_path, CN_1020, "old.json", lambda d: d["values"].remove(_entry(d, "Storage.ChinaNorth3")))
    spec = write_spec(tmp_path, one_registry("chinanorth3", "AzureChinaCloud"))
    code, doc = diff_json(old, st(CN_1020), "--spec", spec)
    assert code == 1
    assert [(c["tag"], c["status"], set(c["added"])) for c in doc["changed"]] == [
        ("Storage.ChinaNorth3", "added", set(tag_prefixes(CN_1020)["Storage.ChinaNorth3"]))
    ]


def test_region_dropped_from_new_is_reported_removed(tmp_path):
    new = _edited(
        tmp_path,
        CN_1020,
        "new.json",
        lambda d: [
            d["values"].remove(_entry(d, t)) for t in ("AzureContainerRegistry.ChinaNorth3", "Storage.ChinaNorth3")
        ],
    )
    spec = write_spec(tmp_path, one_registry("chinanorth3", "AzureChinaCloud"))
    code, doc = diff_json(st(CN_1020), new, "--spec", spec)
    assert code == 1
    assert {(c["tag"], c["status"]) for c in doc["changed"]} == {
        ("AzureContainerRegistry.ChinaNorth3", "removed"),
        ("Storage.ChinaNorth3", "removed"),
    }
    assert doc["missingInNew"] == ["AzureContainerRegistry.ChinaNorth3", "Storage.ChinaNorth3"]
    r = run_cli("tags", "diff", st(CN_1020), new, "--spec", spec)
    assert "rendering with it will fail" in r.out


def test_output_is_deterministic():
    a = run_cli_process("tags", "diff", st(CN_1013), st(CN_1020), "--format", "json", env={"PYTHONHASHSEED": "1"})
    b = run_cli_process("tags", "diff", st(CN_1013), st(CN_1020), "--format", "json", env={"PYTHONHASHSEED": "2"})
    assert a.code == b.code == 1 and a.out == b.out


# ---- errors: exit 2, the file named, no traceback ------------------------------------


def test_different_clouds_is_exit_2(tmp_path):
    r = run_cli_process("tags", "diff", st(CN_1020), st(GOV_1020))
    assert r.code == 2 and "Traceback" not in r.err and r.out == ""
    assert r.err.startswith(f"{st(GOV_1020)}: ") and "'AzureGovernment'" in r.err and "'China'" in r.err


def test_spec_of_another_cloud_is_exit_2(tmp_path):
    spec = write_spec(tmp_path, one_registry("usgovvirginia", "AzureUSGovernment"))
    r = run_cli("tags", "diff", st(CN_1013), st(CN_1020), "--spec", spec)
    assert r.code == 2 and r.out == ""
    assert r.err.startswith(f"{st(CN_1020)}:3:3: ") and "AzureUSGovernment" in r.err  # its "cloud" key


def test_bad_files_are_exit_2_naming_the_file(tmp_path):
    missing = tmp_path / "nope.json"
    truncated = tmp_path / "truncated.json"
    truncated.write_text(st(CN_1020).read_text(encoding="utf-8")[:5000], encoding="utf-8")
    bad_spec = write_spec(
        tmp_path,
        "version: 1\nregistries:\n  - name: contosoacr\n    sku: Standard\n    location: chinaeast2\n    colour: red\n",
    )
    for args, named in (
        ((missing, st(CN_1020)), missing),
        ((st(CN_1013), truncated), truncated),
        ((st(CN_1013), st(CN_1020), "--spec", bad_spec), bad_spec),
    ):
        r = run_cli_process("tags", "diff", *args)
        assert r.code == 2, (args, r.err)
        assert r.err.startswith(f"{named}:") and "Traceback" not in r.err and r.out == ""


# ---- NEW older than OLD: a warning, the exit code unchanged ------------------------------------


def test_swapped_arguments_are_warned_about_and_the_exit_code_stays():
    old, new = st(CN_1020), st(CN_1013)
    assert raw(CN_1020)["changeNumber"] > raw(CN_1013)["changeNumber"]
    warning = (
        f"warning: NEW {new} has changeNumber {raw(CN_1013)['changeNumber']}, lower than OLD {old}'s "
        f"{raw(CN_1020)['changeNumber']}: arguments swapped? (acrrules tags diff OLD NEW)\n"
    )
    for fmt in ("text", "json"):
        r = run_cli("tags", "diff", old, new, "--format", fmt)
        assert r.code == 1 and r.err == warning  # the same changes, seen backwards
        assert r.out == run_cli("tags", "diff", old, new, "--format", fmt).out
    # no prefix changes: still exit 0, still the warning
    r = run_cli("tags", "diff", st(PUB_1027), st(PUB_1020))
    assert r.code == 0 and "arguments swapped?" in r.err
    # in order, or the same file twice: no warning
    for a, b in ((new, old), (old, old)):
        r = run_cli("tags", "diff", a, b)
        assert r.code in (0, 1) and r.err == ""
