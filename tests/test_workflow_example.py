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
    "unquoted-variable": ('run: acrrules render "$SPEC"', "run: acrrules render $SPEC", "shellcheck", r"SC2086"),
    "deprecated-runtime": ("actions/checkout@v7", "actions/checkout@v4", "action", r'"node20" is deprecated'),
    "unknown-step-output": (
        "steps.diff.outputs.changed == 'true'\n        env:\n          NEW:",
        "steps.dif.outputs.changed == 'true'\n        env:\n          NEW:",
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


# --- the shell steps, run in order ------------------------------------------------------

OLD = "ServiceTags_Public_20261130.json"
NEW = "ServiceTags_Public_20261207.json"

# Stand-in for acrrules: logs its arguments, behaves as §5 of the spec says, driven by STUB_*.
STUB_ACRRULES = r"""
import os, sys
from pathlib import Path
args = sys.argv[1:]
with open(os.environ["STUB_LOG"], "a") as log:
    log.write("acrrules " + " ".join(args) + "\n")
def opt(name):
    return args[args.index(name) + 1]
if args[:2] == ["tags", "fetch"]:
    path = Path(opt("--dir")) / os.environ["STUB_FETCHED"]
    if not path.exists():
        path.write_text("new tags\n")
    else:
        print(f"{path} is already there", file=sys.stderr)
    print("fetched from https://download.microsoft.com/...", file=sys.stderr)
    print(path)
elif args[:2] == ["tags", "diff"]:
    print("AzureContainerRegistry.WestEurope: +1 -0")
    sys.exit(int(os.environ["STUB_DIFF_EXIT"]))
elif args[0] == "report":
    sys.stdout.write(os.environ.get("STUB_REPORT", "# acrrules report\n\n| tag | + | - |\n"))
elif args[0] == "render":
    (Path(opt("--out")) / "nsg.json").write_text("rules from " + opt("--service-tags") + "\n")
else:
    sys.exit(2)
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


def run_job(
    tmp_path: Path,
    *,
    committed: list[str] = (OLD,),
    fetched: str = NEW,
    diff_exit: int = 1,
    open_pr: str = "",
    report: str | None = None,
) -> Job:
    need_tool("git", "bash")
    wf = workflow()
    (job,) = wf["jobs"].values()
    assert job["defaults"]["run"]["shell"] == "bash"
    env_vars = {**wf.get("env", {}), **job.get("env", {})}

    # The user's repository: a bare remote, and the runner's checkout of it.
    git_env = dict(os.environ, GIT_CONFIG_GLOBAL=os.devnull, GIT_CONFIG_NOSYSTEM="1")
    for key in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        git_env.pop(key, None)

    def git(*args, cwd):
        r = subprocess.run(["git", *args], cwd=cwd, env=git_env, capture_output=True, text=True)
        assert r.returncode == 0, f"git {args}: {r.stderr}"

    seed, remote, work = tmp_path / "seed", tmp_path / "remote.git", tmp_path / "work"
    (seed / env_vars["TAGS_DIR"]).mkdir(parents=True)
    (seed / env_vars["RULES_DIR"]).mkdir()
    (seed / env_vars["SPEC"]).write_text("version: 1\n", encoding="utf-8")
    for name in committed:
        (seed / env_vars["TAGS_DIR"] / name).write_text(f"{name}\n", encoding="utf-8")
    (seed / env_vars["RULES_DIR"] / "nsg.json").write_text(f"rules from {OLD}\n", encoding="utf-8")
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
        STUB_LOG=str(log),
        STUB_FETCHED=fetched,
        STUB_DIFF_EXIT=str(diff_exit),
        STUB_OPEN_PR=open_pr,
        STUB_BODY=str(tmp_path / "body.md"),
        **env_vars,
    )
    if report is not None:
        base_env["STUB_REPORT"] = report

    outputs: dict[str, dict] = {}
    ran, logs, failed = [], {}, None
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
            timeout=60,
        )
        ran.append(name)
        logs[name] = f"exit {p.returncode}\n{p.stdout}{p.stderr}"
        if "id" in step:
            outputs[step["id"]] = dict(line.split("=", 1) for line in out_file.read_text().splitlines() if line)
        if p.returncode != 0:
            failed = name
            break
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
        c.split()[1] if not c.startswith("acrrules tags") else " ".join(c.split()[1:3])
        for c in job.calls
        if c.startswith("acrrules ")
    ]


def test_changed_tags_open_a_pull_request_with_the_report(tmp_path):
    job = run_job(tmp_path, diff_exit=1)
    assert job.failed_step is None, job.explain()
    old, new = f"servicetags/{OLD}", f"servicetags/{NEW}"
    acr = [c for c in job.calls if c.startswith("acrrules ")]
    assert acr == [
        "acrrules tags fetch --spec acr.yaml --dir servicetags",
        f"acrrules tags diff {old} {new} --spec acr.yaml",
        f"acrrules report acr.yaml --service-tags {new} --since {old} --out rules --format markdown",
        f"acrrules render acr.yaml --service-tags {new} --out rules",
    ], job.explain()
    gh = [c for c in job.calls if c.startswith("gh ")]
    assert gh[0].startswith("gh pr list --head acrrules/service-tags --state open"), gh
    assert gh[1] == (
        f"gh pr create --base main --head acrrules/service-tags --title acrrules: rules for {NEW} "
        f"--body-file {tmp_path / 'runner-temp' / 'report.md'}"
    ), gh
    assert job.body == "# acrrules report\n\n| tag | + | - |\n"
    assert "# acrrules report" in job.summary
    # The branch on the remote: the new Service Tags file replaces the old, the rules are re-rendered.
    assert job.show(f"acrrules/service-tags:{new}") == "new tags\n"
    assert job.show(f"acrrules/service-tags:{old}") is None
    assert job.show("acrrules/service-tags:rules/nsg.json") == f"rules from {new}\n"
    assert job.show(f"main:{old}") is not None  # main untouched


@pytest.mark.parametrize("diff_exit", [2, 3, 70])
def test_tags_diff_failing_fails_the_job(tmp_path, diff_exit):
    job = run_job(tmp_path, diff_exit=diff_exit)
    assert job.failed_step == "Compare the tags that acr.yaml uses", job.explain()
    assert f"exit {diff_exit}\n" in job.logs[job.failed_step]
    assert f"::error::acrrules tags diff failed (exit {diff_exit})" in job.logs[job.failed_step]
    assert _acrrules_calls(job) == ["tags fetch", "tags diff"]
    assert not [c for c in job.calls if c.startswith("gh ")]


def test_unchanged_tags_do_nothing(tmp_path):
    job = run_job(tmp_path, diff_exit=0)
    assert job.failed_step is None, job.explain()
    assert job.ran[-1] == "Compare the tags that acr.yaml uses"
    assert _acrrules_calls(job) == ["tags fetch", "tags diff"]
    assert not [c for c in job.calls if c.startswith("gh ")]
    assert job.show("acrrules/service-tags") is None


def test_no_newer_file_does_nothing(tmp_path):
    job = run_job(tmp_path, committed=["ServiceTags_Public_20261123.json", OLD], fetched=OLD)
    assert job.failed_step is None, job.explain()
    assert _acrrules_calls(job) == ["tags fetch"]
    assert "still the newest" in job.logs["Fetch the newest Service Tags file"]


def test_old_file_is_the_newest_committed_one_of_the_same_cloud(tmp_path):
    committed = ["ServiceTags_China_20261201.json", "ServiceTags_Public_20261116.json", OLD]
    job = run_job(tmp_path, committed=committed)
    assert job.failed_step is None, job.explain()
    assert f"acrrules tags diff servicetags/{OLD} servicetags/{NEW} --spec acr.yaml" in job.calls


def test_no_committed_service_tags_file_fails(tmp_path):
    job = run_job(tmp_path, committed=[])
    assert job.failed_step == "Fetch the newest Service Tags file", job.explain()
    assert "::error::no ServiceTags_*.json in servicetags: commit" in job.logs[job.failed_step]
    assert _acrrules_calls(job) == []  # before any download


def test_no_committed_file_of_the_cloud_fails(tmp_path):
    job = run_job(tmp_path, committed=["ServiceTags_China_20261201.json"])
    assert job.failed_step == "Fetch the newest Service Tags file", job.explain()
    assert "::error::no committed ServiceTags_Public_*.json in servicetags" in job.logs[job.failed_step]


def test_open_pull_request_is_updated_and_a_long_report_cut(tmp_path):
    report = "# acrrules report\n\n" + "| 10.0.0.0/8 | added |\n" * 4000  # ~84 KB
    job = run_job(tmp_path, open_pr="7", report=report)
    assert job.failed_step is None, job.explain()
    gh = [c for c in job.calls if c.startswith("gh ")]
    assert gh[1].startswith("gh pr edit acrrules/service-tags --title "), gh
    assert len(job.body.encode()) <= 65536 and job.body.startswith(report[:1000])
    assert "the whole report is in the summary of https://github.com/contoso/firewall/actions/runs/42" in job.body
    assert report in job.summary
