"""`acrrules report --base REF` (spec §8, "Removed NSG rules are not forgotten"), in a real git
repository: a pull request whose author rendered and committed the new rules (so the files on disk
already lack the rules that leave, and render's notice went to someone else's terminal) still lists
every NSG rule that leaves, with the command that deletes it in the NSG the settings name."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path

import pytest
from conftest import need_tool, run_cli

ENV = dict(
    os.environ,
    GIT_AUTHOR_NAME="t",
    GIT_AUTHOR_EMAIL="t@example.org",
    GIT_COMMITTER_NAME="t",
    GIT_COMMITTER_EMAIL="t@example.org",
    GIT_CONFIG_GLOBAL="/dev/null",
    GIT_CONFIG_NOSYSTEM="1",
)

SPEC = """\
version: 1
name: prod
registries:
  - {name: contosoprod, sku: Premium, location: eastus, replicas: [westeurope, northeurope]}
outputs: [nsg-arm, lists]
targets:
  nsg-arm: {priority: 100, resource_group_name: "rg(net)", network_security_group_name: nsg-agents}
"""


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True, env=ENV).stdout


def arm_rule_names(text: str) -> set[str]:
    doc = json.loads(text)
    return {r["name"].split("'")[-2] for r in doc["resources"]}


@pytest.fixture
def pull_request(tmp_path) -> Path:
    """main: prod with three regions, rendered; the branch `pr` drops northeurope, rendered and committed."""
    need_tool("git")
    repo = tmp_path / "repo"
    (repo / "acr").mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    spec = repo / "acr" / "prod.acr.yaml"
    spec.write_text(SPEC)
    assert run_cli("render", spec, "--out", repo / "rules" / "prod").code == 0
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "prod")
    git(repo, "checkout", "-qb", "pr")
    spec.write_text(SPEC.replace(", northeurope]", "]"))
    assert run_cli("render", spec, "--out", repo / "rules" / "prod").code == 0  # someone else's terminal
    git(repo, "commit", "-qam", "drop northeurope")
    return repo


def test_base_lists_every_rule_that_left_since_the_base_branch(pull_request):
    repo = pull_request
    acr = repo / "acr"
    # on disk the rules are already up to date: without --base nothing leaves
    r = run_cli("report", "prod.acr.yaml", "--out", "../rules/prod", "--format", "json", cwd=acr)
    assert r.code == 0, r.err
    assert json.loads(r.out)["out"]["removedRules"] == []
    # against the base branch: the rules the base's nsg.json has and the new one does not
    r = run_cli("report", "prod.acr.yaml", "--out", "../rules/prod", "--base", "main", "--format", "json", cwd=acr)
    assert r.code == 0, r.err
    out = json.loads(r.out)["out"]
    was = arm_rule_names(git(repo, "show", "main:rules/prod/nsg.json"))
    now = arm_rule_names((repo / "rules" / "prod" / "nsg.json").read_text())
    gone = sorted(was - now)
    assert len(gone) == 2 and all("NorthEurope" in n for n in gone)
    assert sorted(x["name"] for x in out["removedRules"]) == gone
    for x in out["removedRules"]:  # the shell reads the command back as the right argv
        assert shlex.split(x["command"]) == [
            "az", "network", "nsg", "rule", "delete", "-g", "rg(net)", "--nsg-name", "nsg-agents", "-n", x["name"],
        ]  # fmt: skip
    assert out["base"] == "main"
    status = {f["file"]: f["status"] for f in out["files"]}
    assert status == {"nsg.json": "changed", "edl-fqdn.txt": "unchanged"}
    # the Markdown says the same, against the base
    md = run_cli("report", "prod.acr.yaml", "--out", "../rules/prod", "--base", "main", cwd=acr)
    assert md.code == 0 and "## Files in `../rules/prod`, against `main`" in md.out
    for x in out["removedRules"]:
        assert f"`{x['command']}`" in md.out
    assert "where you deploy it" not in md.out  # the settings name both
    # a file that is new since the base is "added"; the committed tree is read, not the working tree
    git(repo, "rm", "-q", "rules/prod/edl-fqdn.txt")
    git(repo, "commit", "-qm", "gone")
    r = run_cli("report", "acr/prod.acr.yaml", "--out", "rules/prod", "--base", "HEAD", "--format", "json", cwd=repo)
    files = {f["file"]: f["status"] for f in json.loads(r.out)["out"]["files"]}
    assert files == {"nsg.json": "unchanged", "edl-fqdn.txt": "added"}


def test_base_without_the_settings_names_keeps_the_placeholders(pull_request):
    repo = pull_request
    spec = repo / "acr" / "prod.acr.yaml"
    unnamed = SPEC.replace(', resource_group_name: "rg(net)", network_security_group_name: nsg-agents', "")
    spec.write_text(unnamed.replace(", northeurope]", "]"))
    r = run_cli("report", spec, "--out", repo / "rules" / "prod", "--base", "main", "--format", "json")
    assert r.code == 0, r.err
    cmds = [x["command"] for x in json.loads(r.out)["out"]["removedRules"]]
    assert cmds and all(c.startswith("az network nsg rule delete -g RG --nsg-name NSG -n ") for c in cmds)


@pytest.mark.parametrize(
    ("ref", "words"),
    [
        ("no-such-branch", "is no commit of the repository"),
        ("--output=x", "give a git revision"),
        ("main:rules", "is no commit"),
    ],
)
def test_a_bad_base_is_one_clear_error(pull_request, ref, words):
    repo = pull_request
    r = run_cli("report", repo / "acr" / "prod.acr.yaml", "--out", repo / "rules" / "prod", f"--base={ref}")
    assert r.code == 2 and len(r.err.splitlines()) == 1 and words in r.err, r.err
    assert r.out == ""


def test_base_needs_out_and_a_repository(tmp_path):
    spec = tmp_path / "prod.acr.yaml"
    spec.write_text(SPEC)
    r = run_cli("report", spec, "--base", "main")
    assert r.code == 2 and "give --out DIR" in r.err, r.err
    (tmp_path / "rules").mkdir()
    r = run_cli("report", spec, "--out", tmp_path / "rules", "--base", "main")
    assert r.code == 2 and "in no git repository" in r.err and len(r.err.splitlines()) == 1, r.err


def test_render_names_the_nsg_of_the_settings_in_its_notice(tmp_path):
    spec = tmp_path / "prod.acr.yaml"
    spec.write_text(SPEC)
    out = tmp_path / "rules"
    assert run_cli("render", spec, "--out", out).code == 0
    spec.write_text(SPEC.replace(", northeurope]", "]"))
    r = run_cli("render", spec, "--out", out)
    assert r.code == 0
    lines = [x for x in r.err.splitlines() if "az network" in x]
    assert len(lines) == 2
    for line in lines:
        argv = shlex.split(line.split(": ", 1)[1])
        assert argv[:10] == [
            "az",
            "network",
            "nsg",
            "rule",
            "delete",
            "-g",
            "rg(net)",
            "--nsg-name",
            "nsg-agents",
            "-n",
        ]
    assert "RG and NSG" not in r.err
