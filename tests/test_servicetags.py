"""Loading the real Service Tags files, and the errors a bad or unfitting file gives.

Expected values come from the raw JSON read here with the json module alone.
"""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import pytest
from conftest import (
    SERVICETAGS,
    latest_servicetags,
    run_cli,
    run_cli_process,
    servicetags_files,
    servicetags_name,
)

from acrrules import catalog, servicetags
from acrrules.errors import InputError
from acrrules.plan import tag_regions

USED_GLOBAL_TAGS = (catalog.TAG_MCR, catalog.TAG_AFD_FIRST_PARTY)


def _raw(path: Path) -> dict:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def _files():
    # Parametrising needs the list at collection time; servicetags_files() skips/fails when absent.
    return sorted(SERVICETAGS.glob("ServiceTags_*_*.json")) or [pytest.param(None, marks=pytest.mark.skip)]


@pytest.fixture(scope="module", params=_files(), ids=lambda p: getattr(p, "name", "none"))
def real(request):
    path = request.param
    servicetags_files()  # skip (or fail under ACRRULES_REQUIRE_TOOLS=1) when ../shared is missing
    return path, servicetags.load(str(path)), _raw(path)


def test_there_are_real_files_of_every_cloud():
    for kind in ("Public", "AzureGovernment", "China"):
        assert servicetags_files(kind)


def test_every_real_file_loads(real):
    path, tags, raw = real
    assert tags.cloud == raw["cloud"]
    assert tags.change_number == raw["changeNumber"]
    assert list(tags.entries) == [v["name"] for v in raw["values"]]
    assert tags.path == str(path) and tags.file_name == path.name
    assert raw["cloud"] in {c.servicetags_cloud for c in catalog.CLOUDS.values()}


def test_every_tag_acrrules_uses_parses_to_the_files_prefixes(real):
    path, tags, raw = real
    used = [
        v
        for v in raw["values"]
        if v["name"].split(".")[0] in (catalog.TAG_ACR, catalog.TAG_STORAGE) or v["name"] in USED_GLOBAL_TAGS
    ]
    assert len(used) > 10
    for v in used:
        tag = tags.tag(v["name"])
        nets = [ipaddress.ip_network(p) for p in v["properties"]["addressPrefixes"]]
        assert tag.v4 == tuple(n for n in nets if n.version == 4), v["name"]
        assert tag.v6 == tuple(n for n in nets if n.version == 6), v["name"]
        assert tag.change_number == v["properties"]["changeNumber"]


def test_regions_are_the_acr_tag_suffixes(real):
    _, tags, raw = real
    suffixes = {v["name"].split(".", 1)[1] for v in raw["values"] if v["name"].startswith(catalog.TAG_ACR + ".")}
    cloud = next(c for c in catalog.CLOUDS.values() if c.servicetags_cloud == tags.cloud)
    assert tag_regions(tags, catalog.TAG_ACR, cloud) == {s.lower(): s for s in suffixes}
    assert set(tag_regions(tags, catalog.TAG_STORAGE, cloud).values()) >= suffixes


# ---- the CLI: a file that does not fit the description ---------------------------------


def _spec(tmp_path: Path, cloud: str, location: str, mcr: bool = False, name: str = "spec.yaml") -> Path:
    p = tmp_path / name
    p.write_text(
        f"version: 1\ncloud: {cloud}\nmcr: {str(mcr).lower()}\nregistries:\n"
        f"  - name: contosoacr\n    sku: Standard\n    location: {location}\n",
        encoding="utf-8",
    )
    return p


def test_cloud_mismatch_is_exit_2_naming_the_file(tmp_path):
    public = latest_servicetags("Public")
    spec = _spec(tmp_path, "AzureUSGovernment", "usgovvirginia")
    out = tmp_path / "out"
    r = run_cli_process("render", spec, "--service-tags", public, "--out", out)
    assert r.code == 2, r.err
    assert "Traceback" not in r.err and r.out == ""
    assert r.err.startswith(f"{public}:3:3: ")  # the file's "cloud" key
    assert "'Public'" in r.err and "AzureUSGovernment" in r.err and "ServiceTags_AzureGovernment_" in r.err
    assert not out.exists()


def _without(tmp_path: Path, source: Path, drop: set[str]) -> Path:
    data = _raw(source)
    data["values"] = [v for v in data["values"] if v["name"] not in drop]
    p = tmp_path / source.name  # the same name, elsewhere: the message must name this path
    p.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return p


@pytest.mark.parametrize(
    "dropped, location, mcr",
    [
        ("AzureContainerRegistry.USGovIowa", "usgoviowa", False),
        ("Storage.USGovIowa", "usgoviowa", False),
        ("MicrosoftContainerRegistry", "usgovvirginia", True),
    ],
)
def test_a_tag_the_file_lacks_is_exit_2_naming_the_tag(tmp_path, dropped, location, mcr):
    gov = latest_servicetags("AzureGovernment")
    assert dropped in {v["name"] for v in _raw(gov)["values"]}
    partial = _without(tmp_path, gov, {dropped})
    spec = _spec(tmp_path, "AzureUSGovernment", location, mcr)
    out = tmp_path / "out"
    r = run_cli("render", spec, "--service-tags", partial, "--out", out)
    assert r.code == 2 and r.out == ""
    assert r.err.startswith(f"{partial}: ") and len(r.err.splitlines()) == 1
    family, _, region = dropped.partition(".")
    assert family in r.err and (region.lower() in r.err if region else f"'{dropped}'" in r.err)
    assert not out.exists()
    # The complete file renders the same description.
    assert run_cli("render", spec, "--service-tags", gov, "--out", out).code == 0


# ---- malformed files ---------------------------------------------------------------------


def _mutated(tmp_path: Path, edit) -> Path:
    data = _raw(latest_servicetags("China"))
    edit(data)
    p = tmp_path / "ServiceTags_China_bad.json"
    p.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return p


def _acr_entry(data: dict) -> dict:
    return next(v for v in data["values"] if v["name"] == "AzureContainerRegistry.ChinaEast2")


@pytest.mark.parametrize(
    "edit, words",
    [
        (lambda d: _acr_entry(d)["properties"]["addressPrefixes"].append("10.0.0.1/8"), "invalid address prefix"),
        (lambda d: _acr_entry(d)["properties"]["addressPrefixes"].append("not-an-ip"), "invalid address prefix"),
        (lambda d: _acr_entry(d)["properties"].__setitem__("addressPrefixes", []), "malformed"),
        (lambda d: _acr_entry(d)["properties"].__setitem__("changeNumber", "7"), "malformed"),
        (lambda d: d.__setitem__("cloud", "Mars"), "not a valid Service Tags file"),
        (lambda d: d["values"].append(_acr_entry(d)), "appears twice"),
    ],
)
def test_malformed_file_is_an_input_error_naming_the_file(tmp_path, edit, words):
    bad = _mutated(tmp_path, edit)
    with pytest.raises(InputError) as ei:
        tags = servicetags.load(str(bad))
        tags.tag("AzureContainerRegistry.ChinaEast2")
    lines = ei.value.lines()
    assert len(lines) == 1 and lines[0].startswith(f"{bad}:") and words in lines[0]


def test_bad_prefix_is_located_at_its_line(tmp_path):
    bad = _mutated(tmp_path, lambda d: _acr_entry(d)["properties"]["addressPrefixes"].append("192.0.2.1/24"))
    text = bad.read_text(encoding="utf-8")
    line = text[: text.index('"192.0.2.1/24"')].count("\n") + 1
    spec = _spec(tmp_path, "AzureChinaCloud", "chinaeast2")
    r = run_cli("render", spec, "--service-tags", bad, "--out", tmp_path / "out")
    assert r.code == 2
    assert r.err.startswith(f"{bad}:{line}:") and "192.0.2.1/24" in r.err


@pytest.mark.parametrize(
    "content, words",
    [
        ("", "empty"),
        ('{"changeNumber": 1, "cloud": "China", "values": [', "truncated"),
        ("[1, 2]", "not a Service Tags file"),
        ("\xff\xfe", "not valid UTF-8"),
    ],
)
def test_unreadable_file_is_exit_2(tmp_path, content, words):
    bad = tmp_path / "tags.json"
    bad.write_bytes(content.encode("latin-1"))
    spec = _spec(tmp_path, "AzureChinaCloud", "chinaeast2")
    r = run_cli("render", spec, "--service-tags", bad, "--out", tmp_path / "out")
    assert r.code == 2 and r.err.startswith(f"{bad}:") and words in r.err, r.err
    assert not (tmp_path / "out").exists()


def test_a_newer_file_makes_a_region_valid_that_the_catalog_does_not_know_yet(tmp_path):
    """Tag names come from the file when one is given: a region launched after the catalog was written works
    with --service-tags, and without it the location is still an error (never guessed)."""
    good = Path(__file__).resolve().parent / "badinput" / "servicetags" / "good.json"
    data = json.loads(good.read_text(encoding="utf-8"))
    for family, prefix in (("AzureContainerRegistry", "192.0.2.0/25"), ("Storage", "192.0.2.128/25")):
        data["values"].append(
            {
                "name": f"{family}.NewlandCentral",
                "id": f"{family}.NewlandCentral",
                "properties": {
                    "changeNumber": 1,
                    "region": "newlandcentral",
                    "regionId": 999,
                    "platform": "Azure",
                    "systemService": family,
                    "addressPrefixes": [prefix],
                    "networkFeatures": None,
                },
            }
        )
    tags = tmp_path / servicetags_name()
    tags.write_text(json.dumps(data), encoding="utf-8")
    spec = tmp_path / "spec.yaml"
    spec.write_text("version: 1\nregistries:\n  - {name: newland01, sku: Standard, location: newlandcentral}\n")
    out = tmp_path / "out"
    r = run_cli(
        "render", spec, "--service-tags", tags, "--target", "azure-firewall", "--target", "nftables", "--out", out
    )
    assert r.code == 0, r.err
    assert "newland01.azurecr.io" in (out / "azure-firewall.tf").read_text()
    assert "192.0.2.0/24" in (out / "acrrules.nft").read_text()  # both tags' halves, merged
    # NSG rules take a fixed priority slot per catalog region: a region newer than the catalog has none yet.
    nsg = run_cli("render", spec, "--service-tags", tags, "--target", "nsg-arm", "--out", tmp_path / "nsg")
    assert nsg.code == 2 and nsg.err.startswith(
        f"{spec}:3:48: nsg-arm: location 'newlandcentral' is newer than this version of acrrules"
    ), nsg.err
    assert not (tmp_path / "nsg").exists()
    plain = run_cli("render", spec, "--target", "nsg-arm", "--out", tmp_path / "plain")
    assert plain.code == 2 and f"{spec}:3:" in plain.err and "unknown AzureCloud location 'newlandcentral'" in plain.err
