"""The registry of consumers (tests/consumers.py) is complete, agrees with acrrules' table of
targets, and none of its checks is vacuous: every real consumer rejects a broken copy of each file
it checks, and the hostile-string structure comparison sees a change in each file's data."""

from __future__ import annotations

import shutil
from pathlib import Path

import consumers
import pytest
from conftest import latest_servicetags, run_cli, sample_specs
from consumers import CONSUMERS, FILES, HostileCase
from regen_golden import sample_cloud

from acrrules.render import TERRAFORM_VERSIONS_FILE
from acrrules.targets import TARGETS

CLOUD_KIND = {"AzureCloud": "Public", "AzureUSGovernment": "AzureGovernment", "AzureChinaCloud": "China"}


def test_every_target_has_a_consumer_and_the_registry_says_what_acrrules_renders():
    assert list(CONSUMERS) == list(TARGETS)
    for tid, target in TARGETS.items():
        c = CONSUMERS[tid]
        assert c.names == tuple(name for name, _ in target.files), tid
        assert {f.name for f in c.files if f.prefix} == set(target.service_tag_files()), tid
        assert {f.name for f in c.files if f.plain} == set(target.plain_files), tid
        assert c.needs_service_tags == target.needs_service_tags and c.terraform == target.terraform, tid
    assert consumers.VERSIONS_TF.name == TERRAFORM_VERSIONS_FILE
    assert set(FILES) == {n for c in CONSUMERS.values() for n in c.names} | {TERRAFORM_VERSIONS_FILE}


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> dict[str, Path]:
    """Every sample rendered with the newest Service Tags file of its cloud: every file of every target."""
    out = {}
    for spec in sample_specs():
        d = tmp_path_factory.mktemp(spec.stem)
        r = run_cli("render", spec, "--service-tags", latest_servicetags(CLOUD_KIND[sample_cloud(spec)]), "--out", d)
        assert r.code == 0, r.err
        assert sorted(p.name for p in d.iterdir() if p.name != ".acrrules-manifest") == sorted(
            consumers.output_files()
        ), spec
        out[spec.stem] = d
    return out


def _spoiled(outputs: dict[str, Path], name: str, tmp_path: Path) -> tuple[Path, str, str]:
    """A copy of the first sample's output directory whose `name` the registry's `spoil` changes, that
    file spoiled (the checker sees the other files of the directory whole); its good and broken text."""
    for stem, d in outputs.items():
        good = (d / name).read_text(encoding="utf-8")
        bad = FILES[name].spoil(good)
        if bad != good:
            copy = tmp_path / stem
            shutil.copytree(d, copy)
            (copy / name).write_text(bad, encoding="utf-8")
            return copy / name, good, bad
    raise AssertionError(f"the spoil of {name} changes no sample's file")


@pytest.mark.parametrize("name", sorted(FILES))
def test_the_real_consumer_rejects_a_broken_file(outputs, name, tmp_path):
    """The consumers the tests rely on really fail on each kind of file when it is wrong."""
    path, _, _ = _spoiled(outputs, name, tmp_path)
    checker = FILES[name].checker
    checker.need()
    with pytest.raises(AssertionError):
        checker.run([path])


@pytest.mark.parametrize("name", sorted(FILES))
def test_the_structure_comparison_sees_a_change_in_the_data(outputs, name, tmp_path):
    """tests/test_hostile_strings.py would see it if a value that may reach only comments changed a file's data
    (a difference, or a file its language's reader refuses)."""
    _, good, bad = _spoiled(outputs, name, tmp_path)
    unreaching = HostileCase("no-such-field", "x", "y")
    consumers.hostile_structure(name, good, good, unreaching)
    with pytest.raises(Exception):  # noqa: B017 - any failure of the reader or of the comparison counts
        consumers.hostile_structure(name, bad, good, unreaching)


def test_output_files_follow_the_service_tags_file():
    every = consumers.output_files()
    assert every[-1] == TERRAFORM_VERSIONS_FILE and len(every) == len(set(every)) == len(FILES)
    fqdn_only = consumers.output_files(service_tags=False)
    assert fqdn_only == [n for n in every if not FILES[n].prefix]
    assert consumers.output_files(["nsg-arm"]) == ["nsg.json"]
    assert consumers.output_files(["nftables", "nsg-tf"]) == ["acrrules.nft", "nsg.tf", TERRAFORM_VERSIONS_FILE]
    with pytest.raises(ValueError):
        consumers.output_files(["nftables"], service_tags=False)
