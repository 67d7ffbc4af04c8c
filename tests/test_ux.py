"""Small moments where a user was lost (issue 14, "Also, from the same walkthrough"): each wrong
value gets a plain message with the fix, and the Python API speaks of its own parameters."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import REPO, latest_servicetags, run_cli, sample_specs

import acrrules

SPEC = sample_specs()[0]


def one_error(r) -> str:
    """The message of a usage error: exit 2, no pydantic wording, no traceback."""
    assert r.code == 2, (r.out, r.err)
    assert "Value error" not in r.err and "is not one of" not in r.err and "Traceback" not in r.err, r.err
    return r.err.splitlines()[-1]


def test_report_format_md_suggests_markdown():
    line = one_error(run_cli("report", SPEC, "--format", "md"))
    assert "'md' is unknown: the formats are markdown and json; did you mean markdown?" in line
    assert run_cli("report", SPEC, "--format", "markdown").code == 0


@pytest.mark.parametrize(
    ("given", "meant"),
    [("Public", "AzureCloud"), ("AzureGovernment", "AzureUSGovernment"), ("China", "AzureChinaCloud")],
)
def test_tags_fetch_cloud_by_its_service_tags_name_says_which_cloud_it_is(tmp_path, given, meant):
    line = one_error(run_cli("tags", "fetch", "--cloud", given, "--dir", tmp_path))
    assert f"did you mean {meant}?" in line and f"ServiceTags_{given}_<date>.json" in line, line
    assert "the clouds are AzureCloud, AzureUSGovernment and AzureChinaCloud" in line
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", ["validate", "render"])
def test_a_mistyped_target_gets_a_did_you_mean(tmp_path, command):
    r = run_cli(command, SPEC, "--target", "nsg", "--out", tmp_path / "o") if command == "render" else None
    r = r or run_cli(command, SPEC, "--target", "nsg")
    line = one_error(r)
    assert line.startswith("unknown target 'nsg': did you mean nsg-arm or nsg-tf? choose from azure-firewall,"), line
    assert not (tmp_path / "o").exists()
    assert "did you mean nftables" in one_error(run_cli(command, SPEC, "--target", "NFTables"))


def test_max_age_without_service_tags_is_refused(tmp_path):
    out = tmp_path / "out"
    line = one_error(run_cli("render", SPEC, "--max-age", "7", "--out", out))
    assert "--max-age" in line and "add --service-tags FILE" in line
    assert not out.exists()
    assert (
        run_cli("render", SPEC, "--service-tags", latest_servicetags(), "--max-age", "100000", "--out", out).code == 0
    )


def test_validate_says_a_service_tags_file_is_one(tmp_path):
    real = latest_servicetags()
    r = run_cli("validate", real)
    assert r.code == 2 and r.out == ""
    (line,) = r.err.splitlines()
    assert line.startswith(f"{real}: this is a Service Tags file (cloud 'Public', changeNumber ")
    assert "pass it with --service-tags FILE" in line
    # `az network list-service-tags` output too, and for render, which reads a SPEC the same way
    az = tmp_path / "tags.json"
    az.write_text(json.dumps({"changeNumber": 7, "cloud": "Public", "id": "x", "name": "Public", "values": []}))
    r = run_cli("render", az, "--out", tmp_path / "o")
    assert r.code == 2 and len(r.err.splitlines()) == 1 and "this is a Service Tags file" in r.err
    assert not (tmp_path / "o").exists()


def test_api_errors_name_the_parameter_not_the_cli_option():
    d = acrrules.load(SPEC)
    with pytest.raises(ValueError, match="needs IP prefixes") as e:
        acrrules.render(d, targets=["nftables"])
    assert "service_tags=" in str(e.value) and "--service-tags" not in str(e.value)
    # and the CLI keeps its own wording
    r = run_cli("render", SPEC, "--target", "nftables", "--out", "-")
    assert r.code == 2 and "add --service-tags" in r.err and "service_tags=" not in r.err


def test_dir_shows_the_api_only():
    code = (
        "import acrrules, json; before = dir(acrrules); import acrrules.cli, acrrules.report; "
        "print(json.dumps([before, dir(acrrules), sorted(acrrules.__all__)]))"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    before, after, public = json.loads(p.stdout)
    for names in (before, after):
        assert not {"TYPE_CHECKING", "annotations", "sys", "types", "cli", "pipeline"} & set(names), names
        assert [n for n in names if not n.startswith("__")] == sorted(set(public) - {"__version__"})
    # the names still work
    assert callable(acrrules.render) and callable(acrrules.load) and acrrules.__version__
