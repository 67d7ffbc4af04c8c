"""Platform limits are checked before anything is written; big legitimate input just works.

- NSG: acrrules owns a block of 256 priorities, which must end at or below 4096:
  a description past it is refused (exit 2) at the key to change, and the output
  directory is untouched.
- Azure Firewall: a rule collection group holds at most 2 MB, so a big
  description is split into several groups, each within the limit (estimated
  here independently, from the rendered file, as Azure stores the rules), and
  the result still passes terraform fmt and tf_schema_check; past the number of
  groups a policy holds, or past the last priority, the run is refused.
- 5,000 registries render every target; the wall time and peak memory of that
  run are printed (run pytest with -s to see them), and only a generous sanity
  bound is asserted.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import consumers
import pytest
from conftest import REPO, latest_servicetags, run_cli, run_cli_process, run_validator, terraform_fmt_check
from consumers import hcl_unquote
from oracles import endpoints as oracle_endpoints
from test_badinput import snapshot

from acrrules import catalog
from acrrules.model import Description, RegistrySpec
from acrrules.plan import RulePlan, TagRule
from acrrules.targets import TARGETS

LOCATIONS = sorted(catalog.CLOUDS["AzureCloud"].locations)


def write_spec(path: Path, registries: list[str], *, head: str = "", targets: str = "") -> Path:
    path.write_text(
        "version: 1\n" + head + "registries:\n" + "".join(f"  - {r}\n" for r in registries) + targets, encoding="utf-8"
    )
    return path


def position(text: str, needle: str) -> tuple[int, int]:
    off = text.index(needle)
    return text.count("\n", 0, off) + 1, off - (text.rfind("\n", 0, off) + 1) + 1


@pytest.fixture
def previous(tmp_path) -> Path:
    """An output directory holding an earlier, successful render."""
    spec = write_spec(tmp_path / "previous.yaml", ["{name: contosoacr, sku: Standard, location: eastus}"])
    out = tmp_path / "out"
    assert run_cli("render", spec, "--out", out).code == 0
    return out


# ---- NSG ------------------------------------------------------------------------------------------


def test_nsg_priority_block_past_4096_is_refused_at_the_priority(tmp_path, previous):
    """One Premium registry replicated to every other AzureCloud region uses 2 x 69 + 2 slots of the
    256-priority block; a block that would end past 4096 is refused at each target's priority."""
    home, *replicas = LOCATIONS
    spec = write_spec(
        tmp_path / "wide.yaml",
        [f"{{name: contosoacr, sku: Premium, location: {home}, replicas: [{', '.join(replicas)}]}}"],
        head="mcr: true\n",
        targets="targets:\n  nsg-arm: {priority: 3842}\n  nsg-tf:\n    priority: 4000\n",
    )
    text = spec.read_text(encoding="utf-8")
    before = snapshot(previous)
    r = run_cli_process("render", spec, "--out", previous)
    assert r.code == 2 and "Traceback" not in r.err and r.out == ""
    arm_line, arm_col = position(text, "3842")
    tf_line, tf_col = position(text, "4000")
    last_first = catalog.NSG_PRIORITY_MAX - catalog.NSG_BLOCK_SIZE + 1
    why = "(must leave room for the whole block of 256 priorities acrrules owns below Azure's maximum 4096)"
    assert r.err.splitlines() == [
        f"{spec}:{arm_line}:{arm_col}: targets.nsg-arm.priority: 3842 is out of range: use a value from 100 to "
        f"{last_first} {why}",
        f"{spec}:{tf_line}:{tf_col}: targets.nsg-tf.priority: 4000 is out of range: use a value from 100 to "
        f"{last_first} {why}",
    ]
    assert snapshot(previous) == before
    # The largest allowed first priority renders, and every rule stays inside the block and below 4096.
    spec.write_text(text.replace("3842", str(last_first)).replace("4000", str(last_first)), encoding="utf-8")
    r = run_cli("render", spec, "--target", "nsg-arm", "--target", "nsg-tf", "--out", tmp_path / "ok")
    assert r.code == 0, r.err
    rules = json.loads((tmp_path / "ok" / "nsg.json").read_text(encoding="utf-8"))["resources"]
    prios = [x["properties"]["priority"] for x in rules]
    assert len(prios) == len(set(prios)) == 2 * len(LOCATIONS) + 2
    assert last_first <= min(prios) and max(prios) <= catalog.NSG_PRIORITY_MAX


def test_nsg_block_and_slots_are_checked_for_api_built_plans():
    """Through the API (no schema): a block past 4096 is refused at the priority, and a region the
    catalog has no slot for (a newer Service Tags file) at the location that asks for it."""
    desc = Description(
        registries=(RegistrySpec("contosoacr", "Premium", "eastus", replicas=("newregion",)),),
        target_data={"nsg-arm": {"priority": 3900}, "nsg-tf": {"priority": 100}},
    )
    tags = (
        TagRule("AzureContainerRegistry.EastUS", catalog.TAG_ACR, "eastus", ("contosoacr",)),
        TagRule("AzureContainerRegistry.NewRegion", catalog.TAG_ACR, "newregion", ("contosoacr",)),
    )
    plan = RulePlan(description=desc, endpoints=(), tags=tags)
    arm = TARGETS["nsg-arm"].check(plan)
    assert [p.path for p in arm] == [("targets", "nsg-arm", "priority"), ("registries", 0, "replicas", 0)]
    assert "owns the priorities 3900-4155" in arm[0].message and "at most 3841" in arm[0].message
    assert "'newregion' is newer than this version of acrrules" in arm[1].message
    assert [p.path for p in TARGETS["nsg-tf"].check(plan)] == [("registries", 0, "replicas", 0)]


# ---- Azure Firewall: 2 MB per rule collection group -------------------------------------------------

GROUP = re.compile(r'^resource "azurerm_firewall_policy_rule_collection_group" ', re.M)
STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


def firewall_groups(text: str) -> list[dict]:
    """name, priority and rules (name, description, sources, fqdns/tags) of each group in azure-firewall.tf.

    A reader for the file's one fixed layout (terraform fmt has checked its syntax), fast on
    multi-megabyte files where python-hcl2 takes many seconds.
    """
    groups = []
    for block in GROUP.split(text)[1:]:
        group = {
            "name": hcl_unquote(re.search(r"^  name\s+= (.*)$", block, re.M).group(1)),
            "priority": int(re.search(r"^  priority\s+= (\d+)$", block, re.M).group(1)),
            "rules": [],
        }
        for rule in re.finditer(r"^    rule \{\n(.*?)^    \}", block, re.M | re.S):
            body = rule.group(1)

            def strings(attribute):
                m = re.search(rf"^      {attribute}\s+= \[(.*?)\]$", body, re.M | re.S)
                return [hcl_unquote(s) for s in STRING.findall(m.group(1))] if m else []

            group["rules"].append(
                {
                    "name": hcl_unquote(re.search(r"^      name\s+= (.*)$", body, re.M).group(1)),
                    "description": hcl_unquote(re.search(r"^      description\s+= (.*)$", body, re.M).group(1)),
                    "sources": strings("source_addresses"),
                    "fqdns": strings("destination_fqdns"),
                    "tags": strings("destination_addresses"),
                    "network": "destination_addresses" in body,
                }
            )
        groups.append(group)
    return groups


def stored_size(rule: dict) -> int:
    """Bytes of a rule as Azure stores it in the rule collection group (its ARM JSON), the 2 MB measure."""
    if rule["network"]:
        body = {
            "ruleType": "NetworkRule",
            "name": rule["name"],
            "description": rule["description"],
            "ipProtocols": ["TCP"],
            "sourceAddresses": rule["sources"],
            "sourceIpGroups": [],
            "destinationAddresses": rule["tags"],
            "destinationIpGroups": [],
            "destinationFqdns": [],
            "destinationPorts": ["443"],
        }
    else:
        body = {
            "ruleType": "ApplicationRule",
            "name": rule["name"],
            "description": rule["description"],
            "protocols": [{"protocolType": "Https", "port": 443}],
            "fqdnTags": [],
            "webCategories": [],
            "targetFqdns": rule["fqdns"],
            "targetUrls": [],
            "terminateTLS": False,
            "sourceAddresses": rule["sources"],
            "destinationAddresses": [],
            "sourceIpGroups": [],
            "httpHeadersToInsert": [],
        }
    return len(json.dumps(body))


def check_split(text: str, spec_data: dict, first_priority: int, limit: int) -> list[dict]:
    groups = firewall_groups(text)
    assert [g["priority"] for g in groups] == list(range(first_priority, first_priority + len(groups)))
    assert len({g["name"] for g in groups}) == len(groups)
    for g in groups:
        assert sum(stored_size(r) for r in g["rules"]) <= limit, g["name"]
    rules = [r for g in groups for r in g["rules"]]
    assert len({r["name"] for r in rules}) == len(rules)
    assert sorted({f for r in rules for f in r["fqdns"]}) == sorted({e[1] for e in oracle_endpoints(spec_data)})
    return groups


def spec_data(registries: int, *, sources: list[str] | None = None) -> dict:
    regs = []
    for i in range(registries):
        home = LOCATIONS[i % len(LOCATIONS)]
        if i % 3 == 0:
            replicas = [LOCATIONS[(i + k) % len(LOCATIONS)] for k in (7, 19, 31)]
            regs.append(
                {
                    "name": f"registry{i:05d}",
                    "sku": "Premium",
                    "location": home,
                    "replicas": replicas,
                    "data_endpoints": "both",
                    "regional_endpoints": True,
                }
            )
        elif i % 3 == 1:
            regs.append({"name": f"registry{i:05d}", "sku": "Standard", "location": home})
        else:
            regs.append({"name": f"registry{i:05d}", "sku": "Premium", "location": home, "private_link": True})
    data = {"version": 1, "mcr": True, "registries": regs}
    if sources:
        data["sources"] = sources
    return data


def dump(path: Path, data: dict) -> Path:
    path.write_text(json.dumps(data, indent=1), encoding="utf-8")  # JSON is YAML: fast to write and to load
    return path


def test_firewall_group_split_within_a_small_budget(tmp_path, monkeypatch):
    """The packing logic at a size python-hcl2 (tf_schema_check) reads quickly: a 40 KB budget, many groups."""
    from acrrules.targets import azure_firewall

    monkeypatch.setattr(azure_firewall, "SIZE_BUDGET", 40_000)
    data = spec_data(120, sources=[f"10.{i}.0.0/16" for i in range(20)])
    data["targets"] = {"azure-firewall": {"priority": 300, "network_rules": True}}
    spec = dump(tmp_path / "spec.yaml", data)
    r = run_cli("render", spec, "--target", "azure-firewall", "--out", tmp_path / "out")
    assert r.code == 0, r.err
    tf = tmp_path / "out" / "azure-firewall.tf"
    groups = check_split(tf.read_text(encoding="utf-8"), data, 300, 40_000)
    assert len(groups) >= 5
    assert any(r["network"] for g in groups for r in g["rules"])
    assert terraform_fmt_check(tf).returncode == 0
    r = run_validator("tf_schema_check.py", "--strict", tf)
    assert r.returncode == 0, r.stdout + r.stderr


def test_firewall_groups_past_the_last_priority_are_refused(tmp_path, monkeypatch, previous):
    from acrrules.targets import azure_firewall

    monkeypatch.setattr(azure_firewall, "SIZE_BUDGET", 40_000)
    data = spec_data(120)
    data["targets"] = {"azure-firewall": {"priority": catalog.FIREWALL_PRIORITY_MAX}}
    spec = dump(tmp_path / "spec.yaml", data)
    before = snapshot(previous)
    r = run_cli("render", spec, "--out", previous)
    assert r.code == 2 and snapshot(previous) == before
    line, col = position(spec.read_text(encoding="utf-8"), str(catalog.FIREWALL_PRIORITY_MAX))
    assert (
        r.err.startswith(f"{spec}:{line}:{col}: the rules need ") and "lower targets.azure-firewall.priority" in r.err
    )


def test_more_groups_than_a_policy_holds_is_refused(tmp_path, previous):
    """20,000 sources repeated in 600 rules: even packed to the byte, 100 groups of 2 MB; a policy holds 90."""
    sources = [f"10.{i // 256}.{i % 256}.0/24" for i in range(20_000)]
    registries = 600
    data = {
        "version": 1,
        "sources": sources,
        "registries": [
            {"name": f"registry{i:05d}", "sku": "Standard", "location": "eastus"} for i in range(registries)
        ],
    }
    spec = dump(tmp_path / "spec.yaml", data)
    rule = {
        "network": False,
        "name": "acr-registry00000",
        "description": "Registry registry00000 (eastus)",
        "sources": sources,
        "fqdns": ["registry00000.azurecr.io"],
        "tags": [],
    }
    per_group = catalog.FIREWALL_RCG_MAX_BYTES // stored_size(rule)
    assert math.ceil(registries / per_group) > catalog.FIREWALL_MAX_RCGS  # the input really is too big
    before = snapshot(previous)
    r = run_cli_process("render", spec, "--target", "azure-firewall", "--out", previous)
    assert r.code == 2 and "Traceback" not in r.err and r.out == ""
    lines = r.err.splitlines()
    assert len(lines) == 1 and re.match(rf"{re.escape(str(spec))}:\d+:\d+: ", lines[0]), lines
    assert "each planned to at most 1843 KiB, 90% of Azure's 2 MB limit), but a policy holds at most 90" in lines[0]
    assert snapshot(previous) == before


# ---- 5,000 registries -----------------------------------------------------------------------------

MEASURE = textwrap.dedent("""\
    import json, resource, sys, time
    from acrrules.cli import main
    start = time.perf_counter()
    code = main(sys.argv[1:])
    wall = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"code": code, "seconds": wall, "peak_mib": peak / 1024}), file=sys.stderr)
""")


@pytest.fixture(scope="module")
def big_render(tmp_path_factory) -> dict:
    """5,000 registries (a third geo-replicated with every endpoint kind), every target, the newest Public file."""
    root = tmp_path_factory.mktemp("big")
    data = spec_data(5000, sources=["10.0.0.0/8", "172.16.0.0/12"])
    spec = dump(root / "big.yaml", data)
    tags = latest_servicetags("Public")
    out = root / "out"
    start = time.perf_counter()
    p = subprocess.run(
        [sys.executable, "-c", MEASURE, "render", str(spec), "--out", str(out), "--service-tags", str(tags)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
    )
    total = time.perf_counter() - start
    assert "Traceback" not in p.stderr, p.stderr
    figures = json.loads(p.stderr.splitlines()[-1])
    assert figures["code"] == 0, p.stderr
    figures["process_seconds"] = total
    print(
        f"\n5,000 registries, every target, {tags.name}: render {figures['seconds']:.2f} s "
        f"(process {total:.2f} s with start-up), peak RSS {figures['peak_mib']:.0f} MiB; "
        + ", ".join(f"{f.name} {f.stat().st_size / 1024:.0f} KiB" for f in sorted(out.iterdir()))
    )
    return {"data": data, "out": out, "figures": figures}


def test_5000_registries_render_within_sane_bounds(big_render):
    f = big_render["figures"]
    assert f["seconds"] < 120 and f["peak_mib"] < 2048, f  # measured: ~1 s and ~90 MiB on 2 cores
    names = sorted(p.name for p in big_render["out"].iterdir() if p.name != ".acrrules-manifest")
    assert names == sorted(consumers.output_files())


def test_5000_registries_calico_sets_are_split_within_their_budget(big_render):
    """calico.yaml of the biggest description: several sets per family, each object within the per-object
    budget as the API server stores it, and the whole file accepted by the real Calico CRDs."""
    import yaml

    from acrrules.targets.calico import NETS_PER_SET, OBJECT_BUDGET_BYTES

    path = big_render["out"] / "calico.yaml"
    docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]
    sets = [d for d in docs if d["kind"] == "GlobalNetworkSet"]
    assert len([s for s in sets if "-v4-" in s["metadata"]["name"]]) >= 2
    assert all(len(s["spec"]["nets"]) <= NETS_PER_SET for s in sets)
    assert max(len(json.dumps(d, separators=(",", ":")).encode()) for d in docs) <= OBJECT_BUDGET_BYTES
    r = run_validator("k8s_check.py", "--strict", path)
    assert r.returncode == 0, r.stdout + r.stderr


def test_5000_registries_firewall_is_split_and_well_formed(big_render):
    tf = big_render["out"] / "azure-firewall.tf"
    groups = check_split(tf.read_text(encoding="utf-8"), big_render["data"], 500, catalog.FIREWALL_RCG_MAX_BYTES)
    assert len(groups) >= 2, "this description is over 2 MB: it must be split"
    assert len([r for g in groups for r in g["rules"]]) == 5000 + 2  # one per registry, shared, MCR
    r = terraform_fmt_check(tf, big_render["out"] / "nsg.tf")
    assert r.returncode == 0, r.stdout + r.stderr


def test_5000_registries_other_outputs_load(big_render):
    """Every other output through the real consumer tests/consumers.py names for it (the kernel loads
    twice, squid_check, k8s_check, ...). azure-firewall.tf gets terraform fmt above: tf_schema_check's
    python-hcl2 takes ~25 s on its 2.7 MB."""
    batches = consumers.check_dirs(big_render["out"], skip=("azure-firewall.tf",))
    assert sum(map(len, batches.values())) == len(consumers.output_files()) - 1
