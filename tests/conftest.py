"""Shared test helpers.

Tests that need a real tool (terraform, nft, iptables, ipset, unshare as root)
or ../shared (real Service Tags files, validators) skip with a reason when it
is missing, except under ACRRULES_REQUIRE_TOOLS=1 (CI), where they fail.
"""

from __future__ import annotations

import datetime
import glob
import io
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

# CI must be repeatable: the same examples every run (a new random failure should surface in a
# developer's run or a fuzz run, ACRRULES_FUZZ_EXAMPLES=N, not block a landing at random).
hypothesis_settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("ACRRULES_SHARED", REPO.parent / "shared"))
SERVICETAGS = SHARED / "data" / "servicetags"
VALIDATORS = SHARED / "tools" / "validators"
SAMPLES = REPO / "samples"
GOLDEN = REPO / "tests" / "golden"
REQUIRE_TOOLS = os.environ.get("ACRRULES_REQUIRE_TOOLS") == "1"


def _missing(reason: str):
    if REQUIRE_TOOLS:
        pytest.fail(f"ACRRULES_REQUIRE_TOOLS=1 but {reason}", pytrace=False)
    pytest.skip(reason)


def need_tool(*names: str) -> None:
    for name in names:
        if shutil.which(name) is None:
            _missing(f"{name} is not installed")


def console_script(name: str) -> str:
    """A command installed by the test extra (pre-commit, actionlint): the one beside this
    Python (`.venv/bin/pytest` runs without the venv on PATH), else the one on PATH."""
    here = Path(sys.executable).parent / name
    if here.is_file() and os.access(here, os.X_OK):
        return str(here)
    need_tool(name)
    return shutil.which(name)


def need_root_netns() -> None:
    need_tool("unshare")
    if os.geteuid() != 0:
        _missing("kernel tests need root for `unshare -n`")


def need_shared() -> None:
    if not SERVICETAGS.is_dir() or not VALIDATORS.is_dir():
        _missing(f"{SHARED} (real Service Tags files and validators) is not present")


def servicetags_files(cloud: str | None = None) -> list[Path]:
    """Real Service Tags files, oldest first; cloud is Public, AzureGovernment or China."""
    need_shared()
    pattern = f"ServiceTags_{cloud or '*'}_*.json"
    files = sorted(Path(p) for p in glob.glob(str(SERVICETAGS / pattern)))
    if not files:
        _missing(f"no {pattern} in {SERVICETAGS}")
    return files


def servicetags_name(days_ago: int = 0, cloud: str = "Public") -> str:
    """ServiceTags_<cloud>_<YYYYMMDD>.json dated `days_ago` days before today (UTC): a name render
    does not call stale, and not after today, which the Service Tags checks refuse."""
    day = datetime.datetime.now(datetime.UTC).date() - datetime.timedelta(days=days_ago)
    return f"ServiceTags_{cloud}_{day:%Y%m%d}.json"


def service_tag(
    name: str,
    prefixes: Sequence[str],
    *,
    change: int = 1,
    region: str | None = None,
    region_id: int = 0,
    features: Sequence[str] = ("API", "NSG"),
) -> dict:
    """One entry of a Service Tags file in Microsoft's layout: `Service.Region` (or a global `Service`;
    `region=""` for a global tag with a dot, such as AzureFrontDoor.FirstParty) with these addressPrefixes."""
    service, _, in_name = name.partition(".")
    region = in_name if region is None else region
    return {
        "name": name,
        "id": name,
        "properties": {
            "changeNumber": change,
            "region": region.lower(),
            "regionId": region_id,
            "platform": "Azure",
            "systemService": service,
            "addressPrefixes": list(prefixes),
            "networkFeatures": list(features),
        },
    }


def service_tags_document(values: Sequence[dict], cloud: str = "Public", change: int = 7) -> dict:
    """A whole Service Tags file (service_tag entries), as json.loads reads it."""
    return {"changeNumber": change, "cloud": cloud, "values": list(values)}


def latest_servicetags(cloud: str = "Public") -> Path:
    return servicetags_files(cloud)[-1]


CLOUD_FILE_KIND = {"AzureCloud": "Public", "AzureUSGovernment": "AzureGovernment", "AzureChinaCloud": "China"}


@dataclass
class Result:
    code: int
    out: str
    err: str


def run_cli(*args: str, cwd: Path | None = None) -> Result:
    """Run the CLI in this process (fast); cwd changes for the call only."""
    from acrrules.cli import main

    out, err = io.StringIO(), io.StringIO()
    old = os.getcwd()
    try:
        if cwd is not None:
            os.chdir(cwd)
        with redirect_stdout(out), redirect_stderr(err):
            code = main([str(a) for a in args])
    finally:
        os.chdir(old)
    return Result(code, out.getvalue(), err.getvalue())


def run_cli_process(
    *args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 60, preexec_fn=None
) -> Result:
    """Run the CLI as a real process (exit codes, tracebacks, hash seeds); `preexec_fn` runs in the
    child before it starts (e.g. resource limits)."""
    e = dict(os.environ)
    e.pop("ACRRULES_DEBUG", None)
    if env:
        e.update(env)
    p = subprocess.run(
        [sys.executable, "-m", "acrrules", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=e,
        timeout=timeout,
        preexec_fn=preexec_fn,
    )
    return Result(p.returncode, p.stdout, p.stderr)


def run_validator(script: str, *args, python: bool = True) -> subprocess.CompletedProcess:
    need_shared()
    path = VALIDATORS / script
    cmd = [sys.executable, str(path), *map(str, args)] if python else [str(path), *map(str, args)]
    env = dict(os.environ, TF_CLI_CONFIG_FILE="/dev/null")
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)


def terraform_fmt_check(*files) -> subprocess.CompletedProcess:
    need_tool("terraform")
    env = dict(os.environ, TF_CLI_CONFIG_FILE="/dev/null", CHECKPOINT_DISABLE="1")
    return subprocess.run(
        ["terraform", "fmt", "-check", "-diff", "-no-color", *map(str, files)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def sample_specs() -> list[Path]:
    return sorted(SAMPLES.glob("*.yaml"))
