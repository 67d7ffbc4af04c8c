"""Descriptions as untrusted input (issue 13): what validate accepts renders, names a Service Tags
file adds are checked like the catalog's, and the work grows linearly with the registries.

The property test draws descriptions the schema accepted on main (tests/strategies.py, with
locations a small generated Service Tags file adds, hostile ones among them, integers written as
floats and label keys that are numbers or booleans) and renders every target through the CLI in
process (`acrrules.cli.main`): exit 0, or exit 2 with located messages and nothing written;
never 70 (an internal error).
"""

from __future__ import annotations

import importlib
import ipaddress
import json
import os
import re
from pathlib import Path

import pytest
import yaml
from conftest import run_cli, service_tag, service_tags_document, servicetags_name
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from strategies import descriptions, dump_description

from acrrules import catalog, model, servicetags, validate
from acrrules import plan as planning
from acrrules.errors import InputError
from acrrules.load import SourceDocument, Yaml12Loader, load_yaml

load_module = importlib.import_module("acrrules.load")  # `acrrules.load` is also a function's name

FUZZ_EXAMPLES = int(os.environ.get("ACRRULES_FUZZ_EXAMPLES", "25"))

# Regions of the generated Service Tags file: some the catalog knows, one it does not (a newer
# file), and hostile ones a pull request could add: a wildcard, dots, a Kelvin sign (U+212A,
# which lower-cases to "k"), a case twin of a catalog region, a space.
CATALOG_REGIONS = ["EastUS", "WestEurope", "KoreaCentral", "JapanEast"]
NEW_REGIONS = ["NewRegion1"]
HOSTILE_REGIONS = ["*", "contoso.prod", "\u212aoreaCentral", "Eastus", "West Europe"]


def tags_file(folder: Path, regions: list[str]) -> Path:
    """A Public Service Tags file (documentation prefixes only) with ACR and Storage tags for `regions`."""
    features = ("API", "NSG", "UDR", "FW")
    values = [
        service_tag(
            f"{family}.{region}",
            [f"198.51.100.{(2 * i + j) * 8 % 256}/29", str(ipaddress.ip_network(f"2001:db8:{2 * i + j:x}::/48"))],
            region_id=i,
            features=features,
        )  # canonical text
        for i, region in enumerate(regions)
        for j, family in enumerate((catalog.TAG_ACR, catalog.TAG_STORAGE))
    ]
    values += [
        service_tag(name, [f"203.0.113.{k * 16}/28"], region="", features=features)
        for k, name in enumerate((catalog.TAG_MCR, catalog.TAG_AFD_FIRST_PARTY))
    ]
    path = folder / servicetags_name()
    path.write_text(json.dumps(service_tags_document(values, change=1), indent=2), encoding="utf-8")
    return path


@st.composite
def cases(draw) -> tuple[list[str], dict]:
    """(hostile regions in the Service Tags file, a description the schema accepted on main)."""
    hostile = draw(st.lists(st.sampled_from(HOSTILE_REGIONS), unique=True, max_size=3))
    locations = sorted({r.lower() for r in CATALOG_REGIONS + NEW_REGIONS + hostile})
    data = draw(descriptions(dict.fromkeys(catalog.CLOUDS, locations), max_registries=4))
    data.pop("cloud", None)  # the file is Public's
    targets = data.setdefault("targets", {})
    if draw(st.booleans()):  # an integer written as a float: 200.0
        where = draw(st.sampled_from([("nsg-arm", "priority"), ("azure-firewall", "priority"), ("calico", "order")]))
        settings_ = targets.setdefault(where[0], {})
        settings_[where[1]] = float(settings_.get(where[1], 200))
    if draw(st.booleans()):  # a label key that is a number or a boolean
        target, key = draw(st.sampled_from([("cilium", "endpoint_selector"), ("calico", "selector")]))
        labels = dict(targets.setdefault(target, {}).get(key) or {})
        labels[draw(st.sampled_from([1, True, 0]))] = "web"
        targets[target][key] = labels
    return hostile, data


ONE_REGISTRY = {"version": 1, "registries": [{"name": "contosoprod", "sku": "Premium", "location": "eastus"}]}


def _with(**registry) -> dict:
    return {**ONE_REGISTRY, "registries": [{**ONE_REGISTRY["registries"][0], **registry}]}


@settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
)
@given(cases())
# The findings of issue 13, each once for certain: a wildcard region (azure-firewall wrote
# contosoprod.*.data.azurecr.io; squid, lists and cilium crashed), a Kelvin-sign twin of a
# catalog region with an NSG target (AssertionError), integers as floats, a number as a label key.
@example((["*"], _with(location="*", data_endpoints="dedicated")))
@example((["\u212aoreaCentral"], _with(location="koreacentral")))
@example(([], {**ONE_REGISTRY, "targets": {"nsg-arm": {"priority": 200.0}}}))
@example(([], {**ONE_REGISTRY, "targets": {"cilium": {"endpoint_selector": {1: "web"}}}}))
def test_anything_validate_accepts_renders(tmp_path_factory, case):
    hostile, data = case
    folder = tmp_path_factory.mktemp("case")
    spec = folder / "description.yaml"
    spec.write_text(dump_description(data), encoding="utf-8")
    tags = tags_file(folder, CATALOG_REGIONS + NEW_REGIONS + hostile)
    out = folder / "out"
    r = run_cli("render", spec, "--service-tags", tags, "--out", out)
    assert r.code in (0, 2), (r.code, r.err)
    if r.code == 2:
        assert not out.exists(), "nothing is written when the input is refused"
        located = re.compile(rf"^({re.escape(str(spec))}:\d+:\d+|{re.escape(str(tags))}(:\d+:\d+)?): \S")
        for line in r.err.splitlines():
            assert located.match(line), line
        return
    # Rendered: only plain region names reached the outputs, never a hostile one.
    for path in out.iterdir():
        text = path.read_text(encoding="utf-8")
        assert "\u212a" not in text and ".*.data." not in text and "contoso.prod" not in text, path.name


def test_tags_derived_locations_are_checked_as_names(tmp_path):
    """A location only a Service Tags file has must be a region name as the catalog's are; a
    twin never replaces the catalog's region."""
    hostile = tmp_path / "hostile"
    hostile.mkdir()
    tags = tags_file(hostile, CATALOG_REGIONS + NEW_REGIONS + ["*", "\u212aoreaCentral", "Eastus"])
    spec = tmp_path / "description.yaml"
    spec.write_text(dump_description(_with(location="*", data_endpoints="dedicated")), encoding="utf-8")
    r = run_cli("validate", spec)  # without the file: unknown, as always
    assert r.code == 2 and "unknown AzureCloud location '*'" in r.err, r.err
    # A file with such tag names is refused where it is parsed (the Service Tags checks), before any
    # of its regions can become a location; validate's own check below is the second line.
    r = run_cli("render", spec, "--service-tags", tags, "--out", tmp_path / "out")
    assert r.code == 2 and r.err.startswith(f"{tags}:") and "AzureContainerRegistry." in r.err, r.err
    assert not (tmp_path / "out").exists()
    # a new plain region is a location; the catalog's spelling is kept
    tags = tags_file(tmp_path, CATALOG_REGIONS + NEW_REGIONS)
    spec.write_text(
        dump_description(_with(location="newregion1", replicas=["koreacentral", "eastus"])), encoding="utf-8"
    )
    r = run_cli("render", spec, "--service-tags", tags, "--out", tmp_path / "out", "--target", "lists")
    assert r.code == 0, r.err
    regions = planning.tag_regions(servicetags.load(str(tags)), catalog.TAG_ACR, catalog.CLOUDS["AzureCloud"])
    assert regions["koreacentral"] == "KoreaCentral" and regions["eastus"] == "EastUS"
    assert "*" not in regions and "newregion1" in regions
    for bad in ("*", "contoso.prod", "\u212aoreacentral"):
        doc = load_yaml("d.yaml", dump_description(_with(location=bad)))
        with pytest.raises(InputError, match=r"unknown AzureCloud location|not ASCII"):
            validate.validate(doc, extra_locations={"AzureCloud": {bad: bad}})


# ---- YAML 1.2 scalars through PyYAML's public API ------------------------------------------------


def test_the_yaml_1_2_loader_is_a_safe_loader_with_its_own_resolvers():
    assert issubclass(Yaml12Loader, yaml.SafeLoader)
    text = "a: 310\nb: true\nc: 2025-01-01\nd: 1.5\ne: ~\nf: '0310'\ng: eastus\n"
    assert yaml.load(text, Loader=Yaml12Loader) == {
        "a": 310,
        "b": True,
        "c": "2025-01-01",
        "d": 1.5,
        "e": None,
        "f": "0310",
        "g": "eastus",
    }
    for scalar, words in (
        ("0310", "0310 is 310 to YAML 1.2 tools"),
        ("on", "on is the string 'on' to YAML 1.2 tools"),
        ("3:20", "but 200 to YAML 1.1 tools"),
    ):
        with pytest.raises(yaml.constructor.ConstructorError, match=re.escape(words)):
            yaml.load(f"a: {scalar}\n", Loader=Yaml12Loader)


# ---- sizes: honest messages, documented caps, linear work ----------------------------------------


def test_a_large_file_without_aliases_is_too_large_not_an_alias_bomb(tmp_path, monkeypatch):
    monkeypatch.setattr(load_module, "MAX_NODES", 1_000)
    big = tmp_path / "big.yaml"
    big.write_text(
        "version: 1\nregistries:\n"
        + "".join(f"  - {{name: registry{i:05d}, sku: Basic, location: eastus}}\n" for i in range(200)),
        encoding="utf-8",
    )
    r = run_cli("validate", big)
    assert r.code == 2 and len(r.err.splitlines()) == 1, r.err
    assert re.match(rf"{re.escape(str(big))}:\d+:\d+: the file is too large: more than 1,000 values; split", r.err)
    assert "alias" not in r.err
    # with aliases that expand past their own limit, it is called what it is
    monkeypatch.setattr(load_module, "MAX_ALIAS_VALUES", 100)
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(
        "version: 1\nx: &x [a, a, a, a, a, a, a, a, a, a]\nregistries: [" + ", ".join(["*x"] * 11) + "]\n",
        encoding="utf-8",
    )
    r = run_cli("validate", bomb)
    assert r.code == 2 and "more than 100 values after expanding aliases (an alias bomb?)" in r.err, r.err


def _document(registries: int, sources: int = 1) -> SourceDocument:
    data = {
        "version": 1,
        "registries": [{"name": f"registry{i:06d}", "sku": "Basic", "location": "eastus"} for i in range(registries)],
        "sources": [f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}" for i in range(sources)],
    }
    return SourceDocument("big.yaml", data)


def test_caps_are_located_errors():
    with pytest.raises(InputError) as e:
        validate.validate(_document(100_001))
    assert e.value.lines() == [
        "big.yaml: registries: 100,001 items, too many: acrrules plans at most 100,000 registries per description: "
        "split the registries over several descriptions"
    ]
    with pytest.raises(InputError) as e:
        validate.validate(_document(1, sources=20_001))
    assert e.value.lines() == [
        "big.yaml: sources: 20,001 items, too many: at most 20,000 addresses (Azure Firewall's limit of unique "
        "addresses in a policy's network rules): summarize them in wider prefixes"
    ]


class CountingName(str):
    """A registry name that counts how often it is compared."""

    comparisons = 0

    def __eq__(self, other):
        CountingName.comparisons += 1
        return str.__eq__(self, other)

    __hash__ = str.__hash__


def test_planning_compares_each_registry_a_bounded_number_of_times():
    """Bound the work, not the time: main tested membership in a list of the tag's registries,
    n * n / 2 comparisons for n registries in one region (100,000 registries: 414 s)."""
    n = 3_000
    desc = model.Description(
        registries=tuple(
            model.RegistrySpec(name=CountingName(f"registry{i:05d}"), sku="Premium", location="eastus")
            for i in range(n)
        )
    )
    CountingName.comparisons = 0
    tags = planning.service_tags(desc)
    assert len(tags) == 2 and all(len(t.registries) == n for t in tags)
    assert CountingName.comparisons <= 4 * n, CountingName.comparisons


REGISTRY_KEYS = ["name", "sku", "location", "replicas", "data_endpoints", "regional_endpoints", "private_link", "zone"]
ANY_VALUE = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-2, 2),
        st.floats(allow_nan=False),
        st.sampled_from(["contosoacr", "Premium", "Basic", "eastus", "dedicated", "both", "", "contoso-acr", "x" * 51]),
        st.text(max_size=8),
    ),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=2)),
    max_leaves=6,
)


@settings(max_examples=FUZZ_EXAMPLES * 8, deadline=None, database=None)
@given(st.dictionaries(st.sampled_from(REGISTRY_KEYS), ANY_VALUE, max_size=8) | ANY_VALUE)
@example({"name": "contosoacr", "sku": "Premium", "location": "eastus", "replicas": ["westeurope"]})
@example({"name": "contosoacr", "sku": "Premium", "location": "eastus", "regional_endpoints": 1})
@example({"name": "contosoacr", "sku": "Premium", "location": "eastus", "private_link": 0.0})
@example({"name": "contosoacr", "sku": "Premium", "location": "", "replicas": [True]})
@example({"name": "contosoacr\n", "sku": "Premium", "location": "eastus"})
@example({"name": "contosoacr", "sku": "Premium", "location": "e" * 65})
def test_the_fast_registry_check_never_passes_what_the_schema_refuses(registry):
    """validate checks most registries with a predicate compiled from the registry's subschema and
    asks jsonschema only about the rest: the predicate must never pass what jsonschema refuses."""
    split = validate._split_validators()
    assert split is not None, "the registry's subschema must compile (a keyword the compiler does not know?)"
    _, registry_validator, plainly_valid = split
    if plainly_valid(registry):
        assert not list(registry_validator.iter_errors(registry)), registry
    elif registry == {"name": "contosoacr", "sku": "Premium", "location": "eastus", "replicas": ["westeurope"]}:
        pytest.fail("a valid registry must pass the fast check, or validate is as slow as before")


def test_the_refused_characters_are_the_readers_non_printable_ones_and_the_hidden_ones():
    """load._REFUSED is written as one positive class (it compiles faster): on every code point it
    agrees with PyYAML's reader (what it cannot read) plus the hidden characters acrrules refuses."""
    reader = yaml.reader.Reader.NON_PRINTABLE  # PyYAML's own
    hidden = re.compile(f"[{load_module.HIDDEN}]")
    for code in range(0x110000):
        c = chr(code)
        expected = bool(reader.match(c) or hidden.match(c))
        assert bool(load_module._REFUSED.match(c)) is expected, f"U+{code:04X}"
