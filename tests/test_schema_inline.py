"""validate checks descriptions against the schema with its $refs inlined: exactly the same errors."""

from __future__ import annotations

import jsonschema
import pytest
from conftest import REPO, sample_specs

from acrrules import validate
from acrrules.errors import InputError
from acrrules.load import load_yaml


def _loads(path) -> bool:
    try:
        load_yaml(str(path))
        return True
    except InputError:  # not YAML the schema ever sees
        return False


# The samples, and the bad inputs that are YAML the schema sees (errors in the registries and
# targets, where the $refs were, among them).
DESCRIPTIONS = [p for p in sample_specs() + sorted((REPO / "tests" / "badinput").glob("*.yaml")) if _loads(p)]


def errors(validator: jsonschema.Draft202012Validator, doc) -> list[tuple]:
    """Each error's keyword, place, message and value, and what validate makes of it."""
    return sorted(
        (
            e.validator,
            tuple(e.absolute_path),
            e.message,
            repr(e.validator_value),
            [str(d) for d in validate._explain(doc, e)],
        )
        for e in validator.iter_errors(doc.data)
    )


@pytest.mark.parametrize("path", DESCRIPTIONS, ids=lambda p: p.name)
def test_inlined_schema_gives_the_same_errors(path):
    doc = load_yaml(str(path))
    schema = validate.registry_schema()
    assert errors(jsonschema.Draft202012Validator(validate.inline_refs(schema)), doc) == errors(
        jsonschema.Draft202012Validator(schema), doc
    )


def test_the_cases_reach_inside_the_references():
    schema = jsonschema.Draft202012Validator(validate.registry_schema())
    places = {tuple(e.absolute_path)[:1] for p in DESCRIPTIONS for e in schema.iter_errors(load_yaml(str(p)).data)}
    assert {("registries",), ("targets",)} <= places


def test_no_reference_is_left():
    assert '"$ref"' not in repr(validate.inline_refs(validate.registry_schema())).replace("'", '"')
    assert "$ref" in repr(validate.registry_schema())  # the file keeps its definitions
