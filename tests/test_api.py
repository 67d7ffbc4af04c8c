"""The Python API (spec §7): `import acrrules` gives the CLI's results as Python values.

`acrrules.render` must return exactly the bytes `acrrules render --out DIR` writes, for every
sample, with and without a Service Tags file; problems raise `acrrules.InputError` located
in the description as the CLI prints them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import consumers
import pytest
from conftest import REPO, latest_servicetags, run_cli, sample_specs
from regen_golden import sample_cloud

import acrrules

CLOUD_KIND = {"AzureCloud": "Public", "AzureUSGovernment": "AzureGovernment", "AzureChinaCloud": "China"}


def written(out: Path) -> dict[str, str]:
    return {p.name: p.read_bytes().decode("utf-8") for p in sorted(out.iterdir()) if p.name != ".acrrules-manifest"}


@pytest.fixture(scope="module")
def loaded_tags():
    """One loaded Service Tags file per cloud, shared by every test that renders with one."""
    cache = {}

    def get(cloud: str):
        if cloud not in cache:
            cache[cloud] = acrrules.load_service_tags(latest_servicetags(CLOUD_KIND[cloud]))
        return cache[cloud]

    return get


@pytest.mark.parametrize("with_tags", [False, True], ids=["fqdn-only", "service-tags"])
@pytest.mark.parametrize("spec", sample_specs(), ids=lambda p: p.stem)
def test_render_returns_the_bytes_the_cli_writes(spec, with_tags, tmp_path, loaded_tags):
    """The CLI runs in another working directory with a relative --out, the API from here with an
    absolute out_dir: the headers name the description relative to the directory either way."""
    cli_args = ["render", str(spec), "--out", "rules"]
    api_kwargs = {}
    if with_tags:
        tags_path = latest_servicetags(CLOUD_KIND[sample_cloud(spec)])
        cli_args += ["--service-tags", str(tags_path)]
        api_kwargs["service_tags"] = loaded_tags(sample_cloud(spec))
    work = tmp_path / "work"
    work.mkdir()
    r = run_cli(*cli_args, cwd=work)
    assert r.code == 0, r.err
    files = acrrules.render(acrrules.load(spec), out_dir=work / "rules", **api_kwargs)
    assert files == written(work / "rules")
    assert all(isinstance(v, str) for v in files.values())
    if with_tags:  # a path works as well as the loaded file
        assert (
            acrrules.render(acrrules.load(str(spec)), service_tags=str(tags_path), out_dir=str(work / "rules")) == files
        )


@pytest.mark.parametrize("target", list(consumers.CONSUMERS))
def test_without_out_dir_the_bytes_are_those_of_out_dash(target, tmp_path):
    """No out_dir: the header names the description relative to the working directory, as `--out -`."""
    tags = latest_servicetags()
    spec = REPO / "samples" / "geo-replicated-premium.yaml"
    r = run_cli("render", spec, "--target", target, "--service-tags", tags, "--out", "-", cwd=REPO)
    assert r.code == 0, r.err
    old = os.getcwd()
    os.chdir(REPO)
    try:
        files = acrrules.render(acrrules.load(spec), targets=[target], service_tags=tags)
    finally:
        os.chdir(old)
    if len(files) == 1:
        assert next(iter(files.values())) == r.out
    else:  # several files on stdout: each preceded by a line naming it
        assert "".join(f"# ==> {name} <==\n{text}" for name, text in files.items()) == r.out
    if not all(f.plain for f in consumers.CONSUMERS[target].files):  # a header names the description
        assert "samples/geo-replicated-premium.yaml" in r.out


def test_endpoints_are_those_of_the_cli(tmp_path):
    for spec in sample_specs():
        r = run_cli("endpoints", spec, "--format", "json")
        assert r.code == 0
        assert [e.as_json() for e in acrrules.endpoints(acrrules.load(spec))] == json.loads(r.out)


def test_a_loaded_service_tags_file_is_reused_across_calls_and_descriptions(tmp_path):
    tags = acrrules.load_service_tags(latest_servicetags())
    public = [s for s in sample_specs() if sample_cloud(s) == "AzureCloud"]
    first = {s.stem: acrrules.render(acrrules.load(s), service_tags=tags, out_dir=tmp_path) for s in public}
    again = {s.stem: acrrules.render(acrrules.load(s), service_tags=tags, out_dir=tmp_path) for s in public}
    fresh = {
        s.stem: acrrules.render(acrrules.load(s), service_tags=latest_servicetags(), out_dir=tmp_path) for s in public
    }
    assert first == again == fresh
    assert all(sorted(files) == sorted(consumers.output_files()) for files in first.values())


def test_input_error_locates_a_bad_description(tmp_path):
    spec = tmp_path / "acr.yaml"
    spec.write_text(
        "version: 1\nregistries:\n  - name: contosoprod\n    sku: Premium\n    location: eastus\n"
        "    replica: [westeurope]\n"
    )
    with pytest.raises(acrrules.InputError) as e:
        acrrules.load(spec)
    (d,) = e.value.diagnostics
    assert (d.file, d.line, d.column) == (str(spec), 6, 5)
    assert "replica" in d.message and "replicas" in d.message
    assert isinstance(e.value, acrrules.AcrrulesError)
    r = run_cli("validate", spec)
    assert r.err.splitlines() == [str(x) for x in e.value.diagnostics]


def test_problems_found_while_rendering_are_located_in_the_description(tmp_path):
    """China's tags do not list FW: known only once the Service Tags file meets the description."""
    spec = tmp_path / "china.yaml"
    spec.write_text(
        (REPO / "samples" / "china.yaml").read_text() + "targets:\n  azure-firewall: {network_rules: true}\n"
    )
    tags = latest_servicetags("China")
    d = acrrules.load(spec)
    with pytest.raises(acrrules.InputError) as e:
        acrrules.render(d, service_tags=tags)
    r = run_cli("render", spec, "--service-tags", tags, "--out", tmp_path / "out")
    assert r.code == 2
    assert [str(x) for x in e.value.diagnostics] == r.err.splitlines()
    assert all(x.file == str(spec) and x.line and x.column for x in e.value.diagnostics)
    # the file moved lines since it was loaded but says the same: located where the file has it now
    lines = [x.line for x in e.value.diagnostics]
    spec.write_text("# moved\n" + spec.read_text())
    with pytest.raises(acrrules.InputError) as e:
        acrrules.render(d, service_tags=tags)
    assert [x.line for x in e.value.diagnostics] == [n + 1 for n in lines]
    # the file says something else now: the problem is still reported, without a stale position
    spec.write_text(spec.read_text().replace("mcr: true", "mcr: false"))
    with pytest.raises(acrrules.InputError) as e:
        acrrules.render(d, service_tags=tags)
    assert [(x.file, x.line) for x in e.value.diagnostics] == [(str(spec), None)] * len(lines)


def test_a_wrong_service_tags_file_is_an_input_error_naming_it(tmp_path):
    d = acrrules.load(REPO / "samples" / "basic.yaml")
    china = latest_servicetags("China")
    with pytest.raises(acrrules.InputError) as e:
        acrrules.render(d, service_tags=china)
    assert e.value.diagnostics[0].file == str(china) and "cloud" in e.value.diagnostics[0].message
    broken = tmp_path / "ServiceTags_Public_20251103.json"
    broken.write_text('{"changeNumber": 1, "cloud": "Public", "values": [\n')
    with pytest.raises(acrrules.InputError) as e:
        acrrules.load_service_tags(broken)
    d = e.value.diagnostics[0]
    assert (d.file, d.line, d.column) == (str(broken), 1, 51) and "truncated" in d.message


def test_targets_and_outputs(tmp_path):
    basic = acrrules.load(REPO / "samples" / "basic.yaml")
    tags = acrrules.load_service_tags(latest_servicetags())
    fqdn_files = consumers.output_files(service_tags=False)
    assert sorted(acrrules.render(basic)) == sorted(fqdn_files)
    assert sorted(acrrules.render(basic, service_tags=tags)) == sorted(consumers.output_files())
    assert set(fqdn_files) < set(consumers.output_files())
    for tid in consumers.CONSUMERS:  # each target alone: its files (all of them with the Service Tags file)
        assert sorted(acrrules.render(basic, targets=[tid], service_tags=tags)) == sorted(consumers.output_files([tid]))
    assert sorted(acrrules.render(basic, targets=["nsg-arm"])) == ["nsg.json"]
    assert sorted(acrrules.render(basic, targets=("nftables", "nsg-tf"), service_tags=tags)) == [
        "acrrules.nft",
        "nsg.tf",
        "versions.tf",
    ]
    with pytest.raises(ValueError, match="needs IP prefixes"):
        acrrules.render(basic, targets=["nftables"])
    with pytest.raises(ValueError, match="unknown target 'nope'"):
        acrrules.render(basic, targets=["nope"])
    with pytest.raises(ValueError, match="empty"):
        acrrules.render(basic, targets=[])
    with pytest.raises(TypeError):
        acrrules.render(basic, targets="nsg-arm")
    with pytest.raises(TypeError):
        acrrules.render(basic, service_tags=42)
    # outputs: in the description choose the default targets, as for the CLI
    spec = tmp_path / "acr.yaml"
    spec.write_text((REPO / "samples" / "basic.yaml").read_text() + "outputs: [nsg-arm, nftables]\n")
    d = acrrules.load(spec)
    assert d.outputs == ("nsg-arm", "nftables")
    assert sorted(acrrules.render(d)) == ["nsg.json"]  # nftables needs prefixes: left out
    assert sorted(acrrules.render(d, service_tags=tags)) == ["acrrules.nft", "nsg.json"]
    assert sorted(acrrules.render(d, targets=["nsg-tf"])) == ["nsg.tf", "versions.tf"]


def test_import_is_cheap_and_the_api_names_survive_the_pipeline_modules():
    """`import acrrules` loads no other module; `acrrules.load` and `acrrules.render` stay the API
    functions although acrrules/load.py and acrrules/render.py are modules of the package."""
    code = (
        "import sys, acrrules; "
        "print(sorted(m for m in sys.modules if m.startswith(('acrrules.', 'jinja2', 'yaml', 'jsonschema', "
        "'typer', 'click')))); "
        "import acrrules.cli, acrrules.pipeline, acrrules.load, acrrules.render; "
        "from acrrules.load import load_yaml; from acrrules.escape import hcl_string; "
        "print(acrrules.load.__module__, acrrules.render.__module__, acrrules.InputError.__module__)"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == ["[]", "acrrules.api acrrules.api acrrules.errors"]
    assert set(acrrules.__all__) <= set(dir(acrrules))
    with pytest.raises(AttributeError):
        acrrules.no_such_name  # noqa: B018


def test_the_package_is_typed():
    assert (REPO / "acrrules" / "py.typed").is_file()
    import tomllib

    data = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "py.typed" in data["tool"]["setuptools"]["package-data"]["acrrules"]
    import inspect

    sig = inspect.signature(acrrules.render)
    assert [n for n, p in sig.parameters.items() if p.kind is p.KEYWORD_ONLY] == ["targets", "service_tags", "out_dir"]
    assert sig.return_annotation == "dict[str, str]"


def test_a_copied_description_renders_like_its_file(tmp_path):
    """A Description is a value: a copy of the file elsewhere (same content) gives the same rules,
    its header naming the copy."""
    copy = tmp_path / "acr.yaml"
    shutil.copy(REPO / "samples" / "basic.yaml", copy)
    a = acrrules.render(acrrules.load(copy), targets=["nsg-arm"], out_dir=tmp_path / "rules")
    assert json.loads(a["nsg.json"])["metadata"]["description"].startswith(
        "Generated by acrrules 0.1.0 from ../acr.yaml;"
    )


def test_the_readme_example_runs(tmp_path, capsys):
    """The 10-line example of README.md's "Python API" section, run as written in a directory that
    holds its acr.yaml and Service Tags file."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Python API\n", 1)[1].split("\n## ", 1)[0]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    assert len(code.strip().splitlines()) <= 12
    shutil.copy(REPO / "samples" / "geo-replicated-premium.yaml", tmp_path / "acr.yaml")
    os.symlink(latest_servicetags(), tmp_path / "ServiceTags_Public_20251103.json")
    old = os.getcwd()
    os.chdir(tmp_path)
    try:
        exec(compile(code, "README.md", "exec"), {})
    finally:
        os.chdir(old)
    printed = capsys.readouterr().out.splitlines()
    eps = acrrules.endpoints(acrrules.load(REPO / "samples" / "geo-replicated-premium.yaml"))
    assert printed == [f"{e.kind} {e.fqdn}" for e in eps] + ["['acrrules.nft', 'nsg.json']"]
