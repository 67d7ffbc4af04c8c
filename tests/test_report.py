"""`acrrules report` (spec §5): the pull-request summary of a weekly run.

The Markdown is read back with markdown-it-py, a real CommonMark parser with GFM
tables, and every number in its tables is checked against a source that does
not go through the report: per-tag counts recomputed from the raw Service Tags
JSON with ipaddress.collapse_addresses, NSG rules from the rendered nsg.json and
nsg.tf, endpoints from `acrrules endpoints --format json`, changes from
`acrrules tags diff --format json`.
"""

from __future__ import annotations

import ipaddress
import json
import re
import shutil
import unicodedata
from functools import cache
from pathlib import Path

import consumers
import hcl2
import pytest
from conftest import REPO, SERVICETAGS, latest_servicetags, need_shared, run_cli, run_cli_process, sample_specs
from hypothesis import example, given
from hypothesis import strategies as st
from markdown_it import MarkdownIt
from regen_golden import EXAMPLE_REPORT, report_example, sample_cloud

from acrrules.escape import md_code, md_text, mermaid_label

CLOUD_KIND = {"AzureCloud": "Public", "AzureUSGovernment": "AzureGovernment", "AzureChinaCloud": "China"}
SAMPLE = REPO / "samples" / "geo-replicated-premium.yaml"
PUB_1006, PUB_1013 = "ServiceTags_Public_20251006.json", "ServiceTags_Public_20251013.json"
TODAY = {"ACRRULES_TODAY": "2025-10-14"}  # the 2025 files are not stale on this day
MD = MarkdownIt("commonmark").enable(["table", "strikethrough"])  # GFM tables and ~~strikethrough~~


def week(name: str) -> Path:
    need_shared()
    path = SERVICETAGS / name
    if not path.is_file():
        pytest.skip(f"{path} is not present")
    return path


# ---- reading the Markdown back ----------------------------------------------------------------


def inline_text(token) -> str:
    """The text a reader sees in an inline token: text and code spans, emphasis markers dropped."""
    out = []
    for child in token.children or ():
        if child.type in ("text", "code_inline"):
            out.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            out.append(" ")
    return "".join(out)


class Doc:
    """The headings, tables and fenced blocks of a Markdown document, as markdown-it parses it."""

    def __init__(self, text: str):
        self.text = text
        self.headings: list[tuple[int, str]] = []
        self.tables: list[tuple[str, list[str], list[list[str]]]] = []  # (section heading, header, rows)
        self.fences: list[tuple[str, str]] = []
        tokens = MD.parse(text)
        heading, row, header, rows, in_head = "", None, None, None, False
        for i, t in enumerate(tokens):
            if t.type == "heading_open":
                heading = inline_text(tokens[i + 1])
                self.headings.append((int(t.tag[1]), heading))
            elif t.type == "table_open":
                header, rows = [], []
            elif t.type == "thead_open":
                in_head = True
            elif t.type == "thead_close":
                in_head = False
            elif t.type == "tr_open":
                row = []
            elif t.type in ("th_open", "td_open"):
                row.append(inline_text(tokens[i + 1]))
            elif t.type == "tr_close":
                (header.extend if in_head else rows.append)(row)
            elif t.type == "table_close":
                self.tables.append((heading, header, rows))
            elif t.type == "fence":
                self.fences.append((t.info.strip(), t.content))

    def table(self, heading_start: str, *, with_column: str | None = None) -> list[dict[str, str]]:
        found = [
            (h, head, rows)
            for h, head, rows in self.tables
            if h.startswith(heading_start) and (with_column is None or with_column in head)
        ]
        assert len(found) == 1, f"expected one table under {heading_start!r}, found {[f[0] for f in found]}"
        _, head, rows = found[0]
        assert all(len(r) == len(head) for r in rows)
        return [dict(zip(head, r)) for r in rows]

    def has_table(self, heading_start: str) -> bool:
        return any(h.startswith(heading_start) for h, _, _ in self.tables)


def report(*args, cwd=None) -> tuple[Doc, dict]:
    """The Markdown (parsed) and the JSON report of the same arguments."""
    r = run_cli("report", *args, cwd=cwd)
    assert r.code == 0, r.err
    j = run_cli("report", *args, "--format", "json", cwd=cwd)
    assert j.code == 0, j.err
    return Doc(r.out), json.loads(j.out)


# ---- independent expectations -----------------------------------------------------------------


@cache
def raw_tags(path: Path) -> dict[str, dict]:
    data = json.loads(path.read_text(encoding="utf-8"))
    return {v["name"]: v["properties"] for v in data["values"]}


def merged(prefixes, version: int) -> int:
    nets = [ipaddress.ip_network(p) for p in prefixes]
    return len(list(ipaddress.collapse_addresses(n for n in nets if n.version == version)))


def arm_rules(text: str) -> set[tuple[str, int, str]]:
    out = set()
    for res in json.loads(text)["resources"]:
        name = re.search(r"'((?:[^']|'')*)'\)\]$", res["name"]).group(1).replace("''", "'")
        out.add((name, res["properties"]["priority"], res["properties"]["destinationAddressPrefix"]))
    return out


def tf_rules(text: str) -> set[tuple[str, int, str, str]]:
    doc = hcl2.loads(text)
    out = set()
    for res in doc.get("resource", []):
        rtypes = {k.strip('"'): v for k, v in res.items()}
        for label, body in rtypes.get("azurerm_network_security_rule", {}).items():
            out.add(
                (
                    body["name"].strip('"'),
                    body["priority"],
                    body["destination_address_prefix"].strip('"'),
                    f"azurerm_network_security_rule.{label.strip(chr(34))}",
                )
            )
    return out


def dash(value) -> str:
    return "—" if value is None else str(value)


# ---- the numbers in the tables ----------------------------------------------------------------


@pytest.mark.parametrize("spec", sample_specs(), ids=lambda p: p.stem)
def test_tables_carry_exactly_the_plans_numbers(spec, tmp_path):
    tags_path = latest_servicetags(CLOUD_KIND[sample_cloud(spec)])
    out = tmp_path / "rules"
    r = run_cli("render", spec, "--service-tags", tags_path, "--out", out)
    assert r.code == 0, r.err
    doc, data = report(spec, "--service-tags", tags_path)
    raw = raw_tags(tags_path)

    # service tags: changeNumber and merged counts from the raw JSON; the tags are those of the NSG rules
    rows = doc.table("Service tags")
    *per_tag, total = rows
    rendered = {x[2] for x in arm_rules((out / "nsg.json").read_text())}
    assert {row["Service tag"] for row in per_tag} == rendered
    union = []
    for row in per_tag:
        props = raw[row["Service tag"]]
        union += props["addressPrefixes"]
        assert (row["changeNumber"], row["IPv4 prefixes"], row["IPv6 prefixes"]) == (
            str(props["changeNumber"]),
            str(merged(props["addressPrefixes"], 4)),
            str(merged(props["addressPrefixes"], 6)),
        ), row
    assert total["Service tag"] == "All tags, merged"
    file_change = json.loads(tags_path.read_text())["changeNumber"]
    assert (total["changeNumber"], total["IPv4 prefixes"], total["IPv6 prefixes"]) == (
        str(file_change),
        str(merged(union, 4)),
        str(merged(union, 6)),
    )
    # ... and the totals are what the nft sets hold
    nft = (out / "acrrules.nft").read_text()
    for version, set_name in ((4, "acr_v4"), (6, "acr_v6")):
        filled = re.findall(r"set " + set_name + r" \{[^}]*?elements = \{(.*?)\}", nft, re.S)
        elements = re.findall(r"[0-9a-f:.]+/\d+", filled[-1]) if filled else []
        assert len(elements) == int(total[f"IPv{version} prefixes"])

    # NSG rules: names, priorities and tags of the rendered files
    assert {(x["Rule name"], int(x["Priority"]), x["Service tag"]) for x in doc.table("nsg-arm:")} == arm_rules(
        (out / "nsg.json").read_text()
    )
    assert {
        (x["Rule name"], int(x["Priority"]), x["Service tag"], x["Terraform address"]) for x in doc.table("nsg-tf:")
    } == tf_rules((out / "nsg.tf").read_text())

    # endpoints: those of `acrrules endpoints --format json`
    eps = json.loads(run_cli("endpoints", spec, "--format", "json").out)
    assert sorted(
        (x["FQDN"], x["Kind"], x["Registry"], x["Region"], x["Port"]) for x in doc.table("Endpoints")
    ) == sorted((e["fqdn"], e["kind"], dash(e["registry"]), dash(e["region"]), str(e["port"])) for e in eps)
    assert data["endpoints"] == eps

    # registries: one row per registry region, with that region's ACR and Storage tags
    regions = [(x["Registry"], x["Region"], x["Role"]) for x in doc.table("Registries")]
    import yaml

    desc = yaml.safe_load(spec.read_text())
    assert regions == [
        (reg["name"], loc, "home" if i == 0 else "replica")
        for reg in desc["registries"]
        for i, loc in enumerate([reg["location"], *reg.get("replicas", [])])
    ]
    for x in doc.table("Registries"):
        acr, storage = x["Service tags"].split(", ")
        assert acr.startswith("AzureContainerRegistry.") and storage.startswith("Storage.")
        assert acr.split(".", 1)[1].lower() == storage.split(".", 1)[1].lower() == x["Region"]


def test_json_and_markdown_agree(tmp_path):
    old, new = week(PUB_1006), week(PUB_1013)
    spec, out = drifted_rules(tmp_path)
    doc, data = report(spec, "--service-tags", new, "--since", old, "--out", out)
    assert [(t["tag"], str(t["changeNumber"]), str(t["ipv4"]), str(t["ipv6"])) for t in data["tags"]] + [
        (
            "All tags, merged",
            str(data["serviceTags"]["changeNumber"]),
            str(data["totals"]["ipv4"]),
            str(data["totals"]["ipv6"]),
        )
    ] == [
        (x["Service tag"], x["changeNumber"], x["IPv4 prefixes"], x["IPv6 prefixes"]) for x in doc.table("Service tags")
    ]
    for n in data["nsg"]:
        md = doc.table(f"{n['target']}:")
        assert [(str(x["priority"]), x["name"], x["tag"]) for x in n["rules"]] == [
            (x["Priority"], x["Rule name"], x["Service tag"]) for x in md
        ]
        assert any(
            h == f"{n['target']}: {n['file']}, priorities {n['priorities'][0]}–{n['priorities'][1]}"
            for _, h in doc.headings
        )
    assert [(f["file"], f["status"], str(f["linesAdded"]), str(f["linesRemoved"])) for f in data["out"]["files"]] == [
        (x["File"], x["Status"], x["Lines added"], x["Lines removed"]) for x in doc.table("Files in")
    ]
    assert [(x["name"], str(x["priority"]), x["tag"], x["command"]) for x in data["out"]["removedRules"]] == [
        (x["Rule"], x["Priority"], x["Service tag"], x["Command"]) for x in doc.table("NSG rules that leave")
    ]
    assert [
        (c["tag"], c["status"], str(len(c["added"])), str(len(c["removed"]))) for c in data["since"]["changed"]
    ] == [
        (x["Service tag"], x["Change"], x["Prefixes added"], x["Prefixes removed"])
        for x in doc.table("Changes since", with_column="changeNumber")
        if x["Change"] != "changeNumber only"
    ]
    assert [(x["registry"], x["region"], x["role"], ", ".join(x["tags"])) for x in data["registries"]] == [
        (x["Registry"], x["Region"], x["Role"], x["Service tags"]) for x in doc.table("Registries")
    ]
    assert [(t["target"], ", ".join(t["files"])) for t in data["targets"]] == [
        (x["Target"], x["Files"]) for x in doc.table("Targets")
    ]
    assert data["name"] in doc.headings[0][1] and data["spec"] in doc.text


# ---- --since: what changed, as tags diff says ----------------------------------------------------


def test_since_reports_what_tags_diff_reports(tmp_path):
    """A week where prefixes of the description's tags changed (MCR and Storage.NorthCentralUS)."""
    old, new = week(PUB_1006), week(PUB_1013)
    spec = tmp_path / "acr.yaml"
    spec.write_text(
        SAMPLE.read_text().replace(
            "replicas: [westeurope, southeastasia]", "replicas: [westeurope, southeastasia, northcentralus]"
        )
    )
    diff = run_cli("tags", "diff", old, new, "--spec", spec, "--format", "json")
    assert diff.code == 1
    expected = json.loads(diff.out)
    assert {c["tag"] for c in expected["changed"]} >= {"MicrosoftContainerRegistry", "Storage.NorthCentralUS"}
    doc, data = report(spec, "--service-tags", new, "--since", old)
    rows = doc.table("Changes since", with_column="changeNumber")
    listed = [
        (x["Service tag"], x["Prefix"], x["Change"])
        for _, head, rs in doc.tables
        if head == ["Service tag", "Prefix", "Change"]
        for x in (dict(zip(head, r)) for r in rs)
    ]
    assert sorted(listed) == sorted(
        (c["tag"], p, kind) for c in expected["changed"] for kind in ("added", "removed") for p in c[kind]
    )
    assert [(x["Service tag"], x["changeNumber"]) for x in rows] == [
        (c["tag"], f"{dash(c['changeNumber'][0])} → {dash(c['changeNumber'][1])}") for c in expected["changed"]
    ] + [(c["tag"], f"{c['changeNumber'][0]} → {c['changeNumber'][1]}") for c in expected["renumbered"]]
    assert data["since"]["changed"] == expected["changed"]
    assert data["since"]["renumbered"] == expected["renumbered"]
    assert (data["since"]["unchanged"], data["since"]["compared"]) == (expected["unchanged"], expected["compared"])
    assert data["since"]["old"] == {"file": PUB_1006, "cloud": "Public", "changeNumber": 372}
    assert f"From {PUB_1006} (changeNumber 372) to {PUB_1013} (changeNumber 373)" in re.sub(r"`", "", doc.text)


def test_since_a_week_without_changes_says_so(tmp_path):
    old, new = week("ServiceTags_Public_20251020.json"), week("ServiceTags_Public_20251027.json")
    doc, data = report(SAMPLE, "--service-tags", new, "--since", old)
    assert data["since"]["changed"] == [] and "none changed its prefixes" in doc.text
    assert not doc.has_table("Changes since")


def test_since_with_the_files_swapped_warns(tmp_path):
    old, new = week(PUB_1006), week(PUB_1013)
    r = run_cli_process("report", SAMPLE, "--service-tags", old, "--since", new, env=TODAY)
    assert r.code == 0 and "swapped?" in r.err and r.err.count("\n") == 1


# ---- --out: what render would do to the directory --------------------------------------------------


def drifted_rules(tmp_path: Path) -> tuple[Path, Path]:
    """rules/ rendered while acr.yaml had a northeurope replica, from the 20251006 file; then
    northeurope left acr.yaml, someone edited versions.tf by hand and nsg.tf was deleted."""
    spec = tmp_path / "acr.yaml"
    spec.write_text(
        SAMPLE.read_text().replace(
            "replicas: [westeurope, southeastasia]", "replicas: [westeurope, southeastasia, northeurope]"
        )
    )
    out = tmp_path / "rules"
    assert run_cli("render", spec, "--service-tags", week(PUB_1006), "--out", out).code == 0
    spec.write_text(SAMPLE.read_text())
    with open(out / "versions.tf", "a") as fh:
        fh.write("# edited by hand\n")
    (out / "nsg.tf").unlink()
    return spec, out


def test_out_lists_the_files_that_change_and_the_rules_that_leave(tmp_path):
    spec, out = drifted_rules(tmp_path)
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.iterdir()}
    doc, data = report(spec, "--service-tags", week(PUB_1006), "--out", out)
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.iterdir()} == before  # wrote nothing
    files = {x["File"]: (x["Status"], int(x["Lines added"]), int(x["Lines removed"])) for x in doc.table("Files in")}
    # the same service tags file: the IP targets lose northeurope's prefixes; the FQDN files lose its data endpoint
    assert files["versions.tf"] == ("changed", 0, 1)
    assert files["nsg.tf"][0] == "added" and files["nsg.tf"][1] > 0
    assert files["nsg.json"][0] == "changed" and files["azure-firewall.tf"][0] == "changed"
    assert sorted(files) == sorted(consumers.output_files())  # every file render writes
    # the statuses are those of render --check: every file it shows a diff for is added or changed
    check = run_cli("render", spec, "--service-tags", week(PUB_1006), "--out", out, "--check")
    assert check.code == 1
    differing = set(re.findall(r"^\+\+\+ .*/([^/\n]+)$", check.out, re.M))
    assert differing == {f for f, (status, _, _) in files.items() if status != "unchanged"}
    removed = doc.table("NSG rules that leave")
    assert [(x["Rule"], x["Priority"], x["Service tag"]) for x in removed] == [
        ("acrrules-AzureContainerRegistry.NorthEurope", "278", "AzureContainerRegistry.NorthEurope"),
        ("acrrules-Storage.NorthEurope", "279", "Storage.NorthEurope"),
    ]
    assert [x["Command"] for x in removed] == [
        # the sample's nsg-tf settings name the NSG (nsg-arm names none of its own): its rules go there too
        f"az network nsg rule delete -g rg-network --nsg-name nsg-build-agents -n {x['Rule']}"
        for x in removed
    ]
    # render --check announces the same rules
    for x in removed:
        assert f"  {x['Rule']} (priority {x['Priority']}, {x['Service tag']}): {x['Command']}" in check.err
    # a fresh directory: every file is added, no rule leaves
    doc, data = report(spec, "--out", tmp_path / "fresh")
    assert {x["Status"] for x in doc.table("Files in")} == {"added"} and data["out"]["removedRules"] == []
    assert "None: every rule of the" in doc.text


def test_up_to_date_rules_are_all_unchanged(tmp_path):
    out = tmp_path / "rules"
    assert run_cli("render", SAMPLE, "--out", out).code == 0
    doc, data = report(SAMPLE, "--out", out)
    assert {x["Status"] for x in doc.table("Files in")} == {"unchanged"}
    assert {(f["linesAdded"], f["linesRemoved"]) for f in data["out"]["files"]} == {(0, 0)}


# ---- outputs:, --target, name -----------------------------------------------------------------


def test_the_report_follows_outputs_targets_and_name(tmp_path):
    spec = tmp_path / "edge.yaml"
    spec.write_text(SAMPLE.read_text() + "name: edge\noutputs: [nftables, iptables]\n")
    tags = latest_servicetags()
    doc, data = report(spec, "--service-tags", tags, "--out", tmp_path / "rules")
    assert doc.headings[0] == (1, "acrrules report: edge")
    assert [t["target"] for t in data["targets"]] == ["nftables", "iptables"] and data["nsg"] == []
    assert not any(h.startswith(("NSG rules", "nsg")) for _, h in doc.headings)
    assert data["out"]["removedRules"] is None and not doc.has_table("NSG rules that leave")
    assert sorted(x["File"] for x in doc.table("Files in")) == sorted(consumers.output_files(["nftables", "iptables"]))
    names = {x["Target"]: x["Names"] for x in doc.table("Targets")}
    assert names["nftables"] == "table inet edge; sets acr_v4, acr_v6; chain acr_allow; mode include"
    assert names["iptables"] == "chain EDGE; ipsets EDGE_v4, EDGE_v6; mode include"
    # without the Service Tags file the IP targets are skipped: nothing to render, said in the report
    doc, data = report(spec)
    assert data["targets"] == [] and [s["target"] for s in data["skipped"]] == ["nftables", "iptables"]
    assert "Not rendered: nftables: it needs IP prefixes" in re.sub(r"`", "", doc.text)
    # --target overrides outputs, as for render
    doc, data = report(spec, "--target", "nsg-tf", "--out", tmp_path / "rules")
    assert [n["target"] for n in data["nsg"]] == ["nsg-tf"] and not doc.has_table("nsg-arm:")
    assert all(x["Rule name"].startswith("edge-") for x in doc.table("nsg-tf:"))
    assert data["out"]["removedRules"] is None


def test_hostile_paths_and_hand_edited_rule_names_stay_in_their_cells(tmp_path):
    """Paths are the user's and nsg.json on disk may have been edited by hand: whatever they hold,
    each value is read back exactly, in its own cell, and the delete command quotes the name."""
    folder = tmp_path / "we|ird`dir"
    folder.mkdir()
    spec = folder / "a|b*_c <x>.yaml"
    shutil.copy(REPO / "samples" / "basic.yaml", spec)
    out = folder / "rules #1 & ~2~"
    assert run_cli("render", spec, "--target", "nsg-arm", "--out", out).code == 0
    evil = "evil|na`me $(touch x) *y*"
    text = (out / "nsg.json").read_text()
    text = text.replace("'acrrules-AzureContainerRegistry.WestEurope'", "'" + evil + "'")
    (out / "nsg.json").write_text(text)
    rel_spec, rel_out = spec.relative_to(tmp_path), out.relative_to(tmp_path)
    doc, data = report(rel_spec, "--target", "nsg-arm", "--out", rel_out, cwd=tmp_path)
    (rule,) = doc.table("NSG rules that leave")
    assert rule["Rule"] == evil and rule["Service tag"] == "AzureContainerRegistry.WestEurope"
    import shlex

    assert shlex.split(rule["Command"])[-1] == evil
    assert data["out"]["removedRules"][0]["command"] == rule["Command"]
    assert (2, f"Files in {rel_out}") in doc.headings
    assert any(
        inline_text(t).startswith(f"Description: {rel_spec}, cloud AzureCloud")
        for t in MD.parse(doc.text)
        if t.type == "inline"
    )
    assert data["spec"] == str(rel_spec) and data["out"]["dir"] == str(rel_out)


# ---- the document itself ----------------------------------------------------------------------


def test_the_mermaid_flowchart_goes_clients_firewall_regions_and_mcr(tmp_path):
    spec = tmp_path / "two.yaml"
    spec.write_text(
        SAMPLE.read_text().replace(
            "    data_endpoints: dedicated\n",
            "    data_endpoints: dedicated\n  - {name: contosotest, sku: Standard, location: westus2}\n",
        )
    )
    doc, data = report(spec)
    ((info, chart),) = [f for f in doc.fences]
    assert info == "mermaid"
    lines = chart.splitlines()
    assert lines[0] == "flowchart LR"
    assert "  clients --> firewall" in lines
    nodes = dict(re.findall(r'^\s+(registry\d+_\d+)\["([^"]*)"\]$', chart, re.M))
    assert sorted(re.findall(r"^  firewall --> (\S+)$", chart, re.M)) == sorted([*nodes, "mcr"])
    assert [label.split("<br/>")[0] for label in nodes.values()] == [
        f"{x['region']} ({x['role']})" for x in data["registries"]
    ]
    assert re.findall(r'^  subgraph registry\d+\["([^"]*)"\]$', chart, re.M) == [
        "contosoprod (Premium): contosoprod.azurecr.io",
        "contosotest (Standard): contosotest.azurecr.io",
    ]
    assert re.search(r'^  mcr\["MCR: mcr.microsoft.com, \*.data.mcr.microsoft.com"\]$', chart, re.M)
    assert chart.count("subgraph") == chart.count("\n  end\n") == 2


def test_the_report_is_byte_identical_across_runs_and_hash_seeds(tmp_path):
    old, new = week(PUB_1006), week(PUB_1013)
    spec, out = drifted_rules(tmp_path)
    outputs = set()
    for seed in ("0", "1", "4242"):
        for fmt in ("markdown", "json"):
            r = run_cli_process(
                "report",
                spec,
                "--service-tags",
                new,
                "--since",
                old,
                "--out",
                out,
                "--format",
                fmt,
                env={**TODAY, "PYTHONHASHSEED": seed},
            )
            assert r.code == 0 and r.err == "", r.err
            outputs.add((fmt, r.out))
    assert len(outputs) == 2


def test_example_report_is_up_to_date():
    """examples/report-example.md is what `python tests/regen_golden.py` writes (see report_example)."""
    expected = report_example()
    if expected is None:
        need_shared()
        pytest.skip(f"../shared lacks {PUB_1006} or {PUB_1013}")
    assert EXAMPLE_REPORT.read_text(encoding="utf-8") == expected, (
        "examples/report-example.md is stale: run python tests/regen_golden.py and review the diff"
    )
    doc = Doc(expected)
    assert doc.table("NSG rules that leave") and doc.table("Changes since", with_column="changeNumber")


def test_the_readme_excerpt_is_from_the_example():
    readme = (REPO / "docs" / "weekly-loop.md").read_text(encoding="utf-8")
    excerpt = readme.split("\n## `report`\n", 1)[1].split("```markdown\n", 1)[1].split("\n```\n", 1)[0]
    example = EXAMPLE_REPORT.read_text(encoding="utf-8").splitlines()
    assert len(excerpt.splitlines()) > 8
    assert [line for line in excerpt.splitlines() if line and line not in example] == []


# ---- bad input: located, exit 2, nothing on stdout ------------------------------------------------


def test_bad_inputs_are_located_errors_with_nothing_on_stdout(tmp_path):
    new = latest_servicetags()
    late = {"ACRRULES_TODAY": "2025-11-10"}  # no real file is dated after it (a future date is refused)
    bad_spec = tmp_path / "acr.yaml"
    bad_spec.write_text(
        "version: 1\nregistries:\n  - name: contosoprod\n    sku: Premium\n    location: eastus\n"
        "    replica: [westeurope]\n"
    )
    r = run_cli_process("report", bad_spec, "--service-tags", new, env=late)
    assert (r.code, r.out) == (2, "")
    assert r.err.startswith(f"{bad_spec}:6:5: ") and "replicas" in r.err and "Traceback" not in r.err

    bad_old = tmp_path / "ServiceTags_Public_20251006.json"
    bad_old.write_text('{"changeNumber": 372, "cloud": "Public",\n "values": [{"name": "X", "properties": 7}]}\n')
    r = run_cli_process("report", SAMPLE, "--service-tags", new, "--since", bad_old, env=late)
    assert (r.code, r.out) == (2, "")
    assert r.err.startswith(f"{bad_old}:2:") and "Traceback" not in r.err

    r = run_cli_process("report", SAMPLE, "--service-tags", new, "--since", latest_servicetags("China"), env=late)
    assert (r.code, r.out) == (2, "") and "same cloud" in r.err

    r = run_cli_process("report", SAMPLE, "--since", new, env=late)
    assert (r.code, r.out) == (2, "") and "give --service-tags NEW" in r.err

    r = run_cli_process("report", SAMPLE, "--target", "nope")
    assert (r.code, r.out) == (2, "") and "unknown target 'nope'" in r.err

    not_a_dir = tmp_path / "rules"
    not_a_dir.write_text("")
    r = run_cli_process("report", SAMPLE, "--out", not_a_dir)
    assert (r.code, r.out) == (2, "") and f"{not_a_dir}: --out must be the directory" in r.err

    r = run_cli_process("report", SAMPLE, "--out", "-")
    assert (r.code, r.out) == (2, "") and "report --out takes the directory" in r.err

    r = run_cli_process("report", SAMPLE, "--format", "html")
    assert (r.code, r.out) == (2, "")


def test_a_stale_service_tags_file_is_a_warning_on_stderr_only(tmp_path):
    r = run_cli_process("report", SAMPLE, "--service-tags", week(PUB_1013), env={"ACRRULES_TODAY": "2026-12-01"})
    assert r.code == 0 and "days old" in r.err
    fresh = run_cli_process("report", SAMPLE, "--service-tags", week(PUB_1013), env=TODAY)
    assert fresh.out == r.out and fresh.err == ""


# ---- escaping: what a value says is what the reader sees -------------------------------------------


def printable(s: str) -> str:
    """Control, format and line/paragraph separator characters read as spaces; lone surrogates as U+FFFD."""
    return "".join(
        "\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else " " if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") else c
        for c in s
    )


HOSTILE = st.text(
    alphabet=st.sampled_from(list("|\\`*_[]<>!&~$#:-=+.() \n\r\tab0\u2028\u00a0é")) | st.characters(), max_size=40
)


@given(HOSTILE)
@example("a | b")
@example("x #")
@example("`code`")
@example("*em* _em_")
@example("<b>html</b>")
@example("&amp;")
@example("\\|")
@example("~~gone~~")
@example("[link](x)")
@example("![img](x)")
@example("$x$")
@example("a\nb")
@example("\\")
@example(" - item")
@example("1. x")
def test_md_text_and_md_code_stay_in_their_table_cell(value):
    for escape in (md_text, md_code):
        doc = Doc(f"# {escape(value)}\n\n| a | b |\n|---|---|\n| {escape(value)} | x |\n")
        ((_, head, rows),) = doc.tables
        assert head == ["a", "b"] and rows == [[printable(value).strip(), "x"]], (escape.__name__, value)
        assert doc.headings == [(1, printable(value).strip())], (escape.__name__, value)


@given(HOSTILE)
@example('a"] --> x["b')
@example("<br/>")
@example("#quot;")
@example("`x`")
@example("end")
def test_mermaid_labels_hold_no_syntax(value):
    label = mermaid_label(value)
    assert re.fullmatch(r"[A-Za-z0-9 .,:/()*+_;#-]*", label)
    assert re.sub(r"#(\d+);", lambda m: chr(int(m.group(1))), label) == printable(value)
