"""Every bad input gets one clear, located message per problem, exit 2, and loses nothing.

The corpus is tests/badinput/ (descriptions) and tests/badinput/servicetags/
(synthetic Service Tags files); tests/badinput/cases.yaml says, per file, every
line stderr must hold.  Each case runs the real CLI against an output directory
that already holds the outputs of an earlier run: after the failure it must be
byte-for-byte the same (file list, hidden files included, and contents).
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from conftest import REPO, run_cli, run_cli_process, run_validator, servicetags_name, terraform_fmt_check
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from acrrules import model, pipeline, servicetags, validate
from acrrules import plan as planning
from acrrules.errors import InputError
from acrrules.load import decode_utf8, load_yaml
from acrrules.targets import TARGETS

CORPUS = Path(__file__).resolve().parent / "badinput"
CASES = yaml.safe_load((CORPUS / "cases.yaml").read_text(encoding="utf-8"))
TAGS_SPEC = "servicetags/spec.yaml"

# A valid description whose outputs pre-populate every output directory.
PREVIOUS_SPEC = textwrap.dedent("""\
    version: 1
    registries:
      - {name: contosoprod, sku: Premium, location: eastus, replicas: [westeurope], data_endpoints: dedicated}
    mcr: true
    sources: ["10.20.0.0/16"]
""")


def _description_cases() -> list[tuple[str, list, bool]]:
    out = []
    for name, case in CASES["descriptions"].items():
        if isinstance(case, dict):
            out.append((name, case["errors"], bool(case.get("render_only"))))
        else:
            out.append((name, case, False))
    return out


DESCRIPTION_CASES = _description_cases()
SERVICETAGS_CASES = list(CASES["servicetags"].items())


# ---- helpers ----------------------------------------------------------------------------


def snapshot(directory: Path) -> dict[str, str]:
    """Every entry under `directory` (hidden ones too) -> sha256 of its bytes ('dir' for folders)."""
    out = {}
    for root, dirs, files in os.walk(directory):
        for d in dirs:
            out[os.path.relpath(os.path.join(root, d), directory)] = "dir"
        for f in files:
            p = Path(root, f)
            out[os.path.relpath(p, directory)] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.fixture(scope="module")
def previous_outputs(tmp_path_factory) -> Path:
    """A directory holding the outputs of a successful earlier run."""
    base = tmp_path_factory.mktemp("previous")
    spec = base / "previous.yaml"
    spec.write_text(PREVIOUS_SPEC, encoding="utf-8")
    out = base / "out"
    r = run_cli("render", spec, "--out", out)
    assert r.code == 0, r.err
    assert len(list(out.iterdir())) >= 3
    return out


@pytest.fixture
def out_dir(tmp_path, previous_outputs) -> Path:
    out = tmp_path / "out"
    out.mkdir()
    for p in previous_outputs.iterdir():
        (out / p.name).write_bytes(p.read_bytes())
    return out


def assert_reported(result, label: str, errors: list) -> None:
    """Exit 2, nothing on stdout, no traceback, and exactly the expected located lines on stderr."""
    assert "Traceback" not in result.err, result.err
    assert result.code == 2, (result.code, result.err)
    assert result.out == "", result.out
    lines = result.err.splitlines()
    assert len(lines) == len(errors), f"expected {len(errors)} line(s), got:\n{result.err}"
    for got, (line, column, words) in zip(lines, errors):
        prefix = f"{label}:{line}:{column}: " if line is not None else f"{label}: "
        assert got.startswith(prefix), f"{got!r} does not start with {prefix!r}"
        assert words in got[len(prefix) :], f"{words!r} not in {got!r}"


# ---- the corpus is complete and big enough --------------------------------------------------


def test_corpus_and_cases_match():
    files = {p.name for p in CORPUS.iterdir() if p.is_file() and p.name != "cases.yaml"}
    assert files == set(CASES["descriptions"]), files ^ set(CASES["descriptions"])
    tag_files = {p.name for p in (CORPUS / "servicetags").glob("*.json")} - {"good.json"}
    assert tag_files == set(CASES["servicetags"]), tag_files ^ set(CASES["servicetags"])
    assert len(files) >= 40 and len(tag_files) >= 10


def test_the_service_tags_control_file_renders(tmp_path):
    """The synthetic Service Tags files are broken copies of good.json: it must pass, so each failure is its defect."""
    r = run_cli(
        "render",
        TAGS_SPEC,
        "--service-tags",
        "servicetags/good.json",
        "--target",
        "azure-firewall",
        "--out",
        tmp_path / "out",
        cwd=CORPUS,
    )
    assert r.code == 0, r.err


# ---- every case, through the real CLI ---------------------------------------------------------


@pytest.mark.parametrize("name, errors, render_only", DESCRIPTION_CASES, ids=[c[0] for c in DESCRIPTION_CASES])
def test_bad_description(name, errors, render_only, out_dir):
    before = snapshot(out_dir)
    r = run_cli("render", name, "--out", out_dir, cwd=CORPUS)
    assert_reported(r, name, errors)
    assert snapshot(out_dir) == before
    if not render_only:
        assert_reported(run_cli("validate", name, cwd=CORPUS), name, errors)


@pytest.mark.parametrize("name, errors", SERVICETAGS_CASES, ids=[c[0] for c in SERVICETAGS_CASES])
def test_bad_service_tags_file(name, errors, out_dir):
    before = snapshot(out_dir)
    label = f"servicetags/{name}"
    r = run_cli("render", TAGS_SPEC, "--service-tags", label, "--out", out_dir, cwd=CORPUS)
    assert_reported(r, label, errors)
    assert snapshot(out_dir) == before


PROCESS_SUBSET = [
    "empty.yaml",
    "binary-garbage.bin",
    "tab-indent.yaml",
    "alias-bomb.yaml",
    "python-tag.yaml",
    "dup-key-target-settings.yaml",
    "unknown-target.yaml",
    "many-errors.yaml",
    "nsg-priority-overflow.yaml",
    "non-utf8.yaml",
]


@pytest.mark.parametrize("name", PROCESS_SUBSET)
def test_bad_description_in_a_real_process(name, out_dir):
    """The installed entry point: real exit status, real stderr, no traceback."""
    errors = next(c[1] for c in DESCRIPTION_CASES if c[0] == name)
    before = snapshot(out_dir)
    assert_reported(run_cli_process("render", name, "--out", out_dir, cwd=CORPUS), name, errors)
    assert snapshot(out_dir) == before


@pytest.mark.parametrize("name", ["truncated.json", "wrong-cloud.json", "deep-nesting.json"])
def test_bad_service_tags_in_a_real_process(name, out_dir):
    label = f"servicetags/{name}"
    before = snapshot(out_dir)
    r = run_cli_process("render", TAGS_SPEC, "--service-tags", label, "--out", out_dir, cwd=CORPUS)
    assert_reported(r, label, CASES["servicetags"][name])
    assert snapshot(out_dir) == before


def test_nothing_is_created_when_the_input_is_bad(tmp_path):
    out = tmp_path / "not-yet"
    r = run_cli("render", "many-errors.yaml", "--out", out, cwd=CORPUS)
    assert r.code == 2 and not out.exists()


def test_validate_reports_every_file_and_still_passes_the_good_one(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text(PREVIOUS_SPEC, encoding="utf-8")
    r = run_cli_process("validate", CORPUS / "many-errors.yaml", good, CORPUS / "tab-indent.yaml")
    assert r.code == 2 and "Traceback" not in r.err
    expected = len(CASES["descriptions"]["many-errors.yaml"]) + len(CASES["descriptions"]["tab-indent.yaml"])
    assert len(r.err.splitlines()) == expected
    assert r.out.startswith(f"{good}: ok")


# ---- files that are not there, not files, or not readable -----------------------------------


def test_missing_files(tmp_path, out_dir):
    before = snapshot(out_dir)
    r = run_cli("render", tmp_path / "nope.yaml", "--out", out_dir)
    assert_reported(r, str(tmp_path / "nope.yaml"), [[None, None, "no such file: check the path"]])
    spec = tmp_path / "spec.yaml"
    spec.write_text(PREVIOUS_SPEC, encoding="utf-8")
    r = run_cli("render", spec, "--service-tags", tmp_path / "nope.json", "--out", out_dir)
    assert_reported(r, str(tmp_path / "nope.json"), [[None, None, "no such file: download the weekly Service Tags"]])
    assert snapshot(out_dir) == before


def test_directories_given_as_files(tmp_path, out_dir):
    before = snapshot(out_dir)
    r = run_cli("render", tmp_path, "--out", out_dir)
    assert_reported(r, str(tmp_path), [[None, None, "is a directory, not a file"]])
    spec = tmp_path / "spec.yaml"
    spec.write_text(PREVIOUS_SPEC, encoding="utf-8")
    # A directory of Service Tags files is taken (its newest file of the spec's cloud): this one has none.
    r = run_cli("render", spec, "--service-tags", tmp_path, "--out", out_dir)
    assert_reported(r, str(tmp_path), [[None, None, "has no ServiceTags_Public_<YYYYMMDD>.json"]])
    assert snapshot(out_dir) == before


def drop_file_access_override() -> None:
    """preexec_fn: we run as root, who reads every file; drop the capabilities that allow it.

    Removing CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from the bounding set takes
    them away at exec, so the child honours file modes like any user.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def run_without_file_access_override(*args) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("ACRRULES_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "acrrules", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        preexec_fn=drop_file_access_override if os.geteuid() == 0 else None,
        timeout=60,
    )


def test_unreadable_files(tmp_path, out_dir):
    spec = tmp_path / "spec.yaml"
    spec.write_text(PREVIOUS_SPEC, encoding="utf-8")
    tags = tmp_path / servicetags_name()
    tags.write_bytes((CORPUS / "servicetags" / "good.json").read_bytes())
    locked = tmp_path / "locked.yaml"
    locked.write_text(PREVIOUS_SPEC, encoding="utf-8")
    locked.chmod(0)
    tags.chmod(0)
    before = snapshot(out_dir)
    for args, label in (((locked,), locked), ((spec, "--service-tags", tags), tags)):
        p = run_without_file_access_override("render", *args, "--out", out_dir)
        if p.returncode == 0:
            pytest.skip("this process can read mode-000 files even without CAP_DAC_OVERRIDE")
        assert "Traceback" not in p.stderr
        assert p.returncode == 2 and p.stderr == f"{label}: permission denied: the file is not readable\n", p.stderr
    assert snapshot(out_dir) == before


def test_too_large_file(tmp_path):
    from acrrules.load import MAX_BYTES

    big = tmp_path / "big.yaml"
    with open(big, "wb") as fh:
        fh.truncate(MAX_BYTES + 1)  # sparse: costs no disk
    r = run_cli("validate", big)
    assert_reported(r, str(big), [[None, None, "file is larger than 64 MiB"]])


# ---- hostile structure fails fast, in bounded memory ------------------------------------------

PROBE = textwrap.dedent("""\
    import json, resource, sys, time
    from acrrules.errors import InputError
    from acrrules.load import load_yaml
    from acrrules import servicetags
    kind, path = sys.argv[1], sys.argv[2]
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    try:
        load_yaml(path) if kind == "yaml" else servicetags.load(path)
        message = None
    except InputError as e:
        message = e.lines()
    elapsed = time.perf_counter() - start
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": elapsed, "grew_kib": rss_after - rss_before, "message": message}))
""")


def _probe(kind: str, path: Path) -> dict:
    p = subprocess.run(
        [sys.executable, "-c", PROBE, kind, str(path)], capture_output=True, text=True, timeout=60, cwd=REPO
    )
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


HOSTILE = {
    "flow-lists-100000-deep.yaml": ("yaml", "[" * 100_000, "nested too deeply"),
    "flow-maps-100000-deep.yaml": ("yaml", "{a: " * 100_000, "nested more than 64 levels deep"),
    "block-maps-200-deep.yaml": (
        "yaml",
        "".join("  " * i + f"k{i}:\n" for i in range(200)),
        "nested more than 64 levels deep",
    ),
    # Ten levels of ten aliases each: 10**10 values if expanded.
    "alias-bomb-10-levels.yaml": (
        "yaml",
        "version: 1\na0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
        + "".join(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]\n" for i in range(1, 10))
        + "registries: *a9\n",
        "an alias bomb",
    ),
    "json-100000-deep.json": ("json", "[" * 100_000 + "]" * 100_000, "nested too deeply"),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_structure_fails_fast_in_bounded_memory(tmp_path, name):
    kind, text, words = HOSTILE[name]
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    got = _probe(kind, path)
    assert got["message"] is not None and len(got["message"]) == 1, got
    assert got["message"][0].startswith(f"{path}:") and words in got["message"][0], got
    # Headroom, not a benchmark: measured ~0.01-0.1 s; an unguarded bomb takes hours or runs out of
    # memory, so 20 s still fails it while a loaded 2-core machine cannot.
    assert got["seconds"] < 20, got
    assert got["grew_kib"] < 64 * 1024, got  # measured: a few MiB at most


def test_file_names_that_are_not_utf8(tmp_path):
    """Linux file names are bytes; one that is not UTF-8 still renders, its header shows U+FFFD for the byte."""
    folder = os.fsencode(tmp_path)
    spec = os.path.join(folder, b"contoso-\xff.yaml")
    with open(spec, "wb") as fh:
        fh.write(PREVIOUS_SPEC.encode("utf-8"))
    out = os.path.join(folder, b"out-\xfe")
    p = subprocess.run(
        [os.fsencode(sys.executable), b"-m", b"acrrules", b"render", spec, b"--out", out],
        capture_output=True,
        timeout=60,
        cwd=REPO,
    )
    assert p.returncode == 0 and b"Traceback" not in p.stderr, p.stderr
    files = {
        name: Path(os.fsdecode(os.path.join(out, name))).read_bytes()
        for name in os.listdir(out)
        if name != b".acrrules-manifest"
    }
    assert len(files) >= 3
    plain = {name.encode() for t in TARGETS.values() for name in t.plain_files}
    for name, data in files.items():
        text = data.decode("utf-8")  # every output is UTF-8
        assert "contoso-\ufffd.yaml" in text or name in plain, name
    assert json.loads(files[b"nsg.json"])["metadata"]["description"].startswith("Generated by acrrules")
    r = terraform_fmt_check(*(os.fsdecode(os.path.join(out, n)) for n in files if n.endswith(b".tf")))
    assert r.returncode == 0, r.stdout + r.stderr
    (tmp_path / "cilium.yaml").write_bytes(files[b"cilium.yaml"])  # (k8s_check prints its path: UTF-8 here)
    r = run_validator("k8s_check.py", "--strict", tmp_path / "cilium.yaml")
    assert r.returncode == 0, r.stdout + r.stderr
    # and a bad file with such a name is reported, not a crash
    with open(spec, "wb") as fh:
        fh.write(b"version: 2\nregistries: []\n")
    p = subprocess.run(
        [os.fsencode(sys.executable), b"-m", b"acrrules", b"validate", spec], capture_output=True, timeout=60, cwd=REPO
    )
    assert p.returncode == 2 and b"Traceback" not in p.stderr and b":1:10: version: must be 1" in p.stderr


# ---- fuzzing: any bytes, any structure -> a valid render or located errors, never a crash -------------
# Default 200 examples each; ACRRULES_FUZZ_EXAMPLES=N runs 8*N.

FUZZ_EXAMPLES = int(os.environ.get("ACRRULES_FUZZ_EXAMPLES", "25"))
VALID_TEXT = (
    PREVIOUS_SPEC + "targets:\n  nsg-arm: {priority: 200}\n  nftables: {table: egress, resolvers: [192.0.2.53]}\n"
)
KEYS = [
    "version",
    "cloud",
    "registries",
    "mcr",
    "sources",
    "targets",
    "name",
    "sku",
    "location",
    "replicas",
    "data_endpoints",
    "regional_endpoints",
    "private_link",
    "azure-firewall",
    "nsg-arm",
    "nsg-tf",
    "nftables",
    "iptables",
    "priority",
    "rule_collection_group",
    "collection_priority",
    "network_rules",
    "table",
    "chain",
    "mode",
    "resolvers",
    "resource_group_name",
    "network_security_group_name",
    "cilium",
    "scope",
    "namespace",
    "endpoint_selector",
    "dns_namespace",
    "dns_selector",
    "app",
    "calico",
    "selector",
    "order",
    "<<",
    "*",
]
WORDS = [
    "1",
    "2",
    "cluster",
    "kube-system",
    "AzureCloud",
    "AzureChinaCloud",
    "Premium",
    "Basic",
    "eastus",
    "chinanorth2",
    "westeurope",
    "contosoacr",
    "ContosoACR",
    "both",
    "storage",
    "dedicated",
    "include",
    "standalone",
    "*",
    "10.0.0.0/8",
    "2001:db8::/32",
    "10.0.0.1/8",
    "true",
    "null",
    "",
    "4096",
    "65000",
    "99999",
    "-1",
    "1.5",
    "2025-01-01",
]


def _structures():
    scalars = st.one_of(
        st.sampled_from(WORDS), st.integers(-10, 70_000), st.booleans(), st.none(), st.text(max_size=12)
    )
    return st.recursive(
        scalars,
        lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(KEYS), inner, max_size=6)),
        max_leaves=30,
    )


def _mutations():
    """A valid description with a few characters inserted, deleted or replaced."""
    edits = st.lists(
        st.tuples(
            st.integers(0, len(VALID_TEXT)),
            st.integers(0, 3),
            st.sampled_from(list(" \t\n:-[]{},'\"&*!#|>%@`?\\x\x00\x85\u2028é")),
        ),
        max_size=4,
    )

    def apply(changes):
        text = VALID_TEXT
        for at, cut, insert in changes:
            text = text[:at] + insert + text[at + cut :]
        return text.encode("utf-8")

    return edits.map(apply)


def _run_front_end(raw: bytes) -> None:
    """load -> validate -> plan -> render the targets that need no prefixes; only InputError may escape, one line
    each."""
    try:
        doc = load_yaml("fuzz.yaml", decode_utf8("fuzz.yaml", raw))
        validate.validate(doc)
        rule_plan = planning.build(model.build(doc))
        pipeline.render(rule_plan, [t for t, target in TARGETS.items() if not target.needs_service_tags], doc)
    except InputError as e:
        assert e.lines(), "an InputError must say something"
        for line in e.lines():
            assert line.startswith("fuzz.yaml") and "\n" not in line, line


@settings(
    max_examples=FUZZ_EXAMPLES * 8,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(
    st.one_of(
        st.binary(max_size=200),
        _mutations(),
        _structures().map(lambda d: yaml.safe_dump(d, allow_unicode=True).encode("utf-8")),
        st.fixed_dictionaries({"version": st.just(1), "registries": _structures()}).map(
            lambda d: yaml.safe_dump(d).encode("utf-8")
        ),
    )
)
def test_front_end_never_crashes(raw):
    _run_front_end(raw)


GOOD_TAGS_TEXT = (CORPUS / "servicetags" / "good.json").read_text(encoding="utf-8")
TAGS_DESCRIPTION = None


def _json_mutations():
    edits = st.lists(
        st.tuples(
            st.integers(0, len(GOOD_TAGS_TEXT)),
            st.integers(0, 6),
            st.sampled_from(list('{}[]",:0123456789.-e/ \nnulltrue') + ["null", "1e999", "[]", "{}", '"x"', "NaN"]),
        ),
        min_size=1,
        max_size=4,
    )

    def apply(changes):
        text = GOOD_TAGS_TEXT
        for at, cut, insert in changes:
            text = text[:at] + insert + text[at + cut :]
        return text.encode("utf-8")

    return edits.map(apply)


def _json_structures():
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-5, 10**6),
        st.text(max_size=10),
        st.sampled_from(
            [
                "Public",
                "China",
                "AzureContainerRegistry.EastUS",
                "Storage.EastUS",
                "192.0.2.0/24",
                "2001:db8::/48",
                "192.0.2.1/24",
            ]
        ),
    )
    keys = st.sampled_from(
        [
            "changeNumber",
            "cloud",
            "values",
            "name",
            "id",
            "properties",
            "addressPrefixes",
            "region",
            "systemService",
            "networkFeatures",
        ]
    )
    tree = st.recursive(
        scalars,
        lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=5)),
        max_leaves=25,
    )
    return tree.map(lambda d: json.dumps(d).encode("utf-8"))


@settings(max_examples=FUZZ_EXAMPLES * 8, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=100), _json_mutations(), _json_structures()))
def test_service_tags_loader_never_crashes(tmp_path_factory, raw):
    """A Service Tags file of any bytes or shape: a render, or located InputErrors naming the file."""
    global TAGS_DESCRIPTION
    if TAGS_DESCRIPTION is None:
        TAGS_DESCRIPTION = model.build(load_yaml(str(CORPUS / TAGS_SPEC)))
    path = tmp_path_factory.getbasetemp() / "fuzz-tags.json"
    path.write_bytes(raw)
    try:
        tags = servicetags.load(str(path))
        rule_plan = planning.build(TAGS_DESCRIPTION, tags)
        pipeline.render(rule_plan, list(TARGETS))
    except InputError as e:
        for line in e.lines():
            assert line.startswith(f"{path}") and "\n" not in line, line
