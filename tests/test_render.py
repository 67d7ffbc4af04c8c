"""Rendering the FQDN/tag targets: real consumers accept every output, and the
rules say exactly what the plan says (parsed back, not string-matched)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import consumers
import pytest
import yaml
from conftest import REPO, REQUIRE_TOOLS, run_cli, run_cli_process, sample_specs
from consumers import hcl_unquote, tf_resources
from oracles import nsg_slot

from acrrules import catalog, pipeline
from acrrules import plan as planning

FQDN_FILES = consumers.output_files(service_tags=False)  # what render writes without a Service Tags file
FQDN_CHECKERS = list(dict.fromkeys(consumers.FILES[n].checker for n in FQDN_FILES))


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict[str, Path]:
    """Every sample rendered once (targets that need no Service Tags file)."""
    out = {}
    for spec in sample_specs():
        d = tmp_path_factory.mktemp(spec.stem)
        r = run_cli("render", spec, "--out", d)
        assert r.code == 0, r.err
        assert sorted(p.name for p in d.iterdir() if p.name != ".acrrules-manifest") == sorted(FQDN_FILES), spec
        out[spec.stem] = d
    return out


def _resources(doc, rtype):
    return {label: body for t, label, body in tf_resources(doc) if t == rtype}


@pytest.mark.parametrize("checker", FQDN_CHECKERS, ids=lambda c: c.name.split()[0])
def test_every_output_passes_its_real_consumer(rendered, checker):
    """Each consumer tests/consumers.py names (terraform fmt + tf_schema_check --strict, strict arm_check,
    squid_check, k8s_check --strict, ...) over its files of every sample, in one batch."""
    files = sorted(
        p
        for d in rendered.values()
        for p in d.iterdir()
        if p.name != ".acrrules-manifest" and consumers.checker_of(p) is checker
    )
    assert len(files) == sum(consumers.FILES[n].checker is checker for n in FQDN_FILES) * len(rendered)
    checker.need()
    checker.run(files)


@pytest.mark.parametrize("spec", sample_specs(), ids=lambda p: p.stem)
def test_rules_match_the_plan(spec, rendered):
    loaded = pipeline.load_description(str(spec))
    p = planning.build(loaded.description)
    d = rendered[spec.stem]
    want_tags = [t.tag for t in p.tags]
    desc = loaded.description
    settings = (yaml.safe_load(spec.read_text()) or {}).get("targets", {})  # as written, defaults from the README
    arm_first = settings.get("nsg-arm", {}).get("priority", 100)
    tf_first = settings.get("nsg-tf", {}).get("priority", 100)
    network_rules = settings.get("azure-firewall", {}).get("network_rules", False)
    sources = list(desc.sources)

    # ARM: one tag per rule, in destinationAddressPrefix, at the tag's fixed slot above the setting
    arm = consumers.read(d / "nsg.json")
    rules = arm["resources"]
    slots = {t.tag: nsg_slot(desc.cloud, t.tag) for t in p.tags}
    assert sorted(r["properties"]["destinationAddressPrefix"] for r in rules) == sorted(want_tags)
    assert {r["properties"]["destinationAddressPrefix"]: r["properties"]["priority"] for r in rules} == {
        tag: arm_first + slot for tag, slot in slots.items()
    }
    for r in rules:
        props = r["properties"]
        assert "destinationAddressPrefixes" not in props
        assert (props["direction"], props["access"], props["protocol"], props["destinationPortRange"]) == (
            "Outbound",
            "Allow",
            "Tcp",
            "443",
        )
        assert len(props["description"]) <= catalog.NSG_DESCRIPTION_MAX
        assert props.get("sourceAddressPrefixes", [props.get("sourceAddressPrefix")]) == sources
    names = [r["name"].split("'")[-2] for r in rules]
    assert len(set(names)) == len(names) and all(len(n) <= 80 for n in names)
    assert arm["metadata"]["_generator"]["name"] == "acrrules"

    # nsg-tf: the same rules
    tf = _resources(consumers.read(d / "nsg.tf"), "azurerm_network_security_rule")
    assert sorted(hcl_unquote(b["destination_address_prefix"]) for b in tf.values()) == sorted(want_tags)
    assert {hcl_unquote(b["destination_address_prefix"]): b["priority"] for b in tf.values()} == {
        tag: tf_first + slot for tag, slot in slots.items()
    }

    # azure-firewall: application rules allow exactly the endpoint FQDNs; network rules exactly the tags
    fw = _resources(consumers.read(d / "azure-firewall.tf"), "azurerm_firewall_policy_rule_collection_group")
    fqdns, net_tags = [], []
    for body in fw.values():
        assert body["firewall_policy_id"] == "${var.firewall_policy_id}"
        for coll in body.get("application_rule_collection", []):
            for rule in coll["rule"]:
                fqdns += [hcl_unquote(f) for f in rule["destination_fqdns"]]
                assert [hcl_unquote(x) for x in rule["source_addresses"]] == sources
                assert [(hcl_unquote(pr["type"]), pr["port"]) for pr in rule["protocols"]] == [("Https", 443)]
        for coll in body.get("network_rule_collection", []):
            for rule in coll["rule"]:
                net_tags += [hcl_unquote(t) for t in rule["destination_addresses"]]
    assert sorted(fqdns) == sorted(e.fqdn for e in p.endpoints)
    assert net_tags == (want_tags if network_rules else [])


def test_output_is_byte_identical_across_hash_seeds(tmp_path):
    spec = REPO / "samples" / "private-link-regional.yaml"
    outs = []
    for seed in ("0", "1", "12345"):
        d = tmp_path / seed
        r = run_cli_process("render", spec, "--out", d, env={"PYTHONHASHSEED": seed})
        assert r.code == 0, r.err
        outs.append({p.name: p.read_bytes() for p in d.iterdir() if p.name != ".acrrules-manifest"})
    assert outs[0] == outs[1] == outs[2]


def test_check_reports_drift_and_writes_nothing(tmp_path):
    spec = REPO / "samples" / "basic.yaml"
    assert run_cli("render", spec, "--out", tmp_path).code == 0
    assert run_cli("render", spec, "--out", tmp_path, "--check").code == 0
    f = tmp_path / "nsg.tf"
    f.write_text(
        f.read_text().replace('direction                   = "Outbound"', 'direction                   = "Inbound"')
    )
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    r = run_cli("render", spec, "--out", tmp_path, "--check")
    assert r.code == 1
    assert (
        '-  direction                   = "Inbound"' in r.out and '+  direction                   = "Outbound"' in r.out
    )
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    empty = tmp_path / "empty"
    r = run_cli("render", spec, "--out", empty, "--check")
    assert r.code == 1 and not empty.exists()


def test_stdout_output(tmp_path):
    spec = REPO / "samples" / "basic.yaml"
    one = run_cli("render", spec, "--target", "nsg-arm", "--out", "-")
    assert one.code == 0
    json.loads(one.out)  # a single target on stdout is the file itself
    many = run_cli("render", spec, "--out", "-")
    assert many.code == 0
    assert [line for line in many.out.splitlines() if line.startswith("# ==> ")] == [
        f"# ==> {name} <==" for name in FQDN_FILES
    ]  # in the order of the targets' table, versions.tf last


def test_target_selection_errors(tmp_path):
    spec = REPO / "samples" / "basic.yaml"
    r = run_cli("render", spec, "--target", "nope", "--out", tmp_path)
    assert r.code == 2 and "unknown target 'nope'" in r.err
    assert not any(tmp_path.iterdir())


def test_nsg_priority_overflow_is_an_input_error_before_writing(tmp_path):
    spec = tmp_path / "d.yaml"
    spec.write_text(
        "version: 1\nregistries:\n  - {name: overflow1, sku: Premium, location: eastus,"
        " replicas: [westus, westeurope]}\ntargets:\n  nsg-arm: {priority: 3842}\n"
    )
    out = tmp_path / "out"
    r = run_cli("render", spec, "--out", out)
    assert r.code == 2
    assert r.err.splitlines() == [
        f"{spec}:5:23: targets.nsg-arm.priority: 3842 is out of range: use a value from 100 to 3841 (must leave "
        "room for the whole block of 256 priorities acrrules owns below Azure's maximum 4096)"
    ]
    assert not out.exists()


def test_firewall_rejects_ipv6_sources(tmp_path):
    spec = tmp_path / "d.yaml"
    spec.write_text(
        "version: 1\nregistries:\n  - {name: sixsource, sku: Basic, location: eastus}\n"
        "sources: ['10.0.0.0/8', '2001:db8::/32']\n"
    )
    r = run_cli("render", spec, "--out", tmp_path / "o")
    assert r.code == 2 and f"{spec}:4:25: " in r.err and "IPv6" in r.err
    assert run_cli("render", spec, "--target", "nsg-arm", "--out", tmp_path / "o").code == 0


def test_installed_wheel_ships_templates_and_schemas(tmp_path):
    """A non-editable install works from any directory (templates and schemas inside the package)."""
    import subprocess
    import sys

    wheel_dir = tmp_path / "wheel"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(wheel_dir),
            str(REPO),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if r.returncode != 0 and "No module named" in r.stderr and not REQUIRE_TOOLS:  # CI must build it
        pytest.skip(f"cannot build a wheel offline here: {r.stderr.strip()[-200:]}")
    assert r.returncode == 0, r.stderr
    site = tmp_path / "site"
    wheel = next(wheel_dir.glob("acrrules-*.whl"))
    from acrrules import __version__

    assert wheel.name.startswith(f"acrrules-{__version__}-"), wheel.name  # the version is acrrules.__version__
    r = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert (site / "acrrules" / "templates" / "nsg.json.j2").is_file()
    assert (site / "acrrules" / "compiled_templates" / "JINJA_VERSION").is_file()  # setup.py compiled them
    assert (site / "acrrules" / "schemas" / "registry.schema.json").is_file()
    assert (site / "acrrules" / "py.typed").is_file()  # PEP 561: type checkers read the API's types
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(REPO / "samples" / "basic.yaml", elsewhere / "d.yaml")
    env = dict(os.environ, PYTHONPATH=str(site))
    probe = subprocess.run(
        [sys.executable, "-c", "import acrrules, sys; print(acrrules.__file__)"],
        capture_output=True,
        text=True,
        cwd=elsewhere,
        env=env,
    )
    assert probe.stdout.startswith(str(site)), probe.stdout
    loader = subprocess.run(
        [sys.executable, "-c", "from acrrules.render import environment; print(type(environment().loader).__name__)"],
        capture_output=True,
        text=True,
        cwd=elsewhere,
        env=env,
    )
    assert loader.stdout == "ModuleLoader\n", loader.stdout + loader.stderr  # no template compiled at run time
    r = subprocess.run(
        [sys.executable, "-m", "acrrules", "render", "d.yaml", "--out", "out"],
        capture_output=True,
        text=True,
        cwd=elsewhere,
        env=env,
    )
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (elsewhere / "out").iterdir() if p.name != ".acrrules-manifest") == sorted(FQDN_FILES)
    s = subprocess.run(
        [sys.executable, "-m", "acrrules", "schema"], capture_output=True, text=True, cwd=elsewhere, env=env
    )
    assert json.loads(s.stdout)["$schema"].endswith("2020-12/schema")


def test_rerender_leaves_unchanged_files_alone_and_replaces_changed_ones(tmp_path):
    spec = REPO / "samples" / "basic.yaml"
    assert run_cli("render", spec, "--out", tmp_path).code == 0
    before = {p.name: p.stat() for p in tmp_path.iterdir() if p.name != ".acrrules-manifest"}
    (tmp_path / "nsg.tf").write_text("stale\n")
    stale_inode = (tmp_path / "nsg.tf").stat().st_ino
    r = run_cli("render", spec, "--out", tmp_path)
    assert r.code == 0
    assert sorted(line.split()[0] for line in r.err.splitlines() if not line.startswith("skipped")) == ["unchanged"] * (
        len(before) - 1
    ) + ["wrote"]
    after = {p.name: p.stat() for p in tmp_path.iterdir()}
    for name in before.keys() - {"nsg.tf"}:
        assert (after[name].st_ino, after[name].st_mtime_ns) == (before[name].st_ino, before[name].st_mtime_ns), name
    assert after["nsg.tf"].st_ino != stale_inode
    assert run_cli("render", spec, "--out", tmp_path, "--check").code == 0


def test_validate_checks_platform_limits_too(tmp_path):
    spec = tmp_path / "d.yaml"
    spec.write_text(
        "version: 1\nregistries:\n  - {name: overflow1, sku: Premium, location: eastus,"
        " replicas: [westus, westeurope]}\ntargets:\n  nsg-tf: {priority: 3000}\n"
        "  iptables: {chain: LOG}\n"
    )
    r = run_cli("validate", spec)
    assert r.code == 2
    assert r.err.splitlines() == [
        f"{spec}:6:21: targets.iptables.chain: 'LOG' is a built-in chain, verdict or target of iptables, so it "
        "cannot name the chain of acrrules: choose another name (the default is the description's name, "
        "upper-cased)"
    ]
    assert run_cli("validate", spec, "--target", "nsg-tf").code == 0  # only the targets asked for
    for sample in sample_specs():  # independent examples: together they would clash (one name, one NSG block)
        good = run_cli("validate", sample)
        assert good.code == 0 and len(good.out.splitlines()) == 1, good.err
