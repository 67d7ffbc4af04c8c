"""The Service Tag Discovery shape: what `az network list-service-tags --location L` prints.

Each real Service Tags file is turned here into its Discovery twin (the documented
ServiceTagsListResult: string changeNumbers, ARM `id`/`name`/`type`/`nextLink`,
tags with `state` and `serviceTagChangeNumber` and without `regionId`/`platform`,
keys sorted as az prints them). Rendering the IP targets from either must give the
same prefixes, and `tags diff` between twins must find no prefix change.
"""

from __future__ import annotations

import ipaddress
import json
import re
from pathlib import Path

import pytest
from conftest import latest_servicetags, run_cli, servicetags_files
from hypothesis import given, settings
from hypothesis import strategies as st

from acrrules import servicetags

SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"


def to_discovery(raw: dict) -> dict:
    cloud = raw["cloud"]
    return {
        "changeNumber": str(raw["changeNumber"]),
        "cloud": cloud,
        "id": f"/subscriptions/{SUBSCRIPTION}/providers/Microsoft.Network/serviceTags/{cloud}",
        "name": cloud.lower(),
        "nextLink": None,
        "type": "Microsoft.Network/serviceTags",
        "values": [
            {
                "id": v["id"],
                "name": v["name"],
                "properties": {
                    "addressPrefixes": v["properties"]["addressPrefixes"],
                    "changeNumber": str(v["properties"]["changeNumber"]),
                    "region": v["properties"]["region"],
                    "state": "GA",
                    "systemService": v["properties"]["systemService"],
                },
                "serviceTagChangeNumber": str(raw["changeNumber"]),
            }
            for v in raw["values"]
        ],
    }


def discovery_twin(source: Path, tmp_path: Path, name: str = "az-service-tags.json") -> Path:
    raw = json.loads(source.read_text(encoding="utf-8"))
    path = tmp_path / name
    path.write_text(json.dumps(to_discovery(raw), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


SPECS = {
    "Public": ("AzureCloud", "eastus", "[westeurope, southeastasia]"),
    "AzureGovernment": ("AzureUSGovernment", "usgovvirginia", "[usgovarizona]"),
    "China": ("AzureChinaCloud", "chinanorth2", "[chinaeast2]"),
}


def spec_for(kind: str, tmp_path: Path) -> Path:
    cloud, home, replicas = SPECS[kind]
    p = tmp_path / "spec.yaml"
    p.write_text(
        f"version: 1\ncloud: {cloud}\nmcr: true\nregistries:\n"
        f"  - {{name: contosoacr, sku: Premium, location: {home}, replicas: {replicas}}}\n",
        encoding="utf-8",
    )
    return p


def nft_sets(text: str) -> dict[str, set]:
    out = {}
    for m in re.finditer(r"set (acr_v[46]) \{[^}]*?elements = \{([^}]*)\}", text):
        out[m.group(1)] = {ipaddress.ip_network(e.strip()) for e in m.group(2).split(",") if e.strip()}
    return out


def ipset_sets(text: str) -> dict[str, set]:
    out: dict[str, set] = {}
    for line in text.splitlines():
        parts = line.split()
        if parts[:1] == ["add"]:
            out.setdefault(parts[1], set()).add(ipaddress.ip_network(parts[2]))
    return out


def render_ip(spec: Path, tags: Path, out: Path) -> dict[str, str]:
    r = run_cli("render", spec, "--service-tags", tags, "--target", "nftables", "--target", "iptables", "--out", out)
    assert r.code == 0, r.err
    return {p.name: p.read_text(encoding="utf-8") for p in out.iterdir() if p.name != ".acrrules-manifest"}


@pytest.mark.parametrize("kind", ["Public", "AzureGovernment", "China"])
def test_discovery_twin_renders_the_same_prefixes(kind, tmp_path):
    source = latest_servicetags(kind)
    twin = discovery_twin(source, tmp_path)
    loaded = servicetags.load(str(twin))
    assert loaded.shape == servicetags.DISCOVERY and servicetags.load(str(source)).shape == servicetags.DOWNLOAD
    assert loaded.change_number == json.loads(source.read_text())["changeNumber"]
    spec = spec_for(kind, tmp_path)
    a = render_ip(spec, source, tmp_path / "from-file")
    b = render_ip(spec, twin, tmp_path / "from-discovery")
    assert set(a) == set(b) == {"acrrules.nft", "ipset.rules", "iptables.rules", "ip6tables.rules"}
    nft_a, nft_b = nft_sets(a["acrrules.nft"]), nft_sets(b["acrrules.nft"])
    assert set(nft_a) == {"acr_v4", "acr_v6"} and all(nft_a.values())
    assert nft_a == nft_b
    ips_a, ips_b = ipset_sets(a["ipset.rules"]), ipset_sets(b["ipset.rules"])
    assert ips_a and ips_a == ips_b
    # the nft and ipset outputs agree with each other, too
    assert nft_a["acr_v4"] == ips_a["ACRRULES_v4_tmp"] and nft_a["acr_v6"] == ips_a["ACRRULES_v6_tmp"]
    # the headers name the tags and their changeNumbers, not the file: the outputs are the same bytes
    for name in a:
        assert a[name] == b[name], name


def test_tags_diff_between_a_file_and_its_twin_finds_no_change(tmp_path):
    source = latest_servicetags("Public")
    twin = discovery_twin(source, tmp_path)
    for old, new in ((source, twin), (twin, source)):
        r = run_cli("tags", "diff", old, new, "--format", "json")
        assert r.code == 0 and r.err == "", r.err
        doc = json.loads(r.out)
        assert doc["changed"] == [] and doc["renumbered"] == [] and doc["missingInNew"] == []
        assert doc["unchanged"] == doc["compared"] == len(json.loads(source.read_text())["values"])
    r = run_cli("tags", "diff", source, twin, "--spec", spec_for("Public", tmp_path))
    assert r.code == 0 and "summary: no prefix changes" in r.out


def test_tags_diff_across_shapes_and_weeks_matches_the_download_files(tmp_path):
    """A week's real changes read the same whichever shape each side has."""
    files = servicetags_files("Public")
    old, new = files[-3], files[-2]
    plain = run_cli("tags", "diff", old, new, "--format", "json")
    mixed = run_cli("tags", "diff", discovery_twin(old, tmp_path, "old.json"), new, "--format", "json")
    assert plain.code == mixed.code
    a, b = json.loads(plain.out), json.loads(mixed.out)
    assert a["changed"] == b["changed"] and a["renumbered"] == b["renumbered"]


@pytest.mark.parametrize(
    "edit, words",
    [
        (lambda d: d.update(changeNumber="63.0"), "changeNumber: '63.0' must be a string of digits"),
        (lambda d: d.update(changeNumber=""), "changeNumber: '' must be a string of digits"),
        (lambda d: d.update(changeNumber="1" * 19), "changeNumber: '1111111111111111111' must be a string of digits"),
        (
            lambda d: d.update(cloud="public"),
            "cloud: 'public' is not one of Public, AzureGovernment, China; did you mean 'Public'?",
        ),
        (lambda d: d.pop("values"), "expected a JSON object with 'changeNumber', 'cloud' and 'values'"),
        (
            lambda d: d["values"][0]["properties"].update(changeNumber=5),
            "properties.changeNumber: expected a string, got an integer (5)",
        ),
        (
            lambda d: d["values"][0]["properties"].update(addressPrefixes="192.0.2.0/24"),
            "properties.addressPrefixes: expected an array, got a string",
        ),
    ],
)
def test_bad_discovery_input_is_a_located_exit_2(tmp_path, edit, words):
    good = Path(__file__).parent / "badinput" / "servicetags" / "good.json"
    data = to_discovery(json.loads(good.read_text()))
    edit(data)
    path = tmp_path / "az.json"
    path.write_text(json.dumps(data, indent=2, sort_keys=True), encoding="utf-8")
    out = tmp_path / "out"
    r = run_cli(
        "render", Path(__file__).parent / "badinput" / "servicetags" / "spec.yaml", "--service-tags", path, "--out", out
    )
    assert r.code == 2 and r.out == "" and "Traceback" not in r.err
    assert len(r.err.splitlines()) == 1 and words in r.err, r.err
    assert re.match(rf"{re.escape(str(path))}:\d+:\d+: ", r.err), r.err
    assert not out.exists()


def _discovery_entries():
    value = st.one_of(
        st.none(), st.booleans(), st.integers(-2, 5), st.text(max_size=3), st.lists(st.text(max_size=3), max_size=2)
    )
    props = st.fixed_dictionaries(
        {
            "changeNumber": st.one_of(st.sampled_from(["0", "7", "007", "", "7a", "1" * 19, " 7"]), value),
            "addressPrefixes": st.one_of(
                st.lists(st.one_of(st.sampled_from(["10.0.0.0/8", ""]), value), max_size=3), value
            ),
        },
        optional={
            "region": value,
            "state": value,
            "systemService": value,
            "regionId": value,
            "networkFeatures": st.one_of(st.none(), st.lists(st.one_of(st.text(max_size=3), value), max_size=2), value),
        },
    )
    return st.fixed_dictionaries(
        {"name": st.one_of(st.text(max_size=3), value), "properties": st.one_of(props, value)},
        optional={"id": value, "serviceTagChangeNumber": value},
    )


@settings(max_examples=300, deadline=None)
@given(_discovery_entries())
def test_discovery_fast_check_never_accepts_what_the_schema_rejects(entry):
    if servicetags._plainly_valid(entry, discovery=True):
        assert servicetags._tag_validator(discovery=True).is_valid(entry), entry
