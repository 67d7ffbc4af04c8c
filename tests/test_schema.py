"""The shipped JSON Schemas are valid, and `acrrules schema` prints the description's."""

from __future__ import annotations

import json
from collections.abc import Mapping

import jsonschema
import pytest
import yaml
from conftest import run_cli, sample_specs

from acrrules.paths import schemas_dir


@pytest.mark.parametrize("name", ["registry.schema.json", "servicetags.schema.json"])
def test_schema_is_valid_draft_2020_12(name):
    schema = json.loads((schemas_dir() / name).read_text(encoding="utf-8"))
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


def test_schema_command_prints_the_schema_and_it_accepts_every_sample():
    r = run_cli("schema")
    assert r.code == 0
    schema = json.loads(r.out)
    # the file editors read is what the tool validates with (target fragments included), byte for byte:
    # regenerate it with `acrrules schema > schemas/registry.schema.json`
    assert r.out == (schemas_dir() / "registry.schema.json").read_text(encoding="utf-8")
    validator = jsonschema.Draft202012Validator(schema)
    for spec in sample_specs():
        assert not list(validator.iter_errors(yaml.safe_load(spec.read_text()))), spec.name


def test_schema_rejects_what_the_tool_rejects():
    validator = jsonschema.Draft202012Validator(json.loads(run_cli("schema").out))
    bad = {"version": 1, "registries": [{"name": "ab", "sku": "Gold", "location": "eastus", "extra": 1}]}
    assert len(list(validator.iter_errors(bad))) == 3


def _entries():
    from hypothesis import strategies as st

    scalar = st.one_of(st.none(), st.booleans(), st.integers(-2, 5), st.floats(allow_nan=False), st.text(max_size=3))
    value = st.recursive(
        scalar,
        lambda c: st.one_of(st.lists(c, max_size=3), st.dictionaries(st.text(max_size=3), c, max_size=3)),
        max_leaves=6,
    )
    good_props = st.fixed_dictionaries(
        {
            "changeNumber": st.one_of(st.integers(-1, 3), value),
            "addressPrefixes": st.one_of(
                st.lists(st.one_of(st.sampled_from(["10.0.0.0/8", ""]), value), max_size=3), value
            ),
        },
        optional={
            "region": value,
            "regionId": value,
            "platform": value,
            "systemService": value,
            "networkFeatures": st.one_of(st.none(), st.lists(st.one_of(st.text(max_size=3), value), max_size=2), value),
        },
    )
    return st.one_of(
        value,
        st.fixed_dictionaries(
            {"name": st.one_of(st.text(max_size=3), value), "properties": st.one_of(good_props, value)},
            optional={"id": value},
        ),
    )


def test_service_tag_fast_check_never_accepts_what_the_schema_rejects():
    """servicetags._plainly_valid skips the schema for speed: it must imply it."""
    from hypothesis import given, settings

    from acrrules import servicetags

    validator = servicetags._tag_validator()

    @settings(max_examples=400, deadline=None)
    @given(_entries())
    def check(entry):
        if servicetags._plainly_valid(entry):
            assert validator.is_valid(entry), entry

    check()


def test_the_schema_says_what_the_catalog_and_the_model_say():
    """One source for each fact: every enum, range and default the schema repeats for editors
    equals the catalog fact (or model default) the tool itself uses."""
    from acrrules import catalog
    from acrrules.model import Description, RegistrySpec
    from acrrules.targets import TARGETS

    schema = json.loads((schemas_dir() / "registry.schema.json").read_text(encoding="utf-8"))
    top, defs = schema["properties"], schema["$defs"]
    registry = defs["registry"]["properties"]
    targets = top["targets"]["properties"]
    defaults = Description(registries=())
    fw_settings, arm, tf = (TARGETS[t].Settings() for t in ("azure-firewall", "nsg-arm", "nsg-tf"))
    assert top["cloud"]["enum"] == list(catalog.CLOUDS) and top["cloud"]["default"] == catalog.DEFAULT_CLOUD
    assert top["name"]["default"] == catalog.DEFAULT_NAME == defaults.name
    assert top["mcr"]["default"] is defaults.mcr and top["sources"]["default"] == list(defaults.sources)
    # the cap on sources is Azure Firewall's limit of unique addresses in network rules
    assert top["sources"]["maxItems"] == catalog.FIREWALL_MAX_NETWORK_UNIQUE
    assert f"at most {catalog.FIREWALL_MAX_NETWORK_UNIQUE:,} addresses" in top["sources"]["x-message"]
    assert top["outputs"]["items"]["enum"] == list(TARGETS)
    assert registry["sku"]["enum"] == list(catalog.SKUS)
    assert registry["data_endpoints"]["enum"] == list(catalog.DATA_ENDPOINT_MODES)
    assert (
        registry["data_endpoints"]["default"]
        == catalog.DATA_ENDPOINT_MODES[0]
        == RegistrySpec("a", "b", "c").data_endpoints
    )
    assert set(catalog.PREMIUM_ONLY) <= set(registry)
    nsg = defs["nsgPriority"]
    assert (nsg["minimum"], nsg["maximum"]) == (
        catalog.NSG_PRIORITY_MIN,
        catalog.NSG_PRIORITY_MAX - catalog.NSG_BLOCK_SIZE + 1,
    )
    assert nsg["default"] == arm.priority == tf.priority
    fw = targets["azure-firewall"]["properties"]
    for key, default in (("priority", fw_settings.priority), ("collection_priority", fw_settings.collection_priority)):
        assert (fw[key]["minimum"], fw[key]["maximum"]) == (
            catalog.FIREWALL_PRIORITY_MIN,
            catalog.FIREWALL_PRIORITY_MAX,
        )
        assert fw[key]["default"] == default
    assert fw["network_rules"]["default"] is fw_settings.network_rules
    for t, mode in (
        ("nftables", TARGETS["nftables"].Settings().mode),
        ("iptables", TARGETS["iptables"].Settings().mode),
    ):
        assert targets[t]["properties"]["mode"]["enum"] == list(catalog.NETFILTER_MODES)
        assert targets[t]["properties"]["mode"]["default"] == mode == catalog.NETFILTER_MODES[0]
    assert set(targets) == set(TARGETS)


def test_settings_that_targets_own_are_closed_and_documented():
    """A target's settings fragment: no unknown keys, every key described, a message for every pattern,
    and exactly the fields of its Settings type (whose defaults are the settings' defaults)."""
    from acrrules.targets import TARGETS

    schema = json.loads((schemas_dir() / "registry.schema.json").read_text(encoding="utf-8"))
    owned = {tid: t for tid, t in TARGETS.items() if t.settings_schema}
    assert owned, "no target owns its settings yet"
    for tid, target in owned.items():
        fragment = target.settings_schema
        assert schema["properties"]["targets"]["properties"][tid] == fragment, tid
        assert fragment["type"] == "object" and fragment["additionalProperties"] is False and fragment["description"]
        for key, prop in fragment["properties"].items():
            assert prop.get("description"), (tid, key)
            assert "pattern" not in prop or prop.get("x-message"), (tid, key)
            if "default" in prop:
                assert getattr(target.Settings(), key) == prop["default"], (tid, key)
        assert set(target.Settings._fields) == set(fragment["properties"]), tid


def test_patterns_end_where_ecma_262_ends_them():
    """JSON Schema patterns are ECMA-262, whose `$` is the end of the string; Python's `$` also matches
    before a final newline, so "prod\\n" passed `^[a-z]...$` and the newline reached the outputs."""
    from acrrules.validate import _Validator, ecma_pattern

    assert ecma_pattern(r"^[a-z]([a-z0-9-]{0,18}[a-z0-9])?$") == r"^[a-z]([a-z0-9-]{0,18}[a-z0-9])?\Z"
    assert ecma_pattern(r"^a[$]\$$") == r"^a[$]\$\Z"
    validator = _Validator({"pattern": "^[a-z]+$", "propertyNames": {"pattern": "^k$"}})
    assert validator.is_valid("prod") and not validator.is_valid("prod\n") and not validator.is_valid({"k\n": 1})
    assert validator.is_valid({"k": 1})


def _nodes(schema):
    yield schema
    for value in schema.values():
        if isinstance(value, dict):
            yield from _nodes(value)


def test_target_settings_fragments_say_what_their_settings_types_say():
    """A target that owns its settings: its fragment is in the committed schema, closed, every key described,
    every pattern explained, every default the one its Settings type applies."""
    from acrrules.targets import TARGETS

    schema = json.loads((schemas_dir() / "registry.schema.json").read_text(encoding="utf-8"))
    owners = {tid: t for tid, t in TARGETS.items() if t.settings_schema}
    assert {"cilium", "calico"} <= set(owners)
    for tid, target in owners.items():
        fragment = target.settings_schema
        assert schema["properties"]["targets"]["properties"][tid] == fragment, f"regenerate the schema ({tid})"
        assert fragment["type"] == "object" and fragment["additionalProperties"] is False and fragment["description"]
        assert set(fragment["properties"]) == set(target.Settings._fields), tid
        defaults = target.Settings()
        for key, sub in fragment["properties"].items():
            assert sub.get("description"), (tid, key)
            assert all("x-message" in node for node in _nodes(sub) if "pattern" in node), (tid, key)
            if "default" in sub:
                value = getattr(defaults, key)
                assert sub["default"] == (dict(value) if isinstance(value, Mapping) else value), (tid, key)
            jsonschema.Draft202012Validator.check_schema(sub)
