"""Outputs that live in a repository (spec §3a), tested the way a user lives with them.

A git repository holds a description and its rendered outputs; the description
changes (regions, registries and MCR added and removed) and is rendered again
into the same directory.  After every step the real consumers accept the files,
every surviving NSG rule keeps its name, priority and Terraform address, the
diff touches only the rules that came or went, the kernel takes the new
netfilter files over the old ones, and a fresh render equals the incremental one.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import consumers
import hcl2
import netns
import pytest
import yaml
from conftest import (
    REPO,
    latest_servicetags,
    need_root_netns,
    need_tool,
    run_cli,
    servicetags_files,
    terraform_fmt_check,
)
from hcl2.utils import SerializationOptions
from oracles import nsg_slot

SAMPLE = REPO / "samples" / "geo-replicated-premium.yaml"
TF_ENV = dict(os.environ, TF_CLI_CONFIG_FILE="/dev/null", CHECKPOINT_DISABLE="1")
ARM_NAME = re.compile(
    r"^      \"name\": \"\[format\('\{0\}/\{1\}', parameters\('networkSecurityGroupName'\), "
    r"'((?:[^']|'')*)'\)\]\",$"
)
TF_RULE = re.compile(r'^resource "azurerm_network_security_rule" "([^"]+)" \{$')


def git(repo: Path, *args: str) -> str:
    p = subprocess.run(
        ["git", "-C", str(repo), *args],
        capture_output=True,
        text=True,
        check=True,
        env=dict(
            os.environ,
            GIT_AUTHOR_NAME="t",
            GIT_AUTHOR_EMAIL="t@example.org",
            GIT_COMMITTER_NAME="t",
            GIT_COMMITTER_EMAIL="t@example.org",
        ),
    )
    return p.stdout


def render(spec: Path, out: Path, *extra, cwd: Path | None = None):
    r = run_cli("render", spec, "--out", out, *extra, cwd=cwd)
    assert r.code == 0, r.err
    return r


# ---- readers -----------------------------------------------------------------------------------


def arm_rules(text: str) -> dict[str, dict]:
    """rule name -> its resource, without dependsOn (deployment order, not the rule)."""
    out = {}
    for res in json.loads(text)["resources"]:
        name = re.search(r"'((?:[^']|'')*)'\)\]$", res["name"]).group(1).replace("''", "'")
        out[name] = {k: v for k, v in res.items() if k != "dependsOn"}
    return out


def tf_rules(text: str) -> dict[str, dict]:
    """Terraform address -> the rule's arguments."""
    doc = hcl2.loads(text, serialization_options=SerializationOptions(with_comments=False, explicit_blocks=True))
    out = {}
    for res in doc.get("resource", []):
        for rtype, named in res.items():
            for label, body in named.items():
                out[f"{rtype.strip(chr(34))}.{label.strip(chr(34))}"] = body
    return out


def line_owners(text: str, kind: str) -> list[str | None]:
    """For each line, the rule whose block holds it (None: shared structure such as brackets);
    ARM dependsOn lines are owned by ("dependsOn", rule) since they order deployment only."""
    lines = text.splitlines()
    owners: list[str | None] = [None] * len(lines)
    if kind == "arm":
        start = None
        for i, line in enumerate(lines):
            if line == "    {":
                start = i
            elif line in ("    }", "    },") and start is not None:
                block = range(start, i + 1)
                name = next(ARM_NAME.match(lines[j]).group(1) for j in block if ARM_NAME.match(lines[j]))
                depends = False
                for j in block:
                    if lines[j].startswith('      "dependsOn"'):
                        depends = True
                    # bracket lines carry the commas of lists: structure, not the rule
                    structure = lines[j].strip() in ("{", "}", "},", "]", "],")
                    owners[j] = None if structure else ("dependsOn:" + name) if depends else name
                start = None
    else:
        label = None
        for i, line in enumerate(lines):
            m = TF_RULE.match(line)
            if m:
                label = m.group(1)
            if label is not None:
                owners[i] = label
            if line == "}":
                label = None
    return owners


def changed_owners(old: str, new: str, kind: str, tmp: Path, algorithm: str = "myers") -> tuple[set, set]:
    """The owners of the lines that git's diff (what a reviewer reads) removes and adds."""
    (tmp / "old").write_text(old)
    (tmp / "new").write_text(new)
    p = subprocess.run(
        ["git", "diff", "--no-index", "-U0", f"--diff-algorithm={algorithm}", "old", "new"],
        cwd=tmp,
        capture_output=True,
        text=True,
    )
    oa, ob = line_owners(old, kind), line_owners(new, kind)
    removed, added = set(), set()
    for m in re.finditer(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@", p.stdout, re.M):
        a, na, b, nb = int(m[1]), int(m[2] or 1), int(m[3]), int(m[4] or 1)
        removed.update(oa[a - 1 : a - 1 + na])
        added.update(ob[b - 1 : b - 1 + nb])
    return removed - {None}, added - {None}


def raw_prefixes(tags_path: Path, tags: set[str]) -> set:
    values = {v["name"]: v["properties"]["addressPrefixes"] for v in json.loads(tags_path.read_text())["values"]}
    return netns.networks(p for t in tags for p in values[t])


# ---- the life of a repository ------------------------------------------------------------------


def _steps() -> list[tuple[str, dict]]:
    base = yaml.safe_load(SAMPLE.read_text())
    steps = [("initial", base)]
    d = copy.deepcopy(base)
    d["registries"][0]["replicas"].append("northeurope")
    steps.append(("add the replica northeurope", d))
    d = copy.deepcopy(d)
    d["registries"][0]["replicas"].remove("southeastasia")
    steps.append(("remove the replica southeastasia", d))
    d = copy.deepcopy(d)
    d["registries"].append({"name": "contosotools", "sku": "Basic", "location": "eastus"})
    d["registries"].append(
        {"name": "contosojapan", "sku": "Premium", "location": "japaneast", "data_endpoints": "both"}
    )
    steps.append(("add a registry in a region in use and one in a new region", d))
    d = copy.deepcopy(d)
    d["mcr"] = False
    steps.append(("turn MCR off", d))
    d = copy.deepcopy(d)
    d["registries"] = [r for r in d["registries"] if r["name"] != "contosojapan"]
    d["mcr"] = True
    steps.append(("remove a registry, turn MCR on again", d))
    return steps


@pytest.fixture(scope="module")
def life(tmp_path_factory) -> list[dict]:
    """Each step's outputs, stderr and diff, rendered into one committed directory."""
    need_tool("git")
    repo = tmp_path_factory.mktemp("repo")
    git(repo, "init", "-q")
    (repo / ".git" / "info" / "exclude").write_text("fresh*\n")  # fresh renders, beside `rules`, not committed
    tags = latest_servicetags("Public")
    spec, out = repo / "acr.yaml", repo / "rules"
    history = []
    for title, data in _steps():
        spec.write_text(yaml.safe_dump(data, sort_keys=False))
        before = (
            {p.name: p.read_text() for p in out.iterdir() if p.name != ".acrrules-manifest"} if out.exists() else {}
        )
        r = render(spec, out, "--service-tags", tags, cwd=repo)
        after = {p.name: p.read_text() for p in out.iterdir() if p.name != ".acrrules-manifest"}
        fresh = repo / f"fresh{len(history)}"
        render(spec, fresh, "--service-tags", tags, cwd=repo)
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", title)
        diff = git(repo, "show", "--format=", "HEAD") if history else ""
        history.append(
            {
                "title": title,
                "before": before,
                "after": after,
                "err": r.err,
                "diff": diff,
                "fresh": {p.name: p.read_text() for p in fresh.iterdir() if p.name != ".acrrules-manifest"},
                "out": out,
                "tags": tags,
                "data": data,
                "repo": repo,
            }
        )
    return history


def test_every_step_is_accepted_by_the_real_consumers(life, tmp_path):
    """Each step's files, all of them, through the real consumers tests/consumers.py names (the kernel
    loads last)."""
    for i, step in enumerate(life):
        d = tmp_path / f"step{i}"
        d.mkdir()
        for name, text in step["after"].items():
            (d / name).write_text(text)
        assert sorted(step["after"]) == sorted(consumers.output_files()), step["title"]
        try:
            consumers.check_dirs(d)
        except AssertionError as e:
            raise AssertionError(f"{step['title']}: {e}") from None


def test_fresh_render_equals_incremental_render(life):
    for step in life:
        assert step["after"] == step["fresh"], step["title"]


def test_surviving_nsg_rules_keep_name_priority_and_address(life):
    for prev, step in zip(life, life[1:]):
        old_arm, new_arm = arm_rules(prev["after"]["nsg.json"]), arm_rules(step["after"]["nsg.json"])
        for name in old_arm.keys() & new_arm.keys():
            assert old_arm[name] == new_arm[name], (step["title"], name)
        old_tf, new_tf = tf_rules(prev["after"]["nsg.tf"]), tf_rules(step["after"]["nsg.tf"])
        assert old_tf.keys() & new_tf.keys(), step["title"]
        for address in old_tf.keys() & new_tf.keys():
            assert old_tf[address] == new_tf[address], (step["title"], address)
        # each rule sits at its tag's documented slot, whatever else is in the plan
        for res in new_arm.values():
            tag = res["properties"]["destinationAddressPrefix"]
            assert res["properties"]["priority"] == 200 + nsg_slot("AzureCloud", tag)


def test_the_diff_touches_only_the_rules_that_came_or_went(life, tmp_path):
    """git's default diff for changes that only add or only remove rules; for a change that does both,
    the default (Myers) may pair an added block with a removed one of the same shape, so there the
    histogram diff is read (README: `git config diff.algorithm histogram`); the rules are unchanged
    either way (test above)."""
    for prev, step in zip(life, life[1:]):
        old_arm, new_arm = arm_rules(prev["after"]["nsg.json"]), arm_rules(step["after"]["nsg.json"])
        gone, came = old_arm.keys() - new_arm.keys(), new_arm.keys() - old_arm.keys()
        algorithms = ["histogram"] + (["myers"] if not (gone and came) else [])
        old_tf, new_tf = tf_rules(prev["after"]["nsg.tf"]), tf_rules(step["after"]["nsg.tf"])
        tf_gone = {a.split(".", 1)[1] for a in old_tf.keys() - new_tf.keys()}
        tf_came = {a.split(".", 1)[1] for a in new_tf.keys() - old_tf.keys()}
        for algorithm in algorithms:
            removed, added = changed_owners(
                prev["after"]["nsg.json"], step["after"]["nsg.json"], "arm", tmp_path, algorithm
            )
            # a rule's own lines change only when it comes or goes; a neighbour's dependsOn may follow it
            assert {o for o in removed if not o.startswith("dependsOn:")} <= gone, (step["title"], removed)
            assert {o for o in added if not o.startswith("dependsOn:")} <= came, (step["title"], added)
            removed, added = changed_owners(prev["after"]["nsg.tf"], step["after"]["nsg.tf"], "tf", tmp_path, algorithm)
            assert removed <= tf_gone and added <= tf_came, (step["title"], algorithm, removed, added)
    # adding a Basic registry in a region in use adds no NSG rule: only the new region's two came
    step = next(s for s in life if s["title"].startswith("add a registry"))
    assert len(arm_rules(step["after"]["nsg.json"])) == len(arm_rules(step["before"]["nsg.json"])) + 2


def test_adding_a_replica_changes_exactly_its_rules(life):
    prev, step = life[0], life[1]
    old_arm, new_arm = arm_rules(prev["after"]["nsg.json"]), arm_rules(step["after"]["nsg.json"])
    assert new_arm.keys() - old_arm.keys() == {
        "acrrules-AzureContainerRegistry.NorthEurope",
        "acrrules-Storage.NorthEurope",
    }
    assert old_arm.keys() <= new_arm.keys()
    # the unified diff of nsg.tf adds two resource blocks and removes no line
    tf_diff = [line for line in step["diff"].split("diff --git") if line.startswith(" a/rules/nsg.tf")][0].splitlines()
    assert not [x for x in tf_diff if x.startswith("-") and not x.startswith("---")]
    assert len([x for x in tf_diff if x.startswith('+resource "azurerm_network_security_rule"')]) == 2


def test_removed_rules_are_announced_with_the_delete_command(life):
    for prev, step in zip(life, life[1:]):
        gone = sorted(arm_rules(prev["after"]["nsg.json"]).keys() - arm_rules(step["after"]["nsg.json"]).keys())
        # in the NSG the sample's settings name (nsg-tf's, which nsg-arm's rules share)
        announced = re.findall(
            r"az network nsg rule delete -g rg-network --nsg-name nsg-build-agents -n (\S+)", step["err"]
        )
        assert sorted(announced) == gone, step["title"]
    assert any("MicrosoftContainerRegistry" in s["err"] for s in life)  # turning MCR off announces it
    assert "an incremental ARM deployment keeps them" in life[2]["err"]


def test_the_kernel_takes_each_new_file_over_the_previous_one(life, tmp_path):
    """`nft -f` / `ipset restore` + `iptables-restore --noflush` of step N over step N-1 in one
    namespace: the sets hold exactly the new prefixes, nothing of the old ones is left."""
    need_root_netns()
    need_tool("nft", "ipset", "iptables-restore", "ip6tables-restore")
    for i, (prev, step) in enumerate(zip(life, life[1:])):
        d = tmp_path / f"s{i}"
        for which, files in (("old", prev["after"]), ("new", step["after"])):
            (d / which).mkdir(parents=True)
            for name, text in files.items():
                (d / which / name).write_text(text)
        script = (
            'set -e; for v in old new; do nft -f "$1/$v/acrrules.nft"; ipset restore -f "$1/$v/ipset.rules"; '
            'iptables-restore --noflush "$1/$v/iptables.rules"; '
            'ip6tables-restore --noflush "$1/$v/ip6tables.rules"; done; '
            "nft -j list ruleset; echo ===; ipset save"
        )
        p = subprocess.run(
            ["unshare", "-n", "sh", "-c", script, "sh", str(d)], capture_output=True, text=True, timeout=120
        )
        assert p.returncode == 0, p.stderr
        nft_json, ipset_save = p.stdout.split("===\n")
        tags = {r["properties"]["destinationAddressPrefix"] for r in arm_rules(step["after"]["nsg.json"]).values()}
        want = raw_prefixes(step["tags"], tags)
        sets = netns.nft_sets(netns.nft_objects(nft_json))
        assert sets[("inet", "acrrules", "acr_v4")] | sets[("inet", "acrrules", "acr_v6")] == want, step["title"]
        ipsets = netns.ipset_sets(ipset_save)
        assert ipsets["ACRRULES_v4"] | ipsets["ACRRULES_v6"] == want, step["title"]


# ---- quiet headers -------------------------------------------------------------------------------

FQDN_TAG_FILES = consumers.output_files(service_tags=False)  # the files no Service Tags file goes into


def test_fqdn_and_tag_outputs_do_not_depend_on_the_service_tags_file(tmp_path):
    spec = tmp_path / "acr.yaml"
    shutil.copy(SAMPLE, spec)
    outs = []
    for i, tags in enumerate([None, *servicetags_files("Public")[-3:]]):
        out = tmp_path / "rules" if i == 0 else tmp_path / f"rules{i}"
        render(spec, out, *(["--service-tags", tags] if tags else []))
        outs.append({n: (out / n).read_bytes() for n in FQDN_TAG_FILES})
        if tags:  # the IP outputs name the tags they were built from, with their changeNumbers, not the file
            assert sorted(p.name for p in out.iterdir() if p.name != ".acrrules-manifest") == sorted(
                consumers.output_files()
            )
            for name in set(consumers.output_files()) - set(FQDN_TAG_FILES):
                assert consumers.FILES[name].plain or "changeNumber of each tag used" in (out / name).read_text(), name
                assert tags.name not in (out / name).read_text(), name
            assert all(tags.name.encode() not in b for b in outs[-1].values())
        else:
            assert sorted(p.name for p in out.iterdir() if p.name != ".acrrules-manifest") == sorted(FQDN_TAG_FILES)
    assert all(o == outs[0] for o in outs)
    # a weekly job that renders with the next file reports no drift for these files
    r = run_cli("render", spec, "--out", tmp_path / "rules", "--check")
    assert r.code == 0, r.out


def test_headers_do_not_depend_on_working_directory_or_path_spelling(tmp_path):
    repo = tmp_path / "repo"
    (repo / "net" / "acr").mkdir(parents=True)
    shutil.copy(SAMPLE, repo / "net" / "acr.yaml")
    render(Path("net/acr.yaml"), Path("net/acr"), cwd=repo)
    want = {p.name: p.read_bytes() for p in (repo / "net" / "acr").iterdir() if p.name != ".acrrules-manifest"}
    assert b"from ../acr.yaml;" in want["nsg.tf"]
    spellings = [
        (repo / "net" / "acr.yaml", repo / "net" / "acr", tmp_path),
        (Path("./net/../net/acr.yaml"), Path("net/./acr/"), repo),
        (Path("acr.yaml"), Path("acr"), repo / "net"),
        (Path("../acr.yaml"), Path("."), repo / "net" / "acr"),
    ]
    for spec, out, cwd in spellings:
        r = run_cli("render", spec, "--out", out, "--check", cwd=cwd)
        assert r.code == 0, (spec, out, cwd, r.out)
    # through a symbolic link to the repository, the same bytes
    link = tmp_path / "link"
    link.symlink_to(repo)
    assert run_cli("render", link / "net" / "acr.yaml", "--out", link / "net" / "acr", "--check").code == 0


def test_stdout_names_the_description_relative_to_the_working_directory(tmp_path):
    (tmp_path / "sub").mkdir()
    shutil.copy(SAMPLE, tmp_path / "sub" / "acr.yaml")
    r = run_cli("render", tmp_path / "sub" / "acr.yaml", "--target", "nsg-tf", "--out", "-", cwd=tmp_path)
    assert "from sub/acr.yaml;" in r.out
    other = tmp_path / "elsewhere"
    other.mkdir()
    r = run_cli("render", "../sub/acr.yaml", "--target", "nsg-tf", "--out", "-", cwd=other)
    assert "from ../sub/acr.yaml;" in r.out


# ---- several rule sets side by side --------------------------------------------------------------

PROD = """\
version: 1
name: prod
registries:
  - {name: contosoprod, sku: Premium, location: eastus, replicas: [westeurope], data_endpoints: dedicated}
mcr: true
sources: ["10.20.0.0/16", "2001:db8:20::/48"]
outputs: [nsg-arm, nsg-tf, nftables, iptables]
targets:
  nsg-arm: {priority: 100}
  nsg-tf: {priority: 100, resource_group_name: rg-net, network_security_group_name: nsg-agents}
"""
TEST = """\
version: 1
name: test
registries:
  - {name: contosotest, sku: Standard, location: eastus}
sources: ["10.30.0.0/16"]
targets:
  nsg-arm: {priority: 400}
  nsg-tf: {priority: 400}
"""


@pytest.fixture(scope="module")
def side_by_side(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("two")
    tags = latest_servicetags("Public")
    for name, text in (("prod", PROD), ("test", TEST)):
        (root / f"{name}.yaml").write_text(text)
        render(root / f"{name}.yaml", root / "acr" / name, "--service-tags", tags)
    return root


def test_two_descriptions_share_an_nsg_and_a_firewall_policy(side_by_side):
    prod, test = side_by_side / "acr" / "prod", side_by_side / "acr" / "test"
    assert not (prod / "azure-firewall.tf").exists()  # not among prod's outputs
    for kind in ("nsg.json",):
        a, b = arm_rules((prod / kind).read_text()), arm_rules((test / kind).read_text())
        assert not a.keys() & b.keys()
        prios = [r["properties"]["priority"] for r in [*a.values(), *b.values()]]
        assert len(prios) == len(set(prios))
    a, b = tf_rules((prod / "nsg.tf").read_text()), tf_rules((test / "nsg.tf").read_text())
    assert not {x["name"] for x in a.values()} & {x["name"] for x in b.values()} and a and b
    assert not {x["priority"] for x in a.values()} & {x["priority"] for x in b.values()}
    fw = tf_rules((test / "azure-firewall.tf").read_text())
    default = tf_rules(next(iter([(REPO / "tests" / "golden" / "basic" / "azure-firewall.tf").read_text()])))
    assert [x["name"].strip('"') for x in fw.values()] == ["test"] != [x["name"].strip('"') for x in default.values()]


def test_two_modules_sit_in_one_terraform_root(side_by_side):
    """The README's root: two module blocks; terraform reads both (required_version checked by
    `terraform get`), and each module gets every variable it requires and no other."""
    need_tool("terraform")
    root = side_by_side
    (root / "main.tf").write_text(README_ROOT)
    assert terraform_fmt_check(root / "main.tf").returncode == 0
    r = subprocess.run(["terraform", "get"], cwd=root, capture_output=True, text=True, env=TF_ENV, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run(["terraform", "providers"], cwd=root, capture_output=True, text=True, env=TF_ENV, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("provider[registry.terraform.io/hashicorp/azurerm] ~> 4.0") == 2, r.stdout
    plain = SerializationOptions(with_comments=False, explicit_blocks=False)
    doc = hcl2.loads(README_ROOT, serialization_options=plain)
    for block in doc["module"]:
        ((label, args),) = block.items()
        source = root / args["source"].strip('"')
        variables = {}
        for tf in source.glob("*.tf"):
            for var in hcl2.loads(tf.read_text(), serialization_options=plain).get("variable", []):
                variables.update({n.strip('"'): v for n, v in var.items()})
        given = set(args) - {"source"}
        required = {n for n, v in variables.items() if "default" not in v}
        assert required <= given <= set(variables), (label, required, given)


def test_required_version_admits_opentofu_1_6():
    text = (REPO / "tests" / "golden" / "basic" / "versions.tf").read_text()
    constraint = re.search(r'required_version = ">= ([0-9.]+)"', text).group(1)
    assert tuple(map(int, constraint.split("."))) <= (1, 6, 0)
    assert 'version = "~> 4.0"' in text and 'source  = "hashicorp/azurerm"' in text


README_ROOT = """\
module "acr_prod" {
  source                      = "./acr/prod"
  resource_group_name         = "rg-net"
  network_security_group_name = "nsg-agents"
}

module "acr_test" {
  source                      = "./acr/test"
  firewall_policy_id          = "/subscriptions/0000/resourceGroups/rg-hub/providers/Microsoft.Network/firewallPolicies/hub"
  resource_group_name         = "rg-net"
  network_security_group_name = "nsg-agents"
}
"""


def test_two_netfilter_rule_sets_load_into_one_host(side_by_side):
    need_root_netns()
    need_tool("nft", "ipset", "iptables-restore", "ip6tables-restore")
    prod, test = side_by_side / "acr" / "prod", side_by_side / "acr" / "test"
    script = (
        'set -e; for round in 1 2; do for d in "$1" "$2"; do nft -f "$d/acrrules.nft"; '
        'ipset restore -f "$d/ipset.rules"; iptables-restore --noflush "$d/iptables.rules"; '
        'ip6tables-restore --noflush "$d/ip6tables.rules"; done; done; '
        "nft -j list ruleset; echo ===; ipset save; echo ===; iptables-save -t filter"
    )
    p = subprocess.run(
        ["unshare", "-n", "sh", "-c", script, "sh", str(prod), str(test)], capture_output=True, text=True, timeout=120
    )
    assert p.returncode == 0, p.stderr
    nft_json, ipset_save, ipt = p.stdout.split("===\n")
    tables = {(o["table"]["family"], o["table"]["name"]) for o in netns.nft_objects(nft_json) if "table" in o}
    assert {("inet", "prod"), ("inet", "test")} <= tables
    sets = netns.ipset_sets(ipset_save)
    assert {"PROD_v4", "PROD_v6", "TEST_v4", "TEST_v6"} <= sets.keys()
    assert ":PROD - " in ipt and ":TEST - " in ipt


# ---- targets chosen per description, platform features -------------------------------------------


def test_a_dual_stack_description_without_azure_firewall_is_valid(tmp_path):
    spec = tmp_path / "onprem.yaml"
    spec.write_text(
        "version: 1\nregistries:\n  - {name: contosoacr, sku: Basic, location: eastus}\n"
        "sources: ['10.0.0.0/8', '2001:db8::/48']\noutputs: [nftables, iptables]\n"
    )
    r = run_cli("validate", spec)
    assert r.code == 0 and "targets nftables, iptables" in r.out, r.err
    r = run_cli("render", spec, "--out", tmp_path / "out")
    assert r.code == 0 and not any((tmp_path / "out").iterdir())
    assert r.err.splitlines() == [
        "skipped nftables: it needs IP prefixes: add --service-tags ServiceTags_<Cloud>_<date>.json",
        "skipped iptables: it needs IP prefixes: add --service-tags ServiceTags_<Cloud>_<date>.json",
    ]
    r = run_cli("render", spec, "--out", tmp_path / "out", "--service-tags", latest_servicetags("Public"))
    assert r.code == 0 and sorted(
        p.name for p in (tmp_path / "out").iterdir() if p.name != ".acrrules-manifest"
    ) == sorted(consumers.output_files(["nftables", "iptables"]))
    bad = run_cli("validate", spec, "--target", "azure-firewall")
    assert bad.code == 2 and f"{spec}:4:25: Azure Firewall does not support IPv6 sources" in bad.err


def test_china_firewall_network_rules_are_refused_with_the_service_tags_file(tmp_path):
    """Real case: no ACR, Storage or MCR tag of the China file lists FW in networkFeatures."""
    spec = tmp_path / "china.yaml"
    spec.write_text(
        (REPO / "samples" / "china.yaml").read_text() + "targets:\n  azure-firewall: {network_rules: true}\n"
    )
    tags = latest_servicetags("China")
    out = tmp_path / "out"
    r = run_cli("render", spec, "--service-tags", tags, "--out", out)
    assert r.code == 2 and not out.exists()
    (line,) = r.err.splitlines()
    assert line.startswith(f"{spec}:") and f"the Service Tags file {tags} does not list FW" in line
    assert "AzureContainerRegistry.China" in line and "set network_rules: false" in line
    # the NSG targets are fine there (every tag lists NSG), and without network rules so is the firewall
    assert run_cli("render", REPO / "samples" / "china.yaml", "--service-tags", tags, "--out", out).code == 0


def test_a_tag_without_nsg_in_its_features_is_refused_for_nsg_targets(tmp_path):
    data = json.loads(latest_servicetags("Public").read_text())
    for v in data["values"]:
        if v["name"] == "Storage.WestEurope":
            v["properties"]["networkFeatures"] = ["API", "FW"]
    tags = tmp_path / "ServiceTags_Public_20251103.json"
    tags.write_text(json.dumps(data))
    spec = tmp_path / "acr.yaml"
    shutil.copy(SAMPLE, spec)
    r = run_cli("render", spec, "--service-tags", tags, "--out", tmp_path / "out")
    assert r.code == 2 and not (tmp_path / "out").exists()
    lines = r.err.splitlines()
    assert len(lines) == 2 and all(f"{spec}:11:16: " in x for x in lines), lines  # replicas[0]: westeurope
    assert "nsg-arm: the Service Tags file" in lines[0] and "does not list NSG" in lines[0]
    assert "Storage.WestEurope (API, FW)" in lines[0] and "nsg-tf" in lines[1]
    assert run_cli("render", spec, "--service-tags", tags, "--target", "nftables", "--out", tmp_path / "ok").code == 0
