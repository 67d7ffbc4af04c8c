"""Checks across descriptions (spec §8): `acrrules validate A B ...` refuses two descriptions that
would collide where their rules meet, naming both places; descriptions that do not collide load
side by side into one host, twice."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import netns
import pytest
from conftest import latest_servicetags, need_root_netns, need_tool, run_cli

import acrrules
from acrrules import clashes, pipeline


def spec(name: str, *, registry: str, outputs: str, targets: str = "", cloud: str = "") -> str:
    return (
        "version: 1\n"
        f"name: {name}\n"
        + (f"cloud: {cloud}\n" if cloud else "")
        + f"registries:\n  - {{name: {registry}, sku: Premium, location: eastus}}\n"
        f"outputs: [{outputs}]\n" + (f"targets:\n{targets}" if targets else "")
    )


def at(path: Path, needle: str) -> str:
    """`path:LINE:COL` of the value that follows `needle` (the first line holding it)."""
    for n, line in enumerate(path.read_text().splitlines(), 1):
        i = line.find(needle)
        if i >= 0:
            return f"{path}:{n}:{i + len(needle) + 1}"
    raise AssertionError(f"{needle!r} not in {path}")


# (kind, A, B, needle locating A's value, needle locating B's value, words the message must have)
CLASHES = [
    (
        "name",
        spec("prod", registry="contosoa", outputs="lists"),
        spec("prod", registry="contosob", outputs="lists"),
        "name: ",
        "name: ",
        "is also the name of",
    ),
    (
        "nsg-block-same-nsg",
        spec(
            "prod",
            registry="contosoa",
            outputs="nsg-tf",
            targets="  nsg-tf: {priority: 400, resource_group_name: rg-net, network_security_group_name: nsg-agents}\n",
        ),
        spec(
            "batch",
            registry="contosob",
            outputs="nsg-arm",
            targets="  nsg-arm: {priority: 430, resource_group_name: rg-net, network_security_group_name: nsg-agents}\n",
        ),
        "priority: ",
        "priority: ",
        "430-685 overlaps the block 400-655 of nsg-tf",
    ),
    (
        "nsg-block-unknown-nsg",
        spec("prod", registry="contosoa", outputs="nsg-arm", targets="  nsg-arm: {priority: 100}\n"),
        spec(
            "batch",
            registry="contosob",
            outputs="nsg-tf",
            targets="  nsg-tf: {priority: 355, network_security_group_name: nsg-agents}\n",
        ),
        "priority: ",
        "priority: ",
        "may be one",
    ),
    (
        "nsg-rule-names",
        spec(
            "prod",
            registry="contosoa",
            outputs="nsg-arm",
            targets="  nsg-arm: {priority: 100, name: agents}\n",
        ),
        spec(
            "batch",
            registry="contosob",
            outputs="nsg-arm",
            targets="  nsg-arm: {priority: 1000, name: agents}\n",
        ),
        "{priority: 100, name: ",
        "{priority: 1000, name: ",
        "rule names agents-<service tag>",
    ),
    (
        "firewall-group-name",
        spec(
            "prod",
            registry="contosoa",
            outputs="azure-firewall",
            targets="  azure-firewall: {rule_collection_group: acr, priority: 500}\n",
        ),
        spec(
            "batch",
            registry="contosob",
            outputs="azure-firewall",
            targets="  azure-firewall: {rule_collection_group: acr, priority: 600}\n",
        ),
        "rule_collection_group: ",
        "rule_collection_group: ",
        "rule collection group 'acr'",
    ),
    (
        "firewall-priority",
        spec("prod", registry="contosoa", outputs="azure-firewall", targets="  azure-firewall: {priority: 700}\n"),
        spec("batch", registry="contosob", outputs="azure-firewall", targets="  azure-firewall: {priority: 700}\n"),
        "priority: ",
        "priority: ",
        "priority 700 is also used by",
    ),
    (
        # `name: a-b` derives the table a_b (nft takes no '-'), which the other names
        "nft-table",
        spec("a-b", registry="contosoa", outputs="nftables"),
        spec("batch", registry="contosob", outputs="nftables", targets="  nftables: {table: a_b}\n"),
        "name: ",
        "table: ",
        "nft table inet a_b",
    ),
    (
        "iptables-chain",
        spec("prod", registry="contosoa", outputs="iptables", targets="  iptables: {chain: EGRESS}\n"),
        spec("batch", registry="contosob", outputs="iptables", targets="  iptables: {chain: EGRESS}\n"),
        "chain: ",
        "chain: ",
        "iptables chain EGRESS and its ipsets EGRESS_v4, EGRESS_v6",
    ),
    (
        "squid-acl",  # squid compares ACL names ignoring case
        spec("prod", registry="contosoa", outputs="squid", targets="  squid: {acl_prefix: Acr}\n"),
        spec("batch", registry="contosob", outputs="squid", targets="  squid: {acl_prefix: acr}\n"),
        "acl_prefix: ",
        "acl_prefix: ",
        "squid ACLs acr_dst",
    ),
    (
        "calico-policy",
        spec("prod", registry="contosoa", outputs="calico", targets="  calico: {name: egress}\n"),
        spec("batch", registry="contosob", outputs="calico", targets="  calico: {name: egress}\n"),
        "calico: {name: ",
        "calico: {name: ",
        "GlobalNetworkPolicy 'egress'",
    ),
    (
        "cilium-policy",
        spec("prod", registry="contosoa", outputs="cilium", targets="  cilium: {name: egress, namespace: ci}\n"),
        spec("batch", registry="contosob", outputs="cilium", targets="  cilium: {name: egress, namespace: ci}\n"),
        "cilium: {name: ",
        "cilium: {name: ",
        "CiliumNetworkPolicy 'egress' in namespace 'ci'",
    ),
]


@pytest.mark.parametrize(("kind", "a", "b", "where_a", "where_b", "words"), CLASHES, ids=[c[0] for c in CLASHES])
def test_each_kind_of_clash_names_both_places(tmp_path, kind, a, b, where_a, where_b, words):
    pa, pb = tmp_path / "a.acr.yaml", tmp_path / "b.acr.yaml"
    pa.write_text(a)
    pb.write_text(b)
    for p in (pa, pb):  # each is valid on its own
        assert run_cli("validate", p).code == 0
    r = run_cli("validate", pa, pb)
    assert r.code == 2, r.err
    lines = r.err.splitlines()
    assert len(lines) == 1, lines  # one clash, one message
    b_at, a_at = at(pb, where_b), at(pa, where_a)
    assert lines[0].startswith(f"{b_at}: "), (lines[0], b_at)
    assert f" {a_at}" in lines[0], (lines[0], a_at)
    assert words in lines[0]
    assert "Traceback" not in r.err


def test_blocks_on_named_different_nsgs_or_in_different_clouds_do_not_clash(tmp_path):
    tf = "  nsg-tf: {{priority: 100, resource_group_name: rg-net, network_security_group_name: {}}}\n"
    a = tmp_path / "a.acr.yaml"
    a.write_text(spec("prod", registry="contosoa", outputs="nsg-tf", targets=tf.format("nsg-a")))
    b = tmp_path / "b.acr.yaml"
    b.write_text(spec("batch", registry="contosob", outputs="nsg-tf", targets=tf.format("nsg-b")))
    gov = tmp_path / "gov.acr.yaml"  # an NSG lives in one cloud: same block, other cloud, no clash
    gov.write_text(
        spec("gov", registry="contosog", outputs="nsg-arm, azure-firewall", cloud="AzureUSGovernment").replace(
            "eastus", "usgovvirginia"
        )
    )
    c = tmp_path / "c.acr.yaml"
    c.write_text(
        spec(
            "third",
            registry="contosoc",
            outputs="nsg-arm, azure-firewall",
            targets="  nsg-arm: {priority: 1000}\n  azure-firewall: {priority: 900}\n",
        )
    )
    r = run_cli("validate", a, b, gov, c)
    assert r.code == 0, r.err
    # The same file given twice is one description, not two that clash
    assert run_cli("validate", a, a).code == 0
    assert run_cli("validate", a, f"{tmp_path}/./{a.name}").code == 0
    # and a third one on nsg-a, undeclared rg, with the same block does clash with a only
    d = tmp_path / "d.acr.yaml"
    d.write_text(
        spec(
            "fourth",
            registry="contosod",
            outputs="nsg-tf",
            targets="  nsg-tf: {priority: 200, network_security_group_name: nsg-a}\n",
        )
    )
    r = run_cli("validate", a, b, d)
    assert r.code == 2 and len(r.err.splitlines()) == 1 and str(a) in r.err and str(b) not in r.err, r.err


def test_objects_of_other_names_or_namespaces_do_not_clash(tmp_path):
    everything = "azure-firewall, nsg-arm, nsg-tf, nftables, iptables, squid, lists, cilium, calico"
    a = tmp_path / "a.acr.yaml"
    a.write_text(spec("prod", registry="contosoa", outputs=everything))
    b = tmp_path / "b.acr.yaml"
    b.write_text(
        spec(
            "batch",
            registry="contosob",
            outputs=everything,
            targets="  nsg-arm: {priority: 400}\n  nsg-tf: {priority: 400}\n  azure-firewall: {priority: 600}\n",
        )
    )
    c = tmp_path / "c.acr.yaml"  # one policy name, in another namespace: two objects
    c.write_text(
        spec(
            "third",
            registry="contosoc",
            outputs="cilium",
            targets="  cilium: {name: prod, namespace: ci}\n",
        )
    )
    r = run_cli("validate", a, b, c)
    assert r.code == 0, r.err


def test_check_is_the_api_the_project_calls(tmp_path):
    """clashes.check takes loaded descriptions (with positions, or without: the API) and returns
    located diagnostics; a description built in Python is named by its source_name."""
    pa, pb = tmp_path / "a.acr.yaml", tmp_path / "b.acr.yaml"
    pa.write_text(spec("prod", registry="contosoa", outputs="nftables"))
    pb.write_text(spec("prod", registry="contosob", outputs="nftables"))
    loaded = [pipeline.load_description(str(p)) for p in (pa, pb)]
    (d,) = clashes.check(loaded)
    assert isinstance(d, acrrules.Diagnostic) and (d.file, d.line, d.column) == (str(pb), 2, 7)
    bare = [pipeline.Loaded(None, x.description) for x in loaded]
    (d,) = clashes.check(bare)
    assert (d.file, d.line) == (str(pb), None) and str(pa) in d.message
    assert clashes.check(loaded, ["lists"]) != []  # the name clashes whatever the targets
    assert clashes.check(loaded[:1]) == []


# ---- descriptions that do not clash load together into one host ------------------------------------

THREE = {
    "prod": spec(
        "prod",
        registry="contosoprod",
        outputs="nsg-arm, nftables, iptables, squid",
        targets="  nsg-arm: {priority: 100}\n",
    ),
    "batch": spec(
        "batch",
        registry="contosobatch",
        outputs="nsg-arm, nftables, iptables, squid",
        targets="  nsg-arm: {priority: 400}\n  nftables: {table: acr_batch}\n",
    ).replace("eastus", "westeurope"),
    "ci-runners": spec(
        "ci-runners",
        registry="contosoci",
        outputs="nsg-arm, nftables, iptables, squid",
        targets="  nsg-arm: {priority: 700}\n  iptables: {chain: CI}\n",
    ).replace("eastus", "northeurope"),
}


def test_three_descriptions_that_do_not_clash_load_into_one_host_twice(tmp_path):
    need_root_netns()
    need_tool("nft", "ipset", "iptables-restore", "ip6tables-restore")
    tags = latest_servicetags("Public")
    specs = []
    for name, text in THREE.items():
        (tmp_path / f"{name}.acr.yaml").write_text(text)
        specs.append(tmp_path / f"{name}.acr.yaml")
    r = run_cli("validate", *specs)
    assert r.code == 0, r.err
    dirs = []
    for s in specs:
        out = tmp_path / "rules" / s.name.split(".")[0]
        r = run_cli("render", s, "--service-tags", tags, "--out", out)
        assert r.code == 0, r.err
        dirs.append(out)
    script = (
        'set -e; for round in 1 2; do for d in "$@"; do nft -f "$d/acrrules.nft"; '
        'ipset restore -f "$d/ipset.rules"; iptables-restore --noflush "$d/iptables.rules"; '
        'ip6tables-restore --noflush "$d/ip6tables.rules"; done; done; '
        "nft -j list ruleset; echo ===; ipset save; echo ===; iptables-save -t filter"
    )
    p = subprocess.run(
        ["unshare", "-n", "sh", "-c", script, "sh", *map(str, dirs)], capture_output=True, text=True, timeout=120
    )
    assert p.returncode == 0, p.stderr
    nft_json, ipset_save, ipt = p.stdout.split("===\n")
    objects = netns.nft_objects(nft_json)
    tables = {(o["table"]["family"], o["table"]["name"]) for o in objects if "table" in o}
    assert {("inet", "prod"), ("inet", "acr_batch"), ("inet", "ci_runners")} <= tables
    sets = netns.ipset_sets(ipset_save)
    assert {"PROD_v4", "PROD_v6", "BATCH_v4", "BATCH_v6", "CI_v4", "CI_v6"} <= sets.keys()
    for chain in ("PROD", "BATCH", "CI"):
        assert re.search(rf"^:{chain} - ", ipt, re.M), ipt
    # each table still holds exactly its own description's prefixes after the others were loaded (twice)
    kernel = netns.nft_sets(objects)
    for d, table in zip(dirs, ("prod", "acr_batch", "ci_runners"), strict=True):
        written = netns.networks(re.findall(r"\b\d+\.\d+\.\d+\.\d+/\d+\b", (d / "acrrules.nft").read_text()))
        assert written and kernel[("inet", table, "acr_v4")] == written, table
