"""examples/github-actions/acrrules-weekly.yml: actionlint finds nothing in it (with
shellcheck on its shell steps) and does flag deliberately broken copies; and its shell
steps, run in order by a small stand-in for the runner against stub `acrrules` and `gh`
commands and a local git remote, do what each `tags diff` exit code asks for.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from conftest import REPO, console_script, need_tool

WORKFLOW = REPO / "examples" / "github-actions" / "acrrules-weekly.yml"


def actionlint(path: Path) -> list[dict]:
    need_tool("shellcheck")  # without it actionlint silently skips the shell steps
    p = subprocess.run(
        [
            console_script("actionlint"),
            "-no-color",
            "-shellcheck",
            shutil.which("shellcheck"),
            "-format",
            "{{json .}}",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode in (0, 1), f"actionlint exit {p.returncode}: {p.stderr}"
    findings = json.loads(p.stdout or "[]")
    assert (p.returncode == 1) == bool(findings), p.stdout + p.stderr
    return findings


def test_actionlint_finds_nothing():
    findings = actionlint(WORKFLOW)
    assert findings == [], "\n".join(f"{f['line']}:{f['column']}: {f['message']} [{f['kind']}]" for f in findings)


# Each broken copy must be flagged (else the test above could not fail): the text to
# replace, its replacement, and the kind and message actionlint reports.
BROKEN = {
    "misspelt-key": (
        "    timeout-minutes: 15\n",
        "    timeout-minute: 15\n",
        "syntax-check",
        r'unexpected key "timeout-minute"',
    ),
    "unknown-event": ("  workflow_dispatch:\n", "  workflow_dispatsh:\n", "events", r'"workflow_dispatsh"'),
    "unquoted-variable": (
        'acrrules tags fetch --page-url "$PAGE_URL"',
        "acrrules tags fetch --page-url $PAGE_URL",
        "shellcheck",
        r"SC2086",
    ),
    "deprecated-runtime": ("actions/checkout@v7", "actions/checkout@v4", "action", r'"node20" is deprecated'),
    "unknown-step-output": (
        "CHANGED: ${{ steps.diff.outputs.changed }}",
        "CHANGED: ${{ steps.dif.outputs.changed }}",
        "expression",
        r'property "dif" is not defined',
    ),
}


@pytest.mark.parametrize("case", BROKEN, ids=list(BROKEN))
def test_actionlint_flags_a_broken_copy(tmp_path, case):
    old, new, kind, message = BROKEN[case]
    text = WORKFLOW.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"the broken copy {case!r} no longer applies: {old!r} is not in the workflow once"
    broken = tmp_path / "acrrules-weekly.yml"
    broken.write_text(text.replace(old, new), encoding="utf-8")
    findings = actionlint(broken)
    assert any(f["kind"] == kind and re.search(message, f["message"]) for f in findings), findings


def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))


def test_shape():
    wf = workflow()
    on = wf.get("on", wf.get(True))  # YAML 1.1 reads the key `on` as true
    assert set(on) == {"schedule", "workflow_dispatch"} and on["schedule"][0]["cron"]
    assert wf["permissions"] == {}
    assert wf["concurrency"]["group"] and wf["concurrency"]["cancel-in-progress"] is False
    (job,) = wf["jobs"].values()
    assert job["permissions"] == {"contents": "write", "pull-requests": "write"}
    assert job["defaults"]["run"]["shell"] == "bash"
    uses = [s["uses"] for s in job["steps"] if "uses" in s]
    assert [u.split("@")[0] for u in uses] == ["actions/checkout", "actions/setup-python"]  # no third-party action
    assert all(re.fullmatch(r"v\d+", u.split("@")[1]) for u in uses)  # major versions
    scripts = "\n".join(s.get("run", "") for s in job["steps"])
    assert "gh pr create" in scripts and "--body-file" in scripts


# --- the shell steps, run in order, with the real acrrules on a copy of samples/project ---------

# The real acrrules, except that a test may make `tags diff` exit with STUB_DIFF_EXIT or `report`
# print STUB_REPORT; every call is logged.
STUB_ACRRULES = r"""
import os, subprocess, sys
args = sys.argv[1:]
with open(os.environ["STUB_LOG"], "a") as log:
    log.write("acrrules " + " ".join(args) + "\n")
if args[:2] == ["tags", "diff"] and os.environ.get("STUB_DIFF_EXIT"):
    sys.exit(int(os.environ["STUB_DIFF_EXIT"]))
if args[:1] == ["report"] and os.environ.get("STUB_REPORT"):
    sys.stdout.write(os.environ["STUB_REPORT"])
    sys.exit(0)
sys.exit(subprocess.run([os.environ["REAL_PYTHON"], "-m", "acrrules", *args]).returncode)
"""

STUB_GH = r"""
import os, shutil, sys
args = sys.argv[1:]
with open(os.environ["STUB_LOG"], "a") as log:
    log.write("gh " + " ".join(args) + "\n")
assert os.environ.get("GH_TOKEN") == "the-job-token", "gh needs GH_TOKEN"
if args[:2] == ["pr", "list"]:
    print(os.environ.get("STUB_OPEN_PR", ""))
elif args[:2] in (["pr", "create"], ["pr", "edit"]):
    shutil.copy(args[args.index("--body-file") + 1], os.environ["STUB_BODY"])
"""

WEEK1 = ("ServiceTags_Public_20251103.json", "ServiceTags_AzureGovernment_20251103.json")
WEEK2 = ("ServiceTags_Public_20251110.json", "ServiceTags_AzureGovernment_20251110.json")


@dataclass
class Job:
    failed_step: str | None
    ran: list[str]
    calls: list[str]
    remote: Path
    body: str | None
    summary: str
    logs: dict = field(default_factory=dict)

    def explain(self) -> str:
        return "\n".join(f"--- {name}\n{log}" for name, log in self.logs.items()) + "\ncalls:\n" + "\n".join(self.calls)

    def show(self, rev_path: str) -> str | None:
        p = subprocess.run(["git", "show", rev_path], cwd=self.remote, capture_output=True, text=True)
        return p.stdout if p.returncode == 0 else None

    def changed(self) -> list[str]:
        p = subprocess.run(
            ["git", "diff", "--no-renames", "--name-only", "main", "acrrules/service-tags"],
            cwd=self.remote,
            capture_output=True,
            text=True,
        )
        assert p.returncode == 0, p.stderr
        return sorted(p.stdout.split())


def _write_script(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    path.chmod(0o755)


def _expression(expr: str, outputs: dict) -> str:
    expr = expr.strip()
    if expr == "github.token":
        return "the-job-token"
    m = re.fullmatch(r"steps\.([\w-]+)\.outputs\.([\w-]+)", expr)
    assert m, f"the stand-in runner does not know ${{{{ {expr} }}}}"
    return outputs.get(m.group(1), {}).get(m.group(2), "")


def _condition(expr: str, outputs: dict) -> bool:
    m = re.fullmatch(r"(steps\.[\w.-]+) (==|!=) '([^']*)'", expr.strip())
    assert m, f"the stand-in runner does not know `if: {expr}`"
    equal = _expression(m.group(1), outputs) == m.group(3)
    return equal if m.group(2) == "==" else not equal


def _used_tag_gains_a_prefix(d: dict) -> None:
    from test_project import tag

    t = tag(d, "AzureContainerRegistry.EastUS")["properties"]
    t["addressPrefixes"] = [*t["addressPrefixes"], "203.0.113.0/24"]
    t["changeNumber"] = int(t["changeNumber"]) + 1


def _quiet(d: dict) -> None:
    from test_project import tag

    tag(d, "Sql")["properties"]["changeNumber"] = 999


def run_job(
    tmp_path: Path,
    *,
    published: tuple[str, str] = WEEK2,
    change=_used_tag_gains_a_prefix,
    diff_exit: int | None = None,
    open_pr: str = "",
    report: str | None = None,
) -> Job:
    """The workflow's shell steps on a repository holding samples/project, rendered from the files of
    WEEK1, while the local download page links `published` (derived from WEEK1 by `change`)."""
    from test_fetch import Site, page_html
    from test_project import GOV, PUBLIC, make_project, week

    need_tool("git", "bash")
    wf = workflow()
    (job,) = wf["jobs"].values()
    assert job["defaults"]["run"]["shell"] == "bash"
    env_vars = {**wf.get("env", {}), **job.get("env", {})}

    git_env = dict(os.environ, GIT_CONFIG_GLOBAL=os.devnull, GIT_CONFIG_NOSYSTEM="1")
    for key in (
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_INDEX_FILE",
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
    ):
        git_env.pop(key, None)

    def git(*args, cwd):
        r = subprocess.run(["git", *args], cwd=cwd, env=git_env, capture_output=True, text=True)
        assert r.returncode == 0, f"git {args}: {r.stderr}"

    # The user's repository: the project with last week's files and rules; a bare remote; the runner's checkout.
    seed, remote, work = tmp_path / "seed", tmp_path / "remote.git", tmp_path / "work"
    make_project(seed, tags=())
    week(PUBLIC, WEEK1[0], seed / "servicetags")
    week(GOV, WEEK1[1], seed / "servicetags")
    r = subprocess.run([sys.executable, "-m", "acrrules", "render"], cwd=seed, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    served = tmp_path / "published"
    served.mkdir()
    for source, name in zip(WEEK1, published, strict=True):
        if name in WEEK1:
            (served / name).write_bytes((seed / "servicetags" / name).read_bytes())
        else:
            data = json.loads((seed / "servicetags" / source).read_text())
            data["changeNumber"] += 1
            if "Public" in name:
                change(data)
            (served / name).write_text(json.dumps(data))
    git("init", "-q", "-b", "main", str(seed), cwd=tmp_path)
    git("add", "-A", cwd=seed)
    git("-c", "user.name=u", "-c", "user.email=u@example.invalid", "commit", "-q", "-m", "rules", cwd=seed)
    git("clone", "-q", "--bare", str(seed), str(remote), cwd=tmp_path)
    git("clone", "-q", str(remote), str(work), cwd=tmp_path)

    stubs, temp = tmp_path / "stubs", tmp_path / "runner-temp"
    stubs.mkdir()
    temp.mkdir()
    _write_script(stubs / "acrrules", f"#!{sys.executable}\n{STUB_ACRRULES}")
    _write_script(stubs / "gh", f"#!{sys.executable}\n{STUB_GH}")
    _write_script(stubs / "python", '#!/bin/sh\necho "python $*" >> "$STUB_LOG"\n')  # the pip install step
    log, summary = tmp_path / "calls.log", tmp_path / "summary.md"
    log.touch()
    summary.touch()
    site = Site()
    for name in published:
        site.serve(f"/files/{name}", (served / name).read_bytes())
    site.serve("/page", page_html(*(site.url(f"/files/{n}") for n in published)))
    base_env = dict(
        git_env,
        PATH=f"{stubs}{os.pathsep}{os.environ['PATH']}",
        RUNNER_TEMP=str(temp),
        GITHUB_WORKSPACE=str(work),
        GITHUB_STEP_SUMMARY=str(summary),
        GITHUB_REF_NAME="main",
        GITHUB_SERVER_URL="https://github.com",
        GITHUB_REPOSITORY="contoso/firewall",
        GITHUB_RUN_ID="42",
        REAL_PYTHON=sys.executable,
        STUB_LOG=str(log),
        STUB_DIFF_EXIT="" if diff_exit is None else str(diff_exit),
        STUB_OPEN_PR=open_pr,
        STUB_BODY=str(tmp_path / "body.md"),
        STUB_REPORT=report or "",
        **{**env_vars, "PAGE_URL": site.url("/page")},  # the test's mirror of the download page
    )

    outputs: dict[str, dict] = {}
    ran, logs, failed = [], {}, None
    try:
        for i, step in enumerate(job["steps"]):
            if "run" not in step:
                continue  # actions/checkout (done above) and actions/setup-python
            name = step.get("name", f"step {i}")
            if "if" in step and not _condition(step["if"], outputs):
                continue
            out_file = tmp_path / f"output-{i}"
            out_file.touch()
            env = dict(base_env, GITHUB_OUTPUT=str(out_file))
            env.update(
                {
                    k: re.sub(r"\$\{\{(.*?)\}\}", lambda m: _expression(m.group(1), outputs), str(v))
                    for k, v in step.get("env", {}).items()
                }
            )
            script = tmp_path / f"step-{i}.sh"
            script.write_text(step["run"], encoding="utf-8")
            p = subprocess.run(
                ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
                cwd=work,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            ran.append(name)
            logs[name] = f"exit {p.returncode}\n{p.stdout}{p.stderr}"
            if "id" in step:
                outputs[step["id"]] = dict(line.split("=", 1) for line in out_file.read_text().splitlines() if line)
            if p.returncode != 0:
                failed = name
                break
    finally:
        site.close()
    body = tmp_path / "body.md"
    return Job(
        failed,
        ran,
        log.read_text().splitlines(),
        remote,
        body.read_text() if body.exists() else None,
        summary.read_text(),
        logs,
    )


def _acrrules_calls(job: Job) -> list[str]:
    return [
        " ".join(c.split()[1:3]) if c.startswith("acrrules tags") else c.split()[1]
        for c in job.calls
        if c.startswith("acrrules ")
    ]


def test_changed_tags_open_one_pull_request_for_the_project(tmp_path):
    job = run_job(tmp_path)
    assert job.failed_step is None, job.explain()
    assert _acrrules_calls(job) == ["tags fetch", "tags diff", "report", "render", "tags prune"], job.explain()
    gh = [c for c in job.calls if c.startswith("gh ")]
    assert gh[0].startswith("gh pr list --head acrrules/service-tags --state open"), gh
    assert gh[1] == (
        "gh pr create --base main --head acrrules/service-tags --title acrrules: this week's Service Tags "
        f"and the rules they change --body-file {tmp_path / 'runner-temp' / 'report.md'}"
    ), gh
    assert job.body.startswith("# acrrules report: project `acrrules.toml`"), job.body[:300]
    assert "203.0.113.0/24" in job.body  # the prefix added since the previous file
    assert job.body in job.summary
    # The branch: the new files replace last week's (one per cloud), the rules that use the tag change.
    assert job.changed() == sorted(
        [f"servicetags/{n}" for n in WEEK1 + WEEK2]
        + [f"rules/{d}/{f}" for d in ("prod", "batch") for f in ("acrrules.nft", "edl-ipv4.txt")]
    ), job.explain()
    assert job.show(f"acrrules/service-tags:servicetags/{WEEK1[0]}") is None
    assert "203.0.113.0/24" in job.show("acrrules/service-tags:rules/prod/acrrules.nft")
    assert job.show(f"main:servicetags/{WEEK1[0]}") is not None  # main untouched


def test_a_quiet_week_commits_the_new_files_and_changes_no_rule(tmp_path):
    job = run_job(tmp_path, change=_quiet)
    assert job.failed_step is None, job.explain()
    assert "No prefix of a tag the project uses changed" in job.logs["Compare the tags the project uses"]
    gh = [c for c in job.calls if c.startswith("gh ")]
    assert "--title acrrules: this week's Service Tags --body-file" in gh[1], gh
    assert job.changed() == sorted(f"servicetags/{n}" for n in WEEK1 + WEEK2), job.explain()


@pytest.mark.parametrize("diff_exit", [2, 3, 70])
def test_tags_diff_failing_fails_the_job(tmp_path, diff_exit):
    job = run_job(tmp_path, diff_exit=diff_exit)
    assert job.failed_step == "Compare the tags the project uses", job.explain()
    assert f"::error::acrrules tags diff failed (exit {diff_exit})" in job.logs[job.failed_step]
    assert _acrrules_calls(job) == ["tags fetch", "tags diff"]
    assert not [c for c in job.calls if c.startswith("gh ")]


def test_no_newer_file_does_nothing(tmp_path):
    job = run_job(tmp_path, published=WEEK1)
    assert job.failed_step is None, job.explain()
    assert _acrrules_calls(job) == ["tags fetch"]
    assert "nothing to do" in job.logs["Fetch this week's Service Tags files"]
    assert not [c for c in job.calls if c.startswith("gh ")]


def test_open_pull_request_is_updated_and_a_long_report_cut(tmp_path):
    report = "# acrrules report\n\n" + "| 10.0.0.0/8 | added |\n" * 4000  # ~84 KB
    job = run_job(tmp_path, open_pr="7", report=report)
    assert job.failed_step is None, job.explain()
    gh = [c for c in job.calls if c.startswith("gh ")]
    assert gh[1].startswith("gh pr edit acrrules/service-tags --title "), gh
    assert len(job.body.encode()) <= 65536 and job.body.startswith(report[:1000])
    assert "the whole report is in the summary of https://github.com/contoso/firewall/actions/runs/42" in job.body
    assert report in job.summary
