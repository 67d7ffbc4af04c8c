"""Property tests: random valid descriptions -> every output passes its real consumer.

Hypothesis draws descriptions (tests/strategies.py: all three clouds, 1-50
registries, every feature combination, sources, every target setting).  Each
one runs through the real pipeline (load, validate, plan, render) with the
newest real Service Tags file of its cloud, and its outputs are checked in
process against invariants computed by an oracle written from the spec
(§2 endpoints, service tags, merged prefixes; tests/oracles.py) and against the platform rules
(NSG priorities/names/descriptions, no duplicate rules), each file by the oracle its entry in
tests/consumers.py names.  The files are kept,
one folder per example, and then handed in batches to the real consumers that
tests/consumers.py names for each file: `terraform fmt -check` and `tf_schema_check.py --strict`
over all .tf files, `arm_check.py` over all ARM templates, `squid_check.sh` per squid.conf,
`k8s_check.py --strict` over the Kubernetes files, and for every nft / iptables example a real
load and reload in a fresh network namespace.  Finally the same examples
are rendered again in subprocesses with different PYTHONHASHSEED values and
must come out byte-identical.

Default: 25 examples (a few seconds).  More: ACRRULES_FUZZ_EXAMPLES=500.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import itertools
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import consumers
import oracles
import pytest
from conftest import CLOUD_FILE_KIND, REPO, latest_servicetags, need_shared
from consumers import CONSUMERS, OracleCase
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oracles import endpoints as oracle_endpoints
from oracles import tags as oracle_tags
from strategies import descriptions, dump_description

from acrrules import catalog, pipeline, servicetags
from acrrules import plan as planning
from acrrules.errors import InputError
from acrrules.targets import TARGETS

FUZZ_EXAMPLES = int(os.environ.get("ACRRULES_FUZZ_EXAMPLES", "25"))

# ---- the oracle: spec §2, spelled out here independently of acrrules.catalog ------------------


def oracle_prefixes(tags: set[str], raw_values: dict[str, list[str]]) -> dict[int, list]:
    nets = [ipaddress.ip_network(p) for t in tags for p in raw_values[t]]
    return {v: list(ipaddress.collapse_addresses(n for n in nets if n.version == v)) for v in (4, 6)}


HOST_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def valid_fqdn(fqdn: str, cloud: str) -> bool:
    name = fqdn[2:] if fqdn.startswith("*.") else fqdn
    login, storage, mcr_pair = oracles.SPEC_SUFFIXES[cloud]
    suffixes = (login, storage[2:], *(m.lstrip("*.") for m in mcr_pair))
    return (
        len(name) <= 253
        and all(HOST_LABEL.match(label) for label in name.split("."))
        and any(name == s or name.endswith("." + s) for s in suffixes)
    )


# ---- the invariants, per example -------------------------------------------------------------


def check_endpoints(data: dict, rule_plan) -> None:
    got = [(e.kind, e.fqdn, e.registry, e.region) for e in rule_plan.endpoints]
    assert len(got) == len(set(got)), "duplicate endpoints"
    assert set(got) == oracle_endpoints(data)
    assert list(rule_plan.endpoints) == sorted(rule_plan.endpoints)
    cloud = data.get("cloud", "AzureCloud")
    for _, fqdn, _, _ in got:
        assert valid_fqdn(fqdn, cloud), fqdn


# ---- the test ---------------------------------------------------------------------------------


class Example:
    def __init__(self, folder: Path, data: dict, tags_path: Path | None, targets: list[str]):
        self.folder, self.data, self.tags_path, self.targets = folder, data, tags_path, targets
        self.files: dict[str, bytes] = {}


@pytest.fixture(scope="module")
def tags_by_cloud() -> dict[str, tuple[Path, servicetags.ServiceTagsFile, dict[str, list[str]]]]:
    """cloud -> (newest real Service Tags file, loaded, tag -> raw prefixes read straight from the JSON)."""
    need_shared()
    out = {}
    for cloud, kind in CLOUD_FILE_KIND.items():
        path = latest_servicetags(kind)
        raw = json.loads(path.read_text(encoding="utf-8"))
        out[cloud] = (
            path,
            servicetags.load(str(path)),
            {v["name"]: v["properties"]["addressPrefixes"] for v in raw["values"]},
        )
    return out


def _usable_locations(tags_by_cloud) -> dict[str, list[str]]:
    """Catalog locations that the Service Tags file of the cloud has both tags for."""
    out = {}
    for cloud, (_, tags_file, _) in tags_by_cloud.items():
        info = catalog.CLOUDS[cloud]
        both = set(planning.tag_regions(tags_file, catalog.TAG_ACR, info)) & set(
            planning.tag_regions(tags_file, catalog.TAG_STORAGE, info)
        )
        out[cloud] = sorted(set(catalog.CLOUDS[cloud].locations) & both)
    return out


@functools.cache
def _features(tags_path: Path) -> dict[str, list[str] | None]:
    """Each tag's networkFeatures, read straight from the file."""
    values = json.loads(tags_path.read_text(encoding="utf-8"))["values"]
    return {v["name"]: v["properties"].get("networkFeatures") for v in values}


def refusals(data: dict, tags_path: Path | None = None, tags: set[str] = frozenset()) -> dict[str, consumers.Refusal]:
    """target -> where it may refuse this valid description (platform limits; each target's
    `refusals` in tests/consumers.py), and what its message must then say."""
    features = _features(tags_path) if tags_path is not None else {}
    return {tid: refusal for tid, c in CONSUMERS.items() if (refusal := c.refusals(data, tags, features))}


def render_example(folder: Path, data: dict, tags_by_cloud) -> Example:
    """Write the description, render every target through the real pipeline, check invariants in process."""
    folder.mkdir()
    spec = folder / "description.yaml"
    spec.write_text(dump_description(data), encoding="utf-8")
    cloud = data.get("cloud", "AzureCloud")
    tags_path, tags_file, raw_values = tags_by_cloud[cloud]
    loaded = pipeline.load_description(str(spec), tags_file)
    rule_plan = planning.build(loaded.description, tags_file)
    check_endpoints(data, rule_plan)
    tags = oracle_tags(data, set(raw_values))
    assert {t.tag for t in rule_plan.tags} == tags

    targets, files = [], {}
    allowed_refusals = refusals(data, tags_path, tags)
    for target in TARGETS:
        try:
            files.update(pipeline.render(rule_plan, [target], loaded.doc))
            targets.append(target)
        except InputError as refused:
            # Only where a platform cannot take the description, and then located at the reason.
            allowed = allowed_refusals.get(target)
            assert allowed, f"{target} refused a valid description: {refused.lines()}"
            at = tuple(f"{spec}:{m.line}:{m.column}: " for m in map(loaded.doc.mark, allowed.keys))
            assert all(line.startswith(at) for line in refused.lines()), (allowed.keys, refused.lines())
            assert not allowed.says or any(word in line for word in allowed.says for line in refused.lines()), (
                allowed.says,
                refused.lines(),
            )
    assert sorted(files) == sorted(consumers.output_files(targets)), "not the files the registry names for them"
    ex = Example(folder, data, tags_path, targets)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
        ex.files[name] = text.encode("utf-8")

    case = OracleCase(data, tags, oracle_prefixes(tags, raw_values), files)
    for name in files:
        consumers.FILES[name].oracle(case, name)
    return ex


def test_random_descriptions_pass_the_real_consumers(tmp_path_factory, tags_by_cloud):
    for checker in consumers.CHECKERS:  # before drawing: a missing tool skips (or fails) at once
        checker.need()
    root = tmp_path_factory.mktemp("fuzz")
    locations = _usable_locations(tags_by_cloud)
    examples: list[Example] = []
    numbers = itertools.count()  # failing examples (while shrinking) keep their folders: never reuse one

    @settings(
        max_examples=FUZZ_EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(st.data())
    def one(draw):
        data = draw.draw(descriptions(locations))
        examples.append(render_example(root / f"ex{next(numbers):04d}", data, tags_by_cloud))

    one()
    assert examples
    run_consumers(root, examples)
    check_hash_seed_independence(root, examples)


def run_consumers(root: Path, examples: list[Example]) -> None:
    """Every file of every kept example through the real consumer tests/consumers.py names for it, in
    batches (one per consumer; squid one file at a time, the kernel loads one namespace per example)."""
    batches = consumers.check(
        p for ex in examples for p in ex.folder.iterdir() if p.name not in ("description.yaml", ".acrrules-manifest")
    )
    rendered = {tid for ex in examples for tid in ex.targets}
    for tid in rendered:  # every rendered target's files reached their consumer
        for f in CONSUMERS[tid].files:
            assert any(p.name == f.name for p in batches[f.checker]), f"no {f.name} was checked"


# Renders every example again through the CLI's pipeline (file paths, Service Tags file loaded
# from disk) and prints the sha256 of each output.
RERENDER = textwrap.dedent("""\
    import hashlib, json, sys
    from acrrules import pipeline
    out = {}
    for folder, tags, targets in json.loads(sys.argv[1]):
        files = pipeline.run(folder + "/description.yaml", targets, tags).files
        out[folder] = {n: hashlib.sha256(t.encode("utf-8")).hexdigest() for n, t in files.items()}
    print(json.dumps(out))
""")


def check_hash_seed_independence(root: Path, examples: list[Example]) -> None:
    want = {str(ex.folder): {n: hashlib.sha256(b).hexdigest() for n, b in ex.files.items()} for ex in examples}
    job = json.dumps([[str(ex.folder), str(ex.tags_path), ex.targets] for ex in examples])
    for seed in ("0", "1", "4242"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        r = subprocess.run(
            [sys.executable, "-c", RERENDER, job], capture_output=True, text=True, env=env, cwd=REPO, timeout=600
        )
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout) == want, f"output differs under PYTHONHASHSEED={seed}"
