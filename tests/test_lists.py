"""The lists target: plain lists for firewalls that read external lists by URL.

edl-fqdn.txt holds exactly the endpoint FQDNs (`acrrules endpoints`), and needs no Service Tags
file; edl-ipv4.txt and edl-ipv6.txt hold exactly the prefixes of the nftables sets (and ipsets) for
the same inputs, parsed from both files, and are written only with --service-tags.  Every line is one
entry of the type the consumer expects (PAN-OS, FortiGate): no header, no comment, no blank line.
"""

from __future__ import annotations

import ipaddress
import json
import re

import pytest
import yaml
from conftest import CLOUD_FILE_KIND, latest_servicetags, run_cli, sample_specs
from consumers import ipset_elements, nft_elements, plain_lines
from regen_golden import servicetags_for

FQDN, V4, V6 = "edl-fqdn.txt", "edl-ipv4.txt", "edl-ipv6.txt"
SKIPPED = (
    "skipped lists (edl-ipv4.txt, edl-ipv6.txt): they need IP prefixes: add --service-tags "
    "ServiceTags_<Cloud>_<date>.json"
)
# One domain entry: a host name, or `*.` then one (PAN-OS: the wildcard only as a leading token of its own).
DOMAIN_LINE = re.compile(r"(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")


lines = plain_lines  # ASCII, newline-terminated, no blank or comment line


@pytest.mark.parametrize("spec", sample_specs(), ids=lambda p: p.stem)
def test_fqdn_list_without_service_tags(spec, tmp_path):
    """Without --service-tags: edl-fqdn.txt alone, the endpoints' FQDNs, and stderr names the files left out."""
    out = tmp_path / "out"
    r = run_cli("render", spec, "--target", "lists", "--out", out)
    assert r.code == 0 and r.err.splitlines() == [f"wrote {out / FQDN}", SKIPPED], r.err
    assert sorted(p.name for p in out.iterdir() if p.name != ".acrrules-manifest") == [FQDN]
    endpoints = json.loads(run_cli("endpoints", spec, "--format", "json").out)
    fqdns = lines(out / FQDN)
    assert fqdns == sorted({e["fqdn"] for e in endpoints})
    for fqdn in fqdns:
        assert DOMAIN_LINE.fullmatch(fqdn) and len(fqdn) <= 255, fqdn  # PAN-OS: 255 characters per entry


@pytest.mark.parametrize("spec", sample_specs(), ids=lambda p: p.stem)
def test_prefix_lists_equal_the_nftables_sets_and_the_ipsets(spec, tmp_path):
    tags = servicetags_for(spec) or latest_servicetags(
        CLOUD_FILE_KIND[yaml.safe_load(spec.read_text(encoding="utf-8")).get("cloud", "AzureCloud")]
    )
    out = tmp_path / "out"
    r = run_cli(
        "render",
        spec,
        "--target",
        "lists",
        "--target",
        "nftables",
        "--target",
        "iptables",
        "--service-tags",
        tags,
        "--out",
        out,
    )
    assert r.code == 0, r.err
    assert "skipped" not in r.err
    nft = nft_elements((out / "acrrules.nft").read_text(encoding="utf-8"))
    ipset = ipset_elements((out / "ipset.rules").read_text(encoding="utf-8"))
    for version, name in ((4, V4), (6, V6)):
        entries = lines(out / name)
        nets = [ipaddress.ip_network(e, strict=True) for e in entries]
        assert [str(n) for n in nets] == entries, "canonical CIDRs"
        assert all(n.version == version for n in nets)
        assert nets == nft[version] == ipset[version], name  # the same prefixes, in the same order
        assert nets == sorted(nets), name
        assert list(ipaddress.collapse_addresses(nets)) == nets, "merged: the fewest CIDRs"
    assert nft[4], "a sample without IPv4 prefixes proves nothing"
    # the lists name no Service Tags file (no header at all); the FQDN list does not change with one
    assert all(tags.name not in (out / n).read_text() for n in (FQDN, V4, V6))
    bare = tmp_path / "bare"
    assert run_cli("render", spec, "--target", "lists", "--out", bare).code == 0
    assert (bare / FQDN).read_bytes() == (out / FQDN).read_bytes()


def test_an_old_service_tags_file_warns_for_the_prefix_lists(tmp_path):
    """The prefix lists come from the Service Tags file: its age is checked as for the IP targets."""
    spec = sample_specs()[0]
    tags = latest_servicetags("Public")
    r = run_cli("render", spec, "--target", "lists", "--service-tags", tags, "--out", tmp_path / "out")
    assert r.code == 0 and f"{tags}: warning: this Service Tags file is" in r.err, r.err
    r = run_cli(
        "render", spec, "--target", "lists", "--service-tags", tags, "--max-age", "7", "--out", tmp_path / "other"
    )
    assert r.code == 2 and not (tmp_path / "other").exists(), r.err


def test_the_lists_take_only_known_settings(tmp_path):
    spec = tmp_path / "acr.yaml"
    spec.write_text(
        "version: 1\nregistries:\n  - {name: contosoacr, sku: Basic, location: eastus}\n"
        "targets:\n  lists: {header: true}\n",
        encoding="utf-8",
    )
    r = run_cli("validate", spec)
    assert r.code == 2 and r.err.startswith(f"{spec}:5:11: unknown key 'header' in targets.lists"), r.err
    assert len(r.err.splitlines()) == 1 and "trailing_slash" in r.err, r.err
    spec.write_text(
        "version: 1\nregistries:\n  - {name: contosoacr, sku: Basic, location: eastus}\n"
        "targets:\n  lists: {}\noutputs: [lists]\n",
        encoding="utf-8",
    )
    assert run_cli("validate", spec).code == 0


def _fqdn_list(tmp_path, settings: str) -> list[str]:
    spec = tmp_path / "acr.yaml"
    spec.write_text(
        "version: 1\nregistries:\n  - {name: contosoacr, sku: Premium, location: eastus, data_endpoints: both}\n"
        f"mcr: true\ntargets:\n  lists: {settings}\n",
        encoding="utf-8",
    )
    out = tmp_path / settings.strip("{}").replace(" ", "").replace(":", "-")
    r = run_cli("render", spec, "--target", "lists", "--out", out)
    assert r.code == 0, r.err
    return lines(out / FQDN)


def test_trailing_slash_writes_the_pan_os_url_list_end_token(tmp_path):
    """PAN-OS 10.1 and earlier, without append-end-token, read a URL List entry `azurecr.io` as a prefix that
    `azurecr.io.attacker.example` also has; `name/` ends the host name there (README, lists). Opt-in: the other
    consumers of edl-fqdn.txt (FortiGate, pfSense) take no '/'."""
    plain = _fqdn_list(tmp_path, "{}")
    assert plain == _fqdn_list(tmp_path, "{trailing_slash: false}")
    slashed = _fqdn_list(tmp_path, "{trailing_slash: true}")
    assert slashed == [f"{name}/" for name in plain]
    for entry in slashed:
        assert DOMAIN_LINE.fullmatch(entry[:-1]) and len(entry) <= 255, entry
    assert "azurecr.io/" in slashed  # the bare name, the one the attacker's suffix would extend
