"""validate checks descriptions against the schema with its $refs inlined: exactly the same errors."""
from __future__ import annotations

import jsonschema
import pytest

from acrrules import load, validate
from acrrules.errors import InputError
from conftest import REPO, sample_specs

DESCRIPTIONS = sample_specs() + sorted((REPO / "tests" / "badinput").glob("*.yaml"))


def errors(validator: jsonschema.Draft202012Validator, doc) -> list[tuple]:
    """Each error's keyword, place, message and value, and what validate makes of it."""
    return sorted((e.validator, tuple(e.absolute_path), e.message, repr(e.validator_value),
                   [str(d) for d in validate._explain(doc, e)])
                  for e in validator.iter_errors(doc.data))


@pytest.mark.parametrize("path", DESCRIPTIONS, ids=lambda p: p.name)
def test_inlined_schema_gives_the_same_errors(path):
    try:
        doc = load.load_yaml(str(path))
    except InputError:
        pytest.skip("not loadable as YAML: the schema never sees it")
    schema = validate.registry_schema()
    assert errors(jsonschema.Draft202012Validator(validate.inline_refs(schema)), doc) == \
        errors(jsonschema.Draft202012Validator(schema), doc)


def test_no_reference_is_left():
    assert '"$ref"' not in repr(validate.inline_refs(validate.registry_schema())).replace("'", '"')
    assert "$ref" in repr(validate.registry_schema())  # the file keeps its definitions
