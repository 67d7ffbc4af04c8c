"""A repository of descriptions as one project (spec §8, issue 14): acrrules.toml, commands without
SPEC, --service-tags DIR, quiet weeks, orphans, and `render` that writes only where asked.

The project is samples/project (three descriptions, two clouds) copied into a temporary directory;
its servicetags/ directory holds links to the real files in ../shared/data/servicetags (never copies
in the repository), or files derived from them for the weeks the tests simulate.
"""

from __future__ import annotations

import json
import os
import shutil
import tomllib
from pathlib import Path

import jsonschema
import pytest
from conftest import REPO, SHARED, need_shared, need_tool, run_cli, service_tag, servicetags_name

SAMPLE_PROJECT = REPO / "samples" / "project"
PUBLIC = "ServiceTags_Public_20251103.json"
GOV = "ServiceTags_AzureGovernment_20251020.json"
MANIFEST = ".acrrules-manifest"


def tags_source(name: str) -> Path:
    need_shared()
    return SHARED / "data" / "servicetags" / name


def make_project(root: Path, *, tags: tuple[str, ...] = (PUBLIC, GOV)) -> Path:
    shutil.copytree(SAMPLE_PROJECT, root, ignore=shutil.ignore_patterns("rules", "servicetags", ".gitignore"))
    (root / "servicetags").mkdir()
    for name in tags:
        (root / "servicetags" / name).symlink_to(tags_source(name))
    return root


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "servicetags" not in p.parts
    }


def rules(root: Path) -> dict[str, bytes]:
    return {k: v for k, v in snapshot(root).items() if k.startswith("rules/")}


def week(source: str, name: str, directory: Path, change=None) -> Path:
    """A later weekly file derived from a real one: a higher changeNumber, and `change(data)` applied."""
    data = json.loads(tags_source(source).read_text(encoding="utf-8"))
    data["changeNumber"] += 1
    if change is not None:
        change(data)
    path = directory / name
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def tag(data: dict, name: str) -> dict:
    return next(v for v in data["values"] if v["name"] == name)


# ---- the project renders, checks and validates as one --------------------------------------------


def test_render_check_validate_and_report_act_on_every_description(tmp_path):
    root = make_project(tmp_path / "p")
    r = run_cli("validate", cwd=root)
    assert r.code == 0, r.err
    assert sorted(line.split(":")[0] for line in r.out.splitlines()) == [
        "acr/batch.acr.yaml",
        "acr/gov.acr.yaml",
        "acr/prod.acr.yaml",
    ]
    r = run_cli("render", cwd=root)
    assert r.code == 0, r.err
    written = rules(root)
    assert {k.split("/")[1] for k in written} == {"prod", "batch", "gov"}
    # Each description renders its IP targets from the newest file of its own cloud.
    assert "Service Tags of cloud AzureGovernment" in written["rules/gov/acrrules.nft"].decode()
    assert "Service Tags of cloud Public" in written["rules/prod/acrrules.nft"].decode()
    assert "rules/prod/edl-ipv4.txt" in written and "rules/gov/ipset.rules" in written
    # From a subdirectory the project is found in the parent, and everything is up to date.
    r = run_cli("render", "--check", cwd=root / "acr")
    assert r.code == 0, r.out + r.err
    r = run_cli("report", "--format", "json", cwd=root)
    assert r.code == 0, r.err
    report = json.loads(r.out)
    assert sorted(d["name"] for d in report["descriptions"]) == ["batch", "gov", "prod"]
    assert {d["cloud"] for d in report["descriptions"]} == {"AzureCloud", "AzureUSGovernment"}


def test_a_sources_change_that_is_not_rendered_fails_the_check_for_the_ip_outputs(tmp_path):
    """Issue 14, problem 1: without arguments the check covers the nftables, iptables and lists outputs."""
    root = make_project(tmp_path / "p")
    assert run_cli("render", cwd=root).code == 0
    spec = root / "acr" / "gov.acr.yaml"
    spec.write_text(spec.read_text().replace('["192.168.40.0/24"]', '["192.168.40.0/24", "192.168.41.0/24"]'))
    r = run_cli("render", "--check", cwd=root)
    assert r.code == 1, r.err
    for name in ("acrrules.nft", "iptables.rules"):
        assert f"rules/gov/{name}" in r.out
        assert "192.168.41.0/24" in r.out
    assert run_cli("render", cwd=root).code == 0
    assert run_cli("render", "--check", cwd=root).code == 0


def test_service_tags_file_of_each_cloud_is_read_once(tmp_path, monkeypatch):
    from acrrules import servicetags

    root = make_project(tmp_path / "p")
    spec = root / "acr" / "prod.acr.yaml"
    for i in range(3):  # six descriptions of the Public cloud
        (root / "acr" / f"more{i}.acr.yaml").write_text(
            spec.read_text()
            .replace("name: prod", f"name: more{i}")
            .replace("priority: 300", f"priority: {320 + i}")
            .replace("priority: 100", f"priority: {700 + 300 * i}")  # an NSG block of its own
        )
    reads = []
    real = servicetags._read
    monkeypatch.setattr(servicetags, "_read", lambda path: reads.append(os.path.basename(path)) or real(path))
    servicetags._LOADED.clear()
    r = run_cli("render", cwd=root)
    assert r.code == 0, r.err
    assert sorted(reads) == sorted([PUBLIC, GOV])


def test_schema_project_describes_the_sample(tmp_path):
    r = run_cli("schema", "--project")
    assert r.code == 0
    schema = json.loads(r.out)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema == json.loads((REPO / "schemas" / "project.schema.json").read_text())
    jsonschema.validate(tomllib.loads((SAMPLE_PROJECT / "acrrules.toml").read_text()), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"descriptions": [{"paths": ["a.yaml"], "out": "x", "outs": 1}]}, schema)


# ---- bad project files: one located message, exit 2, nothing written ------------------------------

GOOD = 'service-tags = "servicetags"\n\n[[descriptions]]\npaths = ["acr/*.acr.yaml"]\nout = "rules/{name}"\n'

BAD_PROJECTS = {
    # case: (acrrules.toml, line, column, words in the message)
    "unknown-key": (GOOD.replace('out = "rules/{name}"', 'out = "rules/{name}"\ntarget = "nsg-arm"'), 6, 1, "'target'"),
    "unknown-top-key": ("servicetags = 'x'\n" + GOOD, 1, 1, "did you mean 'service-tags'"),
    "bad-toml": (GOOD.replace('out = "rules/{name}"', 'out = "rules/{name}'), 5, 20, "not valid TOML"),
    "missing-description": (
        GOOD.replace('paths = ["acr/*.acr.yaml"]', 'paths = ["acr/prod.acr.yaml", "acr/staging.acr.yaml"]'),
        4,
        31,
        "no such file",
    ),
    "empty-glob": (GOOD.replace("acr/*.acr.yaml", "acr/*.acrrules.yaml"), 4, 10, "matches no file"),
    "duplicate-out": (GOOD.replace("rules/{name}", "rules"), 5, 7, "already writes"),
    "no-descriptions": ('service-tags = "servicetags"\n', 1, 1, "needs 'descriptions'"),
    "bad-placeholder": (GOOD.replace("{name}", "{env}"), 5, 7, "unknown placeholder {env}"),
    "tags-dir-missing": (GOOD.replace('"servicetags"', '"tags"'), 1, 16, "does not exist"),
    "table-not-array": (GOOD.replace("[[descriptions]]", "[descriptions]"), 3, 1, "expected an array, got a table"),
    "inline-unknown-key": (
        'service-tags = "servicetags"\ndescriptions = [{paths = ["acr/*.acr.yaml"], out = "r/{name}", extra = 1}]\n',
        2,
        64,
        "unknown key 'extra'",
    ),
}


@pytest.mark.parametrize("case", BAD_PROJECTS, ids=list(BAD_PROJECTS))
def test_bad_project_file(tmp_path, case):
    text, line, column, words = BAD_PROJECTS[case]
    root = make_project(tmp_path / "p")
    (root / "acrrules.toml").write_text(text, encoding="utf-8")
    for command in (["render"], ["render", "--check"]):
        r = run_cli(*command, cwd=root)
        assert r.code == 2, (r.code, r.err)
        assert "Traceback" not in r.err
        lines = r.err.splitlines()
        assert len(lines) == 1, r.err
        assert lines[0].startswith(f"acrrules.toml:{line}:{column}: "), lines[0]
        assert words in lines[0], lines[0]
        assert not (root / "rules").exists()


def test_service_tags_dir_without_a_file_of_a_needed_cloud(tmp_path):
    root = make_project(tmp_path / "p", tags=(PUBLIC,))  # no AzureGovernment file for gov.acr.yaml
    r = run_cli("render", cwd=root)
    assert r.code == 2 and len(r.err.splitlines()) == 1, r.err
    line = next(
        i for i, t in enumerate((root / "acrrules.toml").read_text().splitlines(), 1) if t.startswith("service-")
    )
    assert r.err.startswith(f"acrrules.toml:{line}:16: "), r.err
    assert "no ServiceTags_AzureGovernment_<YYYYMMDD>.json" in r.err and "acr/gov.acr.yaml" in r.err
    assert "acrrules tags fetch" in r.err
    assert not (root / "rules").exists()


def test_unreadable_service_tags_dir(tmp_path):
    root = make_project(tmp_path / "p")
    (root / "acrrules.toml").write_text(GOOD.replace('"servicetags"', '"acr/prod.acr.yaml"'))
    r = run_cli("render", cwd=root)
    assert r.code == 2 and r.err.startswith("acrrules.toml:1:16: ") and "is not a directory" in r.err, r.err
    assert not (root / "rules").exists()


def test_an_invalid_description_writes_nothing_for_any(tmp_path):
    root = make_project(tmp_path / "p")
    spec = root / "acr" / "gov.acr.yaml"
    spec.write_text(spec.read_text().replace("usgovvirginia", "usgovvirginiaa"))
    r = run_cli("render", cwd=root)
    assert r.code == 2 and r.err.startswith("acr/gov.acr.yaml:"), r.err
    assert not (root / "rules").exists()


# ---- --service-tags DIR --------------------------------------------------------------------------


def test_service_tags_dir_takes_the_newest_file_of_the_spec_cloud(tmp_path):
    tags = tmp_path / "tags"
    tags.mkdir()
    for name in ("ServiceTags_Public_20251027.json", PUBLIC, "ServiceTags_Public_20251020.json", GOV):
        (tags / name).symlink_to(tags_source(name))
    spec = tmp_path / "acr.yaml"
    shutil.copy(SAMPLE_PROJECT / "acr" / "prod.acr.yaml", spec)
    a = run_cli("render", spec, "--service-tags", tags, "--out", tmp_path / "a", "--target", "nftables")
    b = run_cli("render", spec, "--service-tags", tags / PUBLIC, "--out", tmp_path / "b", "--target", "nftables")
    assert a.code == b.code == 0, a.err + b.err
    assert (tmp_path / "a" / "acrrules.nft").read_bytes() == (tmp_path / "b" / "acrrules.nft").read_bytes()


# ---- quiet weeks (issue 14, problem 4) ------------------------------------------------------------


def test_a_quiet_week_changes_no_output_and_keeps_max_age_passing(tmp_path, monkeypatch):
    root = make_project(tmp_path / "p")
    assert run_cli("render", cwd=root).code == 0
    before = rules(root)
    monkeypatch.setenv("ACRRULES_TODAY", "2025-11-26")  # 23 days after the Public file, 37 after the Gov one
    r = run_cli("render", "--max-age", "14", cwd=root)
    assert r.code == 2 and "more than --max-age 14" in r.err, r.err
    # The weekly bot fetches this week's files, in which no tag the project uses changed (Sql did,
    # and each file's changeNumber), and keeps only the newest file of each cloud.
    bump = lambda d: tag(d, "Sql")["properties"].update(changeNumber=999)  # noqa: E731
    week(PUBLIC, "ServiceTags_Public_20251124.json", root / "servicetags", bump)
    week(GOV, "ServiceTags_AzureGovernment_20251124.json", root / "servicetags")
    (root / "servicetags" / "notes.txt").write_text("ours\n")
    (root / "servicetags" / "ServiceTags_Public_20251101.json.d").mkdir()
    (root / "servicetags" / "ServiceTags_Public_20251102.json").mkdir()  # not a file: neither read nor removed
    r = run_cli("tags", "prune", cwd=root)
    assert r.code == 0, r.err
    assert sorted(p.name for p in (root / "servicetags").iterdir()) == [
        "ServiceTags_AzureGovernment_20251124.json",
        "ServiceTags_Public_20251101.json.d",
        "ServiceTags_Public_20251102.json",
        "ServiceTags_Public_20251124.json",
        "notes.txt",
    ]
    r = run_cli("render", "--max-age", "14", cwd=root)
    assert r.code == 0, r.err
    assert not any(line.startswith(("wrote", "removed")) for line in r.err.splitlines()), r.err
    assert rules(root) == before
    assert run_cli("render", "--check", cwd=root).code == 0


def test_a_week_that_changes_a_used_tag_changes_the_ip_outputs(tmp_path):
    root = make_project(tmp_path / "p")
    assert run_cli("render", cwd=root).code == 0
    before = rules(root)

    def add_prefix(d):
        t = tag(d, "AzureContainerRegistry.EastUS")["properties"]
        t["addressPrefixes"] = [*t["addressPrefixes"], "203.0.113.0/24"]
        t["changeNumber"] = int(t["changeNumber"]) + 1

    week(PUBLIC, "ServiceTags_Public_20251110.json", root / "servicetags", add_prefix)
    assert run_cli("render", "--check", cwd=root).code == 1
    assert run_cli("render", cwd=root).code == 0
    after = rules(root)
    changed = sorted(k for k in before if before[k] != after[k])
    assert changed == sorted(f"rules/{n}/{f}" for n in ("prod", "batch") for f in ("acrrules.nft", "edl-ipv4.txt"))
    need_tool("nft")
    import subprocess

    for n in ("prod", "batch"):
        p = subprocess.run(
            ["nft", "-c", "-f", str(root / "rules" / n / "acrrules.nft")], capture_output=True, text=True
        )
        assert p.returncode == 0, p.stderr
        assert "203.0.113.0/24" in after[f"rules/{n}/edl-ipv4.txt"].decode()


# ---- orphans (issue 14, problem 3) -----------------------------------------------------------------


def test_orphans_are_reported_and_removed_and_nothing_else(tmp_path):
    root = make_project(tmp_path / "p")
    assert run_cli("render", cwd=root).code == 0
    prod = root / "rules" / "prod"
    # The user's own files, some with names acrrules writes: never touched.
    (prod / "README.md").write_text("our notes\n")
    (prod / "main.tf").write_text('module "x" {}\n')
    (prod / "calico.yaml").write_text("# our own policy\nkind: GlobalNetworkPolicy\n")  # no acrrules header
    user_files = {p: p.read_bytes() for p in (prod / "README.md", prod / "main.tf", prod / "calico.yaml")}
    spec = root / "acr" / "prod.acr.yaml"
    spec.write_text(spec.read_text().replace("outputs: [azure-firewall, nsg-tf, nftables, lists]", "outputs: [nsg-tf]"))
    r = run_cli("render", "--check", cwd=root)
    assert r.code == 1, r.err
    orphans = ["acrrules.nft", "azure-firewall.tf", "edl-fqdn.txt", "edl-ipv4.txt", "edl-ipv6.txt"]
    for name in orphans:
        assert f"rules/prod/{name}: acrrules wrote it earlier, but no target writes it now" in r.err, r.err
    assert "README.md" not in r.err and "main.tf" not in r.err and "calico.yaml" not in r.err
    assert all((prod / n).exists() for n in orphans)  # --check writes nothing
    r = run_cli("render", cwd=root)
    assert r.code == 0, r.err
    removed = sorted(line.split()[1].rstrip(":") for line in r.err.splitlines() if line.startswith("removed "))
    assert removed == [f"rules/prod/{n}" for n in orphans]
    assert sorted(p.name for p in prod.iterdir()) == sorted(
        [MANIFEST, "README.md", "calico.yaml", "main.tf", "nsg.tf", "versions.tf"]
    )
    assert all(p.read_bytes() == data for p, data in user_files.items())
    assert run_cli("render", "--check", cwd=root).code == 0
    # versions.tf goes with the last Terraform target.
    spec.write_text(spec.read_text().replace("outputs: [nsg-tf]", "outputs: [nftables]"))
    r = run_cli("render", cwd=root)
    assert r.code == 0 and not (prod / "versions.tf").exists() and not (prod / "nsg.tf").exists(), r.err
    assert all(p.read_bytes() == data for p, data in user_files.items())


def test_plain_lists_are_removed_only_when_the_manifest_lists_them(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    spec = tmp_path / "acr.yaml"
    spec.write_text((REPO / "samples" / "basic.yaml").read_text() + "outputs: [nsg-arm]\n")
    for name in ("edl-fqdn.txt", "no_proxy.txt"):  # the user's own lists: no header, not in a manifest
        (out / name).write_text("example.com\n")
    assert run_cli("render", spec, "--out", out).code == 0
    assert (out / "edl-fqdn.txt").read_text() == "example.com\n" and (out / "no_proxy.txt").exists()
    spec.write_text(spec.read_text().replace("outputs: [nsg-arm]", "outputs: [nsg-arm, lists]"))
    assert run_cli("render", spec, "--out", out).code == 0  # now acrrules writes edl-fqdn.txt: it is its own
    spec.write_text(spec.read_text().replace("outputs: [nsg-arm, lists]", "outputs: [nsg-arm]"))
    r = run_cli("render", spec, "--check", "--out", out)
    assert r.code == 1 and "edl-fqdn.txt: acrrules wrote it earlier" in r.err and "no_proxy.txt" not in r.err
    assert run_cli("render", spec, "--out", out).code == 0
    assert not (out / "edl-fqdn.txt").exists() and (out / "no_proxy.txt").read_text() == "example.com\n"


def test_a_target_left_out_by_this_run_is_no_orphan(tmp_path):
    out = tmp_path / "out"
    spec = tmp_path / "acr.yaml"
    shutil.copy(REPO / "samples" / "basic.yaml", spec)
    assert run_cli("render", spec, "--out", out, "--service-tags", tags_source(PUBLIC)).code == 0
    before = {p.name for p in out.iterdir()}
    for args in (["--target", "nsg-arm"], []):  # one target; no Service Tags file (IP targets skipped)
        r = run_cli("render", spec, "--out", out, *args)
        assert r.code == 0 and "removed" not in r.err, r.err
        assert {p.name for p in out.iterdir()} == before


# ---- writes only where asked; tags diff with several specs (issue 14, problem 7) ------------------------


def test_render_without_out_and_without_project_refuses(tmp_path):
    shutil.copy(REPO / "samples" / "basic.yaml", tmp_path / "acr.yaml")
    r = run_cli("render", "acr.yaml", cwd=tmp_path)
    assert r.code == 2 and "--out DIR" in r.err and "--out -" in r.err, r.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["acr.yaml"]
    r = run_cli("render", cwd=tmp_path)
    assert r.code == 2 and "no acrrules.toml" in r.err, r.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["acr.yaml"]


def test_tags_diff_compares_the_tags_of_every_spec(tmp_path):
    """`--spec A --spec B` used to compare B's tags only (exit 0 while A's tags changed)."""
    old, new = tags_source("ServiceTags_Public_20251027.json"), tags_source(PUBLIC)
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    both = None
    for region in ("eastus", "westeurope", "japaneast", "brazilsouth", "australiaeast", "centralindia"):
        a.write_text(f"version: 1\nregistries:\n  - name: aregistry\n    sku: Basic\n    location: {region}\n")
        ra = run_cli("tags", "diff", old, new, "--spec", a, "--format", "json")
        if ra.code == 1:
            both = region
            break
    assert both is not None, "no region whose tags changed between the two weeks"
    b.write_text("version: 1\nregistries:\n  - name: bregistry\n    sku: Basic\n    location: westeurope\n")
    rb = run_cli("tags", "diff", old, new, "--spec", b, "--format", "json")
    r = run_cli("tags", "diff", old, new, "--spec", a, "--spec", b, "--format", "json")
    assert r.code == 1, r.err
    got = json.loads(r.out)
    want = {c["tag"] for c in json.loads(ra.out)["changed"]} | {c["tag"] for c in json.loads(rb.out)["changed"]}
    assert {c["tag"] for c in got["changed"]} == want
    assert got["compared"] >= json.loads(ra.out)["compared"]


def test_tags_diff_of_the_project_compares_previous_and_newest(tmp_path):
    root = make_project(tmp_path / "p")
    r = run_cli("tags", "diff", cwd=root)
    assert r.code == 0 and "nothing to compare" in r.err, r.err

    def add_prefix(d):
        t = tag(d, "AzureContainerRegistry.EastUS")["properties"]
        t["addressPrefixes"] = [*t["addressPrefixes"], "203.0.113.0/24"]
        t["changeNumber"] += 1  # as Microsoft does with every change (else: exit 3, a file edited by hand)

    week(PUBLIC, "ServiceTags_Public_20251110.json", root / "servicetags", add_prefix)
    r = run_cli("tags", "diff", "--format", "json", cwd=root)
    assert r.code == 1, r.err
    (diff,) = json.loads(r.out)
    assert [c["tag"] for c in diff["changed"]] == ["AzureContainerRegistry.EastUS"]
    assert diff["changed"][0]["added"] == ["203.0.113.0/24"]


# ---- the policies below the CLI: the API returns them as warnings ---------------------------------


def test_the_api_gives_what_render_says_as_warnings(monkeypatch):
    import acrrules

    d = acrrules.load(REPO / "samples" / "basic.yaml")
    with pytest.warns(acrrules.AcrrulesWarning) as caught:
        files = acrrules.render(d)
    said = [str(w.message) for w in caught]
    assert any(w.startswith("skipped nftables: it needs IP prefixes: pass service_tags=") for w in said)
    assert "acrrules.nft" not in files
    monkeypatch.setenv("ACRRULES_TODAY", "2025-12-01")
    with pytest.warns(acrrules.AcrrulesWarning, match="28 days old"):
        files = acrrules.render(d, service_tags=tags_source(PUBLIC))
    assert "acrrules.nft" in files


def test_render_spec_of_the_project_without_out_goes_to_its_directory(tmp_path):
    root = make_project(tmp_path / "p")
    r = run_cli("render", "acr/batch.acr.yaml", "--target", "nsg-tf", cwd=root)
    assert r.code == 0, r.err
    assert (root / "rules" / "batch" / "nsg.tf").is_file()
    (root / "other.acr.yaml").write_text((REPO / "samples" / "basic.yaml").read_text())
    r = run_cli("render", "other.acr.yaml", cwd=root)  # not a description of the project: no place to go
    assert r.code == 2 and "--out DIR" in r.err, r.err
    r = run_cli("render", "--out", "x", cwd=root)
    assert r.code == 2 and "drop --out" in r.err, r.err


def test_the_readme_walkthrough_runs_as_written(tmp_path, monkeypatch):
    """The commands of README's "Write your first project", in a copy of samples/project; `tags fetch` reads a
    local copy of the download page (the only change: --page-url)."""
    import re

    from test_fetch import Site, page_html

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Write your first project") :]
    block = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    lines = [line.split("#")[0].strip() for line in block.splitlines()]
    assert lines[0] == ". .venv/bin/activate && cd samples/project"
    commands = [line.split() for line in lines[1:] if line]
    assert [c[:2] for c in commands][:3] == [["acrrules", "validate"], ["acrrules", "tags"], ["acrrules", "render"]]
    root = make_project(tmp_path / "p", tags=())
    (root / "servicetags").rmdir()  # a fresh clone: no Service Tags directory yet
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    site = Site()
    try:
        for name in (PUBLIC, GOV):
            site.serve(f"/files/{name}", tags_source(name).read_bytes())
        site.serve("/page", page_html(site.url(f"/files/{PUBLIC}"), site.url(f"/files/{GOV}")))
        for command in commands:
            args = command[1:] + (["--page-url", site.url("/page")] if command[1:3] == ["tags", "fetch"] else [])
            r = run_cli(*args, cwd=root)
            assert r.code == 0, (command, r.err)
    finally:
        site.close()
    assert sorted(p.name for p in (root / "rules").iterdir()) == ["batch", "gov", "prod"]
    assert sorted(p.name for p in (root / "servicetags").iterdir()) == sorted([PUBLIC, GOV])


def test_service_tags_file_in_a_project_serves_its_own_cloud_only(tmp_path):
    root = make_project(tmp_path / "p")
    r = run_cli("render", "--service-tags", tags_source(PUBLIC), cwd=root)
    assert r.code == 2 and "describes AzureUSGovernment" in r.err and "--service-tags DIR" in r.err, r.err
    assert not (root / "rules").exists()
    (root / "acr" / "gov.acr.yaml").unlink()
    r = run_cli("render", "--service-tags", tags_source(PUBLIC), cwd=root)
    assert r.code == 0, r.err


def _closed_udp_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block ends: a DNS query there is refused


def test_probe_without_spec_probes_every_description_of_the_project(tmp_path):
    """`acrrules probe` in a project: one report per description (JSON: a list, in the project's
    order), each endpoint located with the project's Service Tags directory, all within one deadline.
    The DNS server is a closed loopback port, so every name fails at DNS and nothing leaves the host."""
    root = make_project(tmp_path / "p")
    port = _closed_udp_port()
    r = run_cli("probe", "--nameserver", f"127.0.0.1:{port}", "--timeout", "1", "--format", "json", cwd=root)
    assert r.code == 1, r.err
    reports = json.loads(r.out)
    validated = run_cli("validate", cwd=root)
    assert validated.code == 0, validated.err
    order = [line.split(": ok", 1)[0] for line in validated.out.splitlines()]
    assert [x["spec"] for x in reports] == order and len(order) == 3
    for x in reports:
        expected = json.loads(run_cli("endpoints", x["spec"], "--format", "json", cwd=root).out)
        assert {e["fqdn"] for e in x["endpoints"]} >= {e["fqdn"] for e in expected if not e["fqdn"].startswith("*.")}
        assert x["serviceTags"] is not None and os.path.basename(x["serviceTags"]).startswith("ServiceTags_")
        assert all(e["verdict"] != "working" for e in x["endpoints"]), x
    # --image names one registry: refused without SPEC, before anything is sent
    bad = run_cli("probe", "--image", "app:1", cwd=root)
    assert bad.code == 2 and "give SPEC" in bad.err and bad.err.count("\n") == 1, bad.err


def test_the_api_warns_of_standalone_without_resolvers(tmp_path):
    """The DNS warning of `render` (standalone nftables without resolvers) reaches API users too."""
    import acrrules

    spec = tmp_path / "acr.yaml"
    spec.write_text(
        (REPO / "samples" / "basic.yaml").read_text(encoding="utf-8") + "targets:\n  nftables: {mode: standalone}\n",
        encoding="utf-8",
    )
    d = acrrules.load(spec)
    with pytest.warns(acrrules.AcrrulesWarning) as caught:
        acrrules.render(d)  # nftables is skipped (no prefixes), and its settings are still checked
    assert any("resolvers" in str(w.message) and "DNS" in str(w.message) for w in caught), [
        str(w.message) for w in caught
    ]


def test_a_region_only_the_newest_service_tags_file_knows_renders_in_a_project(tmp_path):
    """A description at a location only the project's newest Service Tags file has (a region newer
    than the catalog) validates with that file's regions, and so must every step after it: the
    checks across descriptions planned it without the file and stopped with an internal error."""
    root = make_project(tmp_path / "p")

    def newland(data: dict) -> None:
        for family, prefix in (("AzureContainerRegistry", "192.0.2.0/25"), ("Storage", "192.0.2.128/25")):
            data["values"].append(service_tag(f"{family}.NewlandCentral", [prefix]))

    week(PUBLIC, servicetags_name(), root / "servicetags", newland)
    (root / "acr" / "newland.acr.yaml").write_text(
        "version: 1\nname: newland\nregistries:\n  - {name: contosonewland, sku: Premium, location: newlandcentral}\n"
        "outputs: [nftables]\ntargets:\n  nftables: {table: acrrules_newland}\n",
        encoding="utf-8",
    )
    r = run_cli("render", cwd=root)
    assert r.code == 0, r.err
    assert "192.0.2.0/24" in (root / "rules" / "newland" / "acrrules.nft").read_text(encoding="utf-8")
    assert run_cli("render", "--check", cwd=root).code == 0
    # One description of the project, to where the project says ({name}), with the same directory
    r = run_cli("render", "acr/newland.acr.yaml", "--service-tags", "servicetags", "--check", cwd=root)
    assert r.code == 0, r.err


@pytest.mark.parametrize(
    ("toml", "line", "column", "key"),
    [
        (
            'service-tags = "../servicetags"\n[[descriptions]]\npaths = ["acr/*.acr.yaml"]\nout = "rules/{name}"\n',
            1,
            16,
            "service-tags",
        ),
        (
            'service-tags = "servicetags"\n[[descriptions]]\npaths = ["../outside.acr.yaml"]\nout = "rules/{name}"\n',
            3,
            10,
            "descriptions[0].paths[0]",
        ),
        (
            'service-tags = "servicetags"\n[[descriptions]]\npaths = ["acr/*.acr.yaml"]\nout = "../rules/{name}"\n',
            4,
            7,
            "descriptions[0].out",
        ),
        (
            'service-tags = "servicetags"\n[[descriptions]]\npaths = ["linked/*.acr.yaml"]\nout = "rules/{name}"\n',
            3,
            10,
            "descriptions[0].paths[0]",
        ),
    ],
    ids=["service-tags", "paths", "out", "linked-directory"],
)
def test_a_project_reads_and_writes_only_below_its_file(tmp_path, toml, line, column, key):
    """acrrules.toml comes with a pull request: a description outside the project (or a link out of
    it) would be read and quoted in messages, an output directory outside it written."""
    root = make_project(tmp_path / "p")
    (tmp_path / "outside.acr.yaml").write_text("version: 1\nregistries: []\n", encoding="utf-8")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "secret.acr.yaml").write_text("TOKEN: s3cr3t\n", encoding="utf-8")
    (root / "linked").symlink_to(tmp_path / "elsewhere")
    (root / "acrrules.toml").write_text(toml, encoding="utf-8")
    for args in (["validate"], ["render"], ["render", "--check"], ["report"]):
        r = run_cli(*args, cwd=root)
        assert r.code == 2 and r.err.startswith(f"acrrules.toml:{line}:{column}: {key}: "), (args, r.err)
        assert "is outside the project" in r.err and "s3cr3t" not in r.err + r.out, r.err
    assert not (root / "rules").exists() and not (tmp_path / "rules").exists()
