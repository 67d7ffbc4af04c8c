"""The hooks of .pre-commit-hooks.yaml, run by the real pre-commit.

Each case is a fresh git repository of a user: a description, the outputs rendered
from it and a .pre-commit-config.yaml whose `repo:` is this repository (absolute path)
at `rev:` HEAD. pre-commit clones that commit and pip-installs acrrules from it into a
hook environment, so what runs is HEAD, not the work tree: commit before you trust a
result. The environment is installed once per session (PRE_COMMIT_HOME under the
session's tmp dir; ~15 s, from PyPI or local wheels) and shared by the cases.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from conftest import REPO, _missing, console_script, need_tool, run_cli

HOOKS_FILE = ".pre-commit-hooks.yaml"

DESCRIPTION = """\
version: 1
registries:
  - name: fabrikamdev
    sku: Basic
    location: westeurope
sources: ["10.1.0.0/24"]
"""
# Line 5, column 15 is the value of `location`.
INVALID = DESCRIPTION.replace("location: westeurope", "location: westeuropa")

# A second description of the same repository: a name, NSG block and rule collection group
# priority of its own, as `validate` (the checks across descriptions) requires of two descriptions.
PROD = """\
version: 1
name: prod
registries:
  - name: contosoprod
    sku: Premium
    location: eastus
    replicas: [westeurope]
    data_endpoints: dedicated
targets:
  nsg-arm: {priority: 400}
  nsg-tf: {priority: 400}
  azure-firewall: {priority: 600}
"""


def _git(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


def _clean_env(**extra: str) -> dict:
    env = dict(os.environ)
    # A developer's SKIP would skip our hooks; a pytest run from inside a git hook
    # inherits GIT_DIR and friends, which would point git at the wrong repository.
    for key in ("SKIP", "GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_PREFIX"):
        env.pop(key, None)
    env.update(extra)
    return env


@dataclass
class HookRepo:
    rev: str
    hooks: dict  # id -> the hook's definition at rev
    pre_commit: str
    home: Path
    note: str  # said in every failure: which commit ran, and what it lacks


@pytest.fixture(scope="session")
def hook_repo(tmp_path_factory) -> HookRepo:
    need_tool("git")
    pre_commit = console_script("pre-commit")
    env = _clean_env()
    head = _git("rev-parse", "--verify", "HEAD", cwd=REPO, env=env)
    if head.returncode != 0:
        _missing(
            f"{REPO} is not a git checkout with a commit; pre-commit installs hooks from a commit "
            f"({head.stderr.strip()})"
        )
    rev = head.stdout.strip()
    at_rev = _git("show", f"{rev}:{HOOKS_FILE}", cwd=REPO, env=env)
    if at_rev.returncode != 0:
        _missing(
            f"HEAD ({rev[:12]}) has no {HOOKS_FILE}: pre-commit installs the hook environment from the "
            f"commit that `rev:` names, not from the work tree, so uncommitted work is not in it; "
            f"commit {HOOKS_FILE} first (or try it with `pre-commit try-repo`)"
        )
    dirty = _git("status", "--porcelain", "--untracked-files=no", cwd=REPO, env=env).stdout.split("\n")
    dirty = [line[3:] for line in dirty if line.strip()]
    note = f"the hooks ran from HEAD {rev[:12]}"
    if dirty:
        note += (
            f"; uncommitted changes are not in the hook environment: {', '.join(dirty[:8])}"
            f"{' …' if len(dirty) > 8 else ''}"
        )
    hooks = {h["id"]: h for h in yaml.safe_load(at_rev.stdout)}
    return HookRepo(
        rev=rev, hooks=hooks, pre_commit=pre_commit, home=tmp_path_factory.mktemp("pre-commit-home"), note=note
    )


def make_project(root: Path, hook_repo: HookRepo, files: dict[str, str]) -> Path:
    """A git repository with `files` and a .pre-commit-config.yaml using this repository's hooks."""
    config = {
        "repos": [
            {
                "repo": str(REPO),
                "rev": hook_repo.rev,
                "hooks": [
                    {"id": "acrrules-check", "args": ["acr.yaml", "--out", "rules"]},
                    {"id": "acrrules-validate"},
                ],
            }
        ]
    }
    root.mkdir()
    (root / ".pre-commit-config.yaml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    env = _clean_env()
    for args in (
        ["init", "-q", "."],
        ["add", "-A"],
        [
            "-c",
            "user.name=acrrules tests",
            "-c",
            "user.email=tests@example.invalid",
            "-c",
            "commit.gpgsign=false",
            "commit",
            "-q",
            "--no-verify",
            "-m",
            "rules",
        ],
    ):
        r = _git(*args, cwd=root, env=env)
        assert r.returncode == 0, f"git {' '.join(args)}: {r.stderr}"
    return root


def rendered(tmp_path: Path, description: str) -> dict[str, str]:
    """acr.yaml plus its outputs under rules/, as the user would commit them."""
    work = tmp_path / "render"
    work.mkdir()
    (work / "acr.yaml").write_text(description, encoding="utf-8")
    r = run_cli("render", "acr.yaml", "--out", "rules", cwd=work)
    assert r.code == 0, r.err
    files = {"acr.yaml": description}
    files.update({f"rules/{p.name}": p.read_text(encoding="utf-8") for p in sorted((work / "rules").iterdir())})
    assert len(files) > 1
    return files


@dataclass
class Run:
    code: int
    output: str
    status: dict  # hook id -> Passed | Failed | Skipped


def run_hooks(project: Path, hook_repo: HookRepo) -> Run:
    p = subprocess.run(
        [hook_repo.pre_commit, "run", "--all-files", "--verbose", "--color", "never"],
        cwd=project,
        env=_clean_env(PRE_COMMIT_HOME=str(hook_repo.home)),
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = p.stdout + p.stderr
    status = {}
    for hook_id, hook in hook_repo.hooks.items():
        m = re.search(rf"^{re.escape(hook['name'])}\.+(?:\([^)]*\))?(Passed|Failed|Skipped)$", output, re.M)
        if m:
            status[hook_id] = m.group(1)
    return Run(p.returncode, output, status)


def explain(run: Run, hook_repo: HookRepo) -> str:
    return f"pre-commit exit {run.code} ({hook_repo.note}):\n{run.output}"


# --- the manifest itself (the work tree's, no hook environment needed) ---------------


def manifest() -> dict:
    return {h["id"]: h for h in yaml.safe_load((REPO / HOOKS_FILE).read_text(encoding="utf-8"))}


def test_manifest_is_valid_for_pre_commit():
    p = subprocess.run(
        [console_script("pre-commit"), "validate-manifest", str(REPO / HOOKS_FILE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 0, p.stdout + p.stderr


def test_manifest_hooks():
    hooks = manifest()
    assert set(hooks) == {"acrrules-check", "acrrules-validate"}
    check, validate = hooks["acrrules-check"], hooks["acrrules-validate"]
    assert check["entry"].split() == ["acrrules", "render", "--check"]
    assert check["pass_filenames"] is False
    assert validate["entry"].split() == ["acrrules", "validate"]
    assert validate.get("pass_filenames", True) is True
    assert validate["require_serial"] is True  # one process sees every description (clashes, spec §8)
    assert {check["language"], validate["language"]} == {"python"}


@pytest.mark.parametrize(
    "path, matched",
    [
        ("acr.yaml", True),
        ("acr.yml", True),
        ("acrrules.yaml", True),
        ("prod.acr.yaml", True),
        ("firewall/eu/acr.yaml", True),
        ("firewall/prod.acrrules.yml", True),
        (".pre-commit-config.yaml", False),
        (".github/workflows/acrrules-weekly.yml", False),
        ("myacr.yaml", False),
        ("acr.yaml.bak", False),
        ("acr.json", False),
        ("rules/nsg.json", False),
        ("acr.yaml/readme.md", False),
    ],
)
def test_validate_default_files_pattern(path, matched):
    # pre-commit matches `files` with re.search against the repository-relative POSIX path.
    assert bool(re.search(manifest()["acrrules-validate"]["files"], path)) is matched


# --- the real pre-commit, hooks installed from HEAD -----------------------------------


def test_up_to_date_outputs_pass(tmp_path, hook_repo):
    files = rendered(tmp_path, DESCRIPTION)
    files["firewall/prod.acr.yaml"] = PROD  # a second description: validated (default files:), not checked
    files["deploy/values.yaml"] = "replicas: 3\n"  # YAML that is no description: not validated
    run = run_hooks(make_project(tmp_path / "project", hook_repo, files), hook_repo)
    assert run.code == 0, explain(run, hook_repo)
    assert run.status == {"acrrules-check": "Passed", "acrrules-validate": "Passed"}, explain(run, hook_repo)
    assert re.search(r"^acr\.yaml: ok ", run.output, re.M), explain(run, hook_repo)
    assert re.search(r"^firewall/prod\.acr\.yaml: ok ", run.output, re.M), explain(run, hook_repo)
    assert "values.yaml" not in run.output and ".pre-commit-config.yaml:" not in run.output
    assert "file(s) in rules are up to date" in run.output, explain(run, hook_repo)


def _edit_output(files: dict[str, str]) -> tuple[str, str]:
    """Someone edits a generated file by hand: an NSG rule's priority. Returns the diff lines."""
    m = re.search(r'^( *)"priority": (\d+),$', files["rules/nsg.json"], re.M)
    assert m, files["rules/nsg.json"]
    edited = f'{m.group(1)}"priority": {int(m.group(2)) + 1},'
    files["rules/nsg.json"] = files["rules/nsg.json"][: m.start()] + edited + files["rules/nsg.json"][m.end() :]
    return rf"^-{re.escape(edited)}$", rf"^\+{re.escape(m.group(0))}$"


def _edit_description(files: dict[str, str]) -> tuple[str, str]:
    """Someone adds MCR to the description and commits without re-rendering."""
    files["acr.yaml"] += "mcr: true\n"
    return r"^--- rules/azure-firewall\.tf$", r'^\+ *"mcr\.microsoft\.com",?$'


@pytest.mark.parametrize("drift", [_edit_output, _edit_description], ids=["output-edited", "description-edited"])
def test_drifted_outputs_fail_with_the_diff(tmp_path, hook_repo, drift):
    files = rendered(tmp_path, DESCRIPTION)
    expected = drift(files)
    run = run_hooks(make_project(tmp_path / "project", hook_repo, files), hook_repo)
    assert run.code != 0, explain(run, hook_repo)
    assert run.status == {"acrrules-check": "Failed", "acrrules-validate": "Passed"}, explain(run, hook_repo)
    for line in expected:
        assert re.search(line, run.output, re.M), f"no line matching {line!r} in the diff; " + explain(run, hook_repo)
    # Exit 1 is drift (2 would be invalid input, which validate would have caught too).
    assert re.search(r"^- hook id: acrrules-check\n(- duration: .*\n)?- exit code: 1$", run.output, re.M), explain(
        run, hook_repo
    )


def test_invalid_description_fails_with_a_located_message(tmp_path, hook_repo):
    files = rendered(tmp_path, DESCRIPTION)
    files["acr.yaml"] = INVALID
    run = run_hooks(make_project(tmp_path / "project", hook_repo, files), hook_repo)
    assert run.code != 0, explain(run, hook_repo)
    assert run.status == {"acrrules-check": "Failed", "acrrules-validate": "Failed"}, explain(run, hook_repo)
    located = re.findall(r"^acr\.yaml:5:15: registries\[0\]\.location: .*'westeuropa'.*$", run.output, re.M)
    assert len(located) == 2, explain(run, hook_repo)  # once from each hook
    assert "Traceback" not in run.output


CLASHING = """\
version: 1
name: team{pair}{i}
registries:
  - {{name: contoso{pair}{i}reg, sku: Basic, location: eastus}}
outputs: [iptables]
targets:
  iptables: {{chain: EGRESS_{pair}}}
"""


def test_validate_sees_every_description_at_once(tmp_path, hook_repo):
    """Two descriptions that share an iptables chain clash (spec §8), which `acrrules validate A B`
    reports only when it is given both. pre-commit splits a hook's files over one process per core
    (more than 4 files on 2 cores) unless the hook is require_serial: four clashing pairs among 8
    files, each pair reported, proves the hook sees all the files at once."""
    files = {f"team{pair}{i}.acr.yaml": CLASHING.format(pair=pair, i=i) for pair in "abcd" for i in (1, 2)}
    root = tmp_path / "project"
    root.mkdir()
    config = {"repos": [{"repo": str(REPO), "rev": hook_repo.rev, "hooks": [{"id": "acrrules-validate"}]}]}
    (root / ".pre-commit-config.yaml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    for name, text in files.items():
        (root / name).write_text(text, encoding="utf-8")
    env = _clean_env()
    assert _git("init", "-q", ".", cwd=root, env=env).returncode == 0
    assert _git("add", "-A", cwd=root, env=env).returncode == 0
    run = run_hooks(root, hook_repo)
    assert run.status == {"acrrules-validate": "Failed"}, explain(run, hook_repo)
    for pair in "abcd":
        assert f"team{pair}2.acr.yaml:7:21: targets.iptables.chain: the iptables chain EGRESS_{pair} " in run.output, (
            pair,
            explain(run, hook_repo),
        )


def test_readme_snippet_is_a_valid_config(tmp_path):
    readme = (REPO / "docs" / "weekly-loop.md").read_text(encoding="utf-8")
    section = readme[readme.index("## pre-commit hooks") :]
    snippet = re.search(r"```yaml\n(.*?)```", section, re.S).group(1)
    (tmp_path / ".pre-commit-config.yaml").write_text(snippet, encoding="utf-8")
    p = subprocess.run(
        [console_script("pre-commit"), "validate-config", ".pre-commit-config.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 0, p.stdout + p.stderr
    (repo,) = yaml.safe_load(snippet)["repos"]
    assert {h["id"] for h in repo["hooks"]} <= set(manifest())


# --- outputs a pull request replaced by links (issue 13, finding 3) --------------------------

CREDENTIAL = "c2VjcmV0LWNoZWNrb3V0LXRva2Vu"  # what actions/checkout persists: AUTHORIZATION: basic …
CI_SECRET = "ci-secret-value-4711"


def test_linked_outputs_fail_without_showing_their_targets(tmp_path, hook_repo):
    """rules/nsg.json -> ../.git/config and rules/nsg.tf -> /proc/self/environ, committed: the hook
    fails (exit 1, drift) and names the links, and neither the checkout's credential nor the job's
    environment appears in its output."""
    files = rendered(tmp_path, DESCRIPTION)
    project = make_project(tmp_path / "project", hook_repo, files)
    env = _clean_env()
    r = _git(
        "config",
        "http.https://example.invalid/.extraheader",
        f"AUTHORIZATION: basic {CREDENTIAL}",
        cwd=project,
        env=env,
    )
    assert r.returncode == 0, r.stderr
    for name, target in (("nsg.json", "../.git/config"), ("nsg.tf", "/proc/self/environ")):
        (project / "rules" / name).unlink()
        (project / "rules" / name).symlink_to(target)
    for args in (
        ["add", "-A"],
        ["-c", "user.name=t", "-c", "user.email=t@example.invalid", "-c", "commit.gpgsign=false", "commit", "-q"]
        + ["--no-verify", "-m", "links"],
    ):
        r = _git(*args, cwd=project, env=env)
        assert r.returncode == 0, r.stderr
    p = subprocess.run(
        [hook_repo.pre_commit, "run", "acrrules-check", "--all-files", "--verbose", "--color", "never"],
        cwd=project,
        env=_clean_env(PRE_COMMIT_HOME=str(hook_repo.home), ACRRULES_CI_SECRET=CI_SECRET),
        capture_output=True,
        text=True,
        timeout=600,
    )
    run = Run(p.returncode, p.stdout + p.stderr, {})
    assert CREDENTIAL not in run.output and CI_SECRET not in run.output, explain(run, hook_repo)
    assert "AUTHORIZATION" not in run.output and "PRE_COMMIT_HOME" not in run.output, explain(run, hook_repo)
    assert run.code != 0, explain(run, hook_repo)
    assert re.search(r"^- exit code: 1$", run.output, re.M), explain(run, hook_repo)
    for name, target in (("nsg.json", "../.git/config"), ("nsg.tf", "/proc/self/environ")):
        assert f"rules/{name}: differs: it is a symbolic link to {target}, not a regular file" in run.output, explain(
            run, hook_repo
        )


# --- a project (acrrules.toml): the hook needs no args, across weekly fetches ----------


def _commit(root: Path, message: str) -> None:
    env = _clean_env()
    for args in (
        ["add", "-A"],
        [
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.invalid",
            "-c",
            "commit.gpgsign=false",
            "commit",
            "-q",
            "--no-verify",
            "--allow-empty",
            "-m",
            message,
        ],
    ):
        r = _git(*args, cwd=root, env=env)
        assert r.returncode == 0, f"git {' '.join(args)}: {r.stderr}"


def _changed_files(root: Path, rev: str) -> list[str]:
    r = _git("diff", "--name-only", rev, "HEAD", cwd=root, env=_clean_env())
    assert r.returncode == 0, r.stderr
    return r.stdout.split()


def test_project_hook_without_args_across_three_weeks(tmp_path, hook_repo, monkeypatch):
    """Issue 14, problem 1 and the hook's promise: `acrrules-check` with no args checks every description
    of the project, IP outputs included, and its config never changes while the weekly loop
    (`tags fetch` from a local page, render, prune) replaces the Service Tags files."""
    from test_fetch import Site, page_html
    from test_project import GOV, PUBLIC, make_project, tag, week

    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    weeks = tmp_path / "published"
    weeks.mkdir()

    def add_prefix(d):
        t = tag(d, "AzureContainerRegistry.EastUS")["properties"]
        t["addressPrefixes"] = [*t["addressPrefixes"], "203.0.113.0/24"]
        t["changeNumber"] = int(t["changeNumber"]) + 1

    quiet = lambda d: tag(d, "Sql")["properties"].update(changeNumber=999)  # noqa: E731
    published = {  # the weeks Microsoft publishes: (Public, AzureGovernment), each derived from a real file
        "20251110": (
            week(PUBLIC, "ServiceTags_Public_20251110.json", weeks, quiet),
            week(GOV, "ServiceTags_AzureGovernment_20251110.json", weeks),
        ),
    }
    w2 = json.loads(published["20251110"][0].read_text())
    w2["changeNumber"] += 1
    tag(w2, "Sql")["properties"]["changeNumber"] = 1000
    (weeks / "ServiceTags_Public_20251117.json").write_text(json.dumps(w2))
    g2 = json.loads(published["20251110"][1].read_text())
    g2["changeNumber"] += 1
    (weeks / "ServiceTags_AzureGovernment_20251117.json").write_text(json.dumps(g2))
    published["20251117"] = (
        weeks / "ServiceTags_Public_20251117.json",
        weeks / "ServiceTags_AzureGovernment_20251117.json",
    )
    w3 = json.loads(published["20251117"][0].read_text())
    w3["changeNumber"] += 1
    add_prefix(w3)
    (weeks / "ServiceTags_Public_20251124.json").write_text(json.dumps(w3))
    g3 = dict(g2, changeNumber=g2["changeNumber"] + 1)
    (weeks / "ServiceTags_AzureGovernment_20251124.json").write_text(json.dumps(g3))
    published["20251124"] = (
        weeks / "ServiceTags_Public_20251124.json",
        weeks / "ServiceTags_AzureGovernment_20251124.json",
    )

    root = make_project(tmp_path / "project")
    for link in (root / "servicetags").iterdir():  # a repository commits files, not links
        target = link.resolve()
        link.unlink()
        shutil.copyfile(target, link)
    assert run_cli("render", cwd=root).code == 0
    config = {
        "repos": [
            {"repo": str(REPO), "rev": hook_repo.rev, "hooks": [{"id": "acrrules-check"}, {"id": "acrrules-validate"}]}
        ]
    }
    config_text = yaml.safe_dump(config, sort_keys=False)
    (root / ".pre-commit-config.yaml").write_text(config_text, encoding="utf-8")
    assert _git("init", "-q", ".", cwd=root, env=_clean_env()).returncode == 0
    _commit(root, "week 0")
    run = run_hooks(root, hook_repo)
    assert run.code == 0 and run.status == {"acrrules-check": "Passed", "acrrules-validate": "Passed"}, explain(
        run, hook_repo
    )

    site = Site()
    try:
        for date, (public, gov) in published.items():
            before = _git("rev-parse", "HEAD", cwd=root, env=_clean_env()).stdout.strip()
            for f in (public, gov):
                site.serve(f"/files/{f.name}", f.read_bytes())
            site.serve("/page", page_html(site.url(f"/files/{public.name}"), site.url(f"/files/{gov.name}")))
            r = run_cli("tags", "fetch", "--page-url", site.url("/page"), cwd=root)
            assert r.code == 0, r.err
            assert sorted(Path(p).name for p in r.out.split()) == sorted([public.name, gov.name])
            diff = run_cli("tags", "diff", cwd=root)
            assert diff.code == (1 if date == "20251124" else 0), diff.out + diff.err
            assert run_cli("render", cwd=root).code == 0
            assert run_cli("tags", "prune", cwd=root).code == 0
            _commit(root, f"Service Tags of {date}")
            assert (root / ".pre-commit-config.yaml").read_text(encoding="utf-8") == config_text
            changed = _changed_files(root, before)
            outputs = [c for c in changed if c.startswith("rules/")]
            if date == "20251124":  # AzureContainerRegistry.EastUS gained a prefix: prod and batch change
                assert sorted(outputs) == sorted(
                    f"rules/{n}/{f}" for n in ("prod", "batch") for f in ("acrrules.nft", "edl-ipv4.txt")
                ), changed
            else:  # a quiet week: only the Service Tags files (renamed) changed
                assert outputs == [], changed
            assert sorted(p.name for p in (root / "servicetags").iterdir()) == sorted([public.name, gov.name])
            run = run_hooks(root, hook_repo)
            assert run.code == 0, explain(run, hook_repo)
    finally:
        site.close()

    # A sources change committed without rendering: the hook fails, for the IP outputs too.
    spec = root / "acr" / "gov.acr.yaml"
    spec.write_text(spec.read_text().replace('["192.168.40.0/24"]', '["192.168.40.0/24", "192.168.41.0/24"]'))
    _commit(root, "a new build subnet")
    run = run_hooks(root, hook_repo)
    assert run.code != 0 and run.status["acrrules-check"] == "Failed", explain(run, hook_repo)
    for name in ("acrrules.nft", "iptables.rules"):
        assert re.search(rf"^\+\+\+ rules/gov/{re.escape(name)}$", run.output, re.M), explain(run, hook_repo)
    assert "192.168.41.0/24" in run.output
