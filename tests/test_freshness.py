"""Rendering the IP targets from a stale Service Tags file warns; `render --max-age DAYS` refuses it.

The age is today minus the date in the file's name; ACRRULES_TODAY=YYYY-MM-DD sets
"today" (read in acrrules/freshness.py only), so no test depends on the clock.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import shutil
from pathlib import Path

import pytest
from conftest import REPO, latest_servicetags, run_cli

from acrrules import freshness

CORPUS = REPO / "tests" / "badinput" / "servicetags"
SPEC = CORPUS / "spec.yaml"
IP = ("--target", "nftables", "--target", "iptables")


@pytest.fixture(autouse=True)
def no_today(monkeypatch):
    monkeypatch.delenv(freshness.ENV_TODAY, raising=False)


def tags(tmp_path: Path, name: str) -> Path:
    p = tmp_path / name
    shutil.copyfile(CORPUS / "good.json", p)
    return p


def snapshot(d: Path) -> dict:
    return (
        {p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns) for p in d.iterdir()}
        if d.exists()
        else {}
    )


def render(*args, today: str | None, monkeypatch):
    if today is not None:
        monkeypatch.setenv(freshness.ENV_TODAY, today)
    return run_cli("render", SPEC, *args)


@pytest.mark.parametrize("today, age", [("2026-11-16", 0), ("2026-11-23", 7), ("2026-11-30", 14)])
def test_a_file_up_to_14_days_old_renders_quietly(tmp_path, monkeypatch, today, age):
    f = tags(tmp_path, "ServiceTags_Public_20261116.json")
    r = render("--service-tags", f, *IP, "--out", tmp_path / "out", today=today, monkeypatch=monkeypatch)
    assert r.code == 0, r.err
    assert all(line.startswith("wrote ") for line in r.err.splitlines()), r.err


def test_an_older_file_warns_with_its_age(tmp_path, monkeypatch):
    f = tags(tmp_path, "ServiceTags_Public_20261116.json")
    r = render("--service-tags", f, *IP, "--out", tmp_path / "out", today="2026-12-01", monkeypatch=monkeypatch)
    assert r.code == 0, r.err
    lines = r.err.splitlines()
    assert lines[0] == (
        f"{f}: warning: this Service Tags file is 15 days old (dated 2026-11-16, today is "
        "2026-12-01); Microsoft publishes a new one every week: run `acrrules tags fetch` and render "
        "with the new file"
    )
    assert [line.split()[0] for line in lines[1:]] == ["wrote"] * 4
    # the same for --out - and --check
    r = render("--service-tags", f, "--target", "nftables", "--out", "-", today="2026-12-01", monkeypatch=monkeypatch)
    assert r.code == 0 and r.err == lines[0] + "\n" and r.out.startswith("#!/usr/sbin/nft -f")
    r = render(
        "--service-tags", f, *IP, "--out", tmp_path / "out", "--check", today="2026-12-01", monkeypatch=monkeypatch
    )
    assert r.code == 0 and r.err.splitlines()[0] == lines[0]


def test_max_age_turns_the_warning_into_an_error_and_writes_nothing(tmp_path, monkeypatch):
    f = tags(tmp_path, "ServiceTags_Public_20261116.json")
    out = tmp_path / "out"
    assert render("--service-tags", f, *IP, "--out", out, today="2026-11-20", monkeypatch=monkeypatch).code == 0
    older = tags(tmp_path, "ServiceTags_Public_20261101.json")
    before = snapshot(out)
    r = render(
        "--service-tags", older, *IP, "--out", out, "--max-age", "14", today="2026-12-01", monkeypatch=monkeypatch
    )
    assert r.code == 2 and r.out == "" and "Traceback" not in r.err
    assert r.err == (
        f"{older}: this Service Tags file is 30 days old (dated 2026-11-01, today is 2026-12-01), more "
        "than --max-age 14: run `acrrules tags fetch` for this week's file and render with it\n"
    )
    assert snapshot(out) == before
    # within --max-age but past 14 days: written, with the warning
    r = render(
        "--service-tags", older, *IP, "--out", out, "--max-age", "30", today="2026-12-01", monkeypatch=monkeypatch
    )
    assert r.code == 0 and "warning: this Service Tags file is 30 days old" in r.err
    r = render("--service-tags", f, *IP, "--out", out, "--max-age", "0", today="2026-11-16", monkeypatch=monkeypatch)
    assert r.code == 0 and ": warning:" not in r.err


def test_a_name_without_date_gets_a_note_and_fails_max_age(tmp_path, monkeypatch):
    f = tags(tmp_path, "az-service-tags.json")
    r = render("--service-tags", f, *IP, "--out", tmp_path / "out", today="2026-12-01", monkeypatch=monkeypatch)
    assert r.code == 0
    assert r.err.splitlines()[0] == (
        f"{f}: note: the age of this Service Tags file is unknown (its name has no "
        "ServiceTags_<Cloud>_<YYYYMMDD>.json date); make sure it is this week's"
    )
    before = snapshot(tmp_path / "out")
    r = render(
        "--service-tags",
        f,
        *IP,
        "--out",
        tmp_path / "out",
        "--max-age",
        "7",
        today="2026-12-01",
        monkeypatch=monkeypatch,
    )
    assert r.code == 2 and r.err == (
        f"{f}: cannot check the age of this Service Tags file against --max-age: its "
        "name has no date; save it as ServiceTags_<Cloud>_<YYYYMMDD>.json (the date it "
        "was published), or drop --max-age\n"
    )
    assert snapshot(tmp_path / "out") == before
    # an impossible date is no date
    odd = tags(tmp_path, "ServiceTags_Public_20261340.json")
    r = render("--service-tags", odd, *IP, "--out", "-", today="2026-12-01", monkeypatch=monkeypatch)
    assert r.code == 0 and "the age of this Service Tags file is unknown" in r.err


def test_a_file_dated_after_today_is_refused_and_a_day_of_skew_gets_a_note(tmp_path, monkeypatch):
    # A future date would pass every --max-age for years (issue 13, finding 6): refused, nothing written.
    f = tags(tmp_path, "ServiceTags_Public_20261207.json")
    out = tmp_path / "out"
    r = render("--service-tags", f, *IP, "--out", out, "--max-age", "7", today="2026-12-01", monkeypatch=monkeypatch)
    assert r.code == 2 and r.out == "" and not out.exists()
    assert r.err.startswith(f"{f}: the file is dated 2026-12-07 by its name, after today (2026-12-01)")
    # a clock a day behind the publisher's is no reason to stop the weekly loop
    f = tags(tmp_path, "ServiceTags_Public_20261202.json")
    r = render("--service-tags", f, *IP, "--out", "-", "--max-age", "7", today="2026-12-01", monkeypatch=monkeypatch)
    assert r.code == 0
    assert r.err == (
        f"{f}: note: this Service Tags file is dated 2026-12-02, 1 day after today (2026-12-01): "
        "check the file name or the clock\n"
    )


def test_only_the_ip_targets_are_checked(tmp_path, monkeypatch):
    f = tags(tmp_path, "ServiceTags_Public_20200106.json")
    r = render(
        "--service-tags",
        f,
        "--target",
        "nsg-arm",
        "--out",
        tmp_path / "out",
        "--max-age",
        "1",
        today="2026-12-01",
        monkeypatch=monkeypatch,
    )
    assert r.code == 0 and r.err == f"wrote {tmp_path / 'out' / 'nsg.json'}\n"
    # without a Service Tags file --max-age has nothing to limit: refused, not silently ignored
    r = render(
        "--target", "nsg-arm", "--out", tmp_path / "new", "--max-age", "1", today="2026-12-01", monkeypatch=monkeypatch
    )
    assert r.code == 2 and "add --service-tags FILE" in r.err and not (tmp_path / "new").exists(), r.err


def test_today_defaults_to_the_utc_date(tmp_path):
    real = latest_servicetags("Public")
    spec = tmp_path / "spec.yaml"
    spec.write_text("version: 1\nregistries:\n  - {name: contosoacr, sku: Standard, location: eastus}\n")
    r = run_cli("render", spec, "--service-tags", real, "--target", "nftables", "--out", "-")
    assert r.code == 0
    dated = datetime.datetime.strptime(real.name[-13:-5], "%Y%m%d").date()
    age = (datetime.datetime.now(datetime.UTC).date() - dated).days
    if age > 14:
        assert f"is {age} days old (dated {dated.isoformat()}" in r.err
    else:
        assert r.err == ""


@pytest.mark.parametrize("value", ["tomorrow", "2026-13-01", "20261201", "2026-12-1"])
def test_a_bad_today_is_a_usage_error(tmp_path, monkeypatch, value):
    f = tags(tmp_path, "ServiceTags_Public_20261116.json")
    r = render("--service-tags", f, *IP, "--out", tmp_path / "out", today=value, monkeypatch=monkeypatch)
    assert r.code == 2 and r.err == (
        f"ACRRULES_TODAY={value!r} is not a date: write it as YYYY-MM-DD "
        "(e.g. 2026-12-01), or unset ACRRULES_TODAY to use today's date\n"
    )
    assert not (tmp_path / "out").exists()


def test_max_age_must_be_a_whole_number_of_days(tmp_path):
    r = run_cli("render", SPEC, "--service-tags", tags(tmp_path, "x.json"), "--max-age", "-1", "--out", "-")
    assert r.code == 2 and "--max-age" in r.err and "Traceback" not in r.err
    assert os.environ.get(freshness.ENV_TODAY) is None
