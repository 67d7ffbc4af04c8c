"""JSON Schema errors in words, for descriptions (YAML) and Service Tags files (JSON) alike.

`explain` turns one jsonschema error into located messages (key path, text, whether the
position is the key's); each input format supplies its own words for objects and lists.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from typing import Any, NamedTuple

import jsonschema

from .load import format_path


class Words(NamedTuple):
    """What an input format calls JSON Schema's types."""

    object: str
    array: str


YAML = Words("a mapping", "a list")
JSON = Words("an object", "an array")
TOML = Words("a table", "an array")


def type_name(value: Any, words: Words = YAML) -> str:
    if value is None:
        return "null (empty)"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return words.array
    if isinstance(value, dict):
        return words.object
    if isinstance(value, datetime.date):  # YAML reads 2025-10-20 as a date
        return "a date"
    return type(value).__name__


def _expected(schema_type: str, words: Words) -> str:
    return {
        "object": words.object,
        "array": words.array,
        "string": "a string",
        "integer": "an integer",
        "boolean": "true or false",
        "number": "a number",
        "null": "null",
    }.get(schema_type, schema_type)


def closest(word: str, choices: Iterable[str]) -> str | None:
    choices = list(choices)
    by_lower = {c.lower(): c for c in choices}
    if str(word).lower() in by_lower:
        return by_lower[str(word).lower()]
    import difflib  # only a misspelling needs it

    got = difflib.get_close_matches(str(word).lower(), list(by_lower), n=1, cutoff=0.6)
    return by_lower[got[0]] if got else None


def _hint(word: Any, choices: Iterable[str]) -> str:
    c = closest(str(word), choices)
    return f"; did you mean {c!r}?" if c else ""


Located = tuple[tuple[Any, ...], str, bool]  # (key path, message, located at the key rather than the value)


def explain(err: jsonschema.ValidationError, words: Words = YAML) -> list[Located]:
    """One schema error as messages that say what is wrong and how to fix it."""
    path = tuple(err.absolute_path)
    where = format_path(path)
    v: Any = err.validator
    schema: Any = err.schema  # the (sub)schema whose keyword failed
    instance: Any = err.instance
    if v == "additionalProperties":
        known = sorted(schema.get("properties", {}))
        extra = [k for k in instance if k not in schema.get("properties", {})]
        valid = f"valid keys: {', '.join(known)}" if known else f"{where} takes no keys"
        return [(path + (k,), f"unknown key {k!r} in {where}{_hint(k, known)} ({valid})", True) for k in extra]
    if v == "required":
        missing = err.message.split("'")[1] if "'" in err.message else err.message
        return [(path, f"{where}: missing required key {missing!r}: add it", False)]
    if v == "type":
        want = schema["type"]
        want_s = " or ".join(_expected(t, words) for t in (want if isinstance(want, list) else [want]))
        return [
            (
                path,
                (
                    f"{where}: expected {want_s}, got {type_name(instance, words)}"
                    f"{_shown(instance)}{_unquote_hint(instance, want)}"
                ),
                False,
            )
        ]
    if v == "enum":
        choices = [str(c) for c in schema["enum"]]
        return [(path, f"{where}: {instance!r} is not one of {', '.join(choices)}{_hint(instance, choices)}", False)]
    if v == "const":
        return [
            (
                path,
                f"{where}: must be {schema['const']!r}, got {instance!r}"
                + (" (this tool reads format version 1)" if path == ("version",) else ""),
                False,
            )
        ]
    if v == "pattern":
        msg = schema.get("x-message") or (
            f"must be {schema['description']}" if "description" in schema else f"must match {schema['pattern']}"
        )
        if list(err.schema_path)[-2:] == ["propertyNames", "pattern"]:  # a key of a mapping: point at the key
            return [(path + (instance,), f"{where}: {_short(instance)} {msg}", True)]
        return [(path, f"{where}: {_short(instance)} {msg}", False)]
    if v in ("minimum", "maximum"):
        why = f" ({schema['x-message']})" if "x-message" in schema else ""
        return [
            (
                path,
                (
                    f"{where}: {_short(instance)} is out of range: use a value from "
                    f"{schema.get('minimum', '-inf')} to {schema.get('maximum', 'inf')}{why}"
                ),
                False,
            )
        ]
    if v == "uniqueItems":
        first: dict[str, int] = {}
        for i, item in enumerate(instance):
            if repr(item) in first:
                at = path + (i,)
                return [
                    (
                        at,
                        (
                            f"{format_path(at)}: {item!r} is listed twice (already "
                            f"{format_path(path + (first[repr(item)],))}): remove one"
                        ),
                        False,
                    )
                ]
            first[repr(item)] = i
    if v == "minItems":
        return [(path, f"{where}: must not be an empty list: give at least {schema['minItems']} item(s)", False)]
    if v == "minLength":
        return [(path, f"{where}: must not be empty", False)]
    if v in ("maxItems", "maxLength", "maxProperties"):
        # jsonschema's own message shows the whole value: a list of 100,001 registries
        what = {"maxItems": "items", "maxLength": "characters", "maxProperties": "keys"}[v]
        why = schema.get("x-message") or f"at most {schema[v]:,} {what}"
        return [(path, f"{where}: {len(instance):,} {what}, too many: {why}", False)]
    return [(path, f"{where}: {err.message}", False)]


def _unquote_hint(value: Any, want: Any) -> str:
    """`"true"` where a boolean belongs, `"100"` where an integer does: the quotes are the mistake."""
    if not isinstance(value, str):
        return ""
    if want == "boolean" and value.lower() in ("true", "false"):
        return f": write {value.lower()} without quotes"
    if want == "integer" and value.strip().isdigit():
        return f": write {value.strip()} without quotes"
    return ""


def _short(value: Any, limit: int = 60) -> str:
    s = repr(value)
    return s if len(s) <= limit else s[: limit - 3] + "..."


def _shown(value: Any) -> str:
    if isinstance(value, datetime.date):
        return f" ({value.isoformat()}; quote it to make it a string)"
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        s = repr(value)
        return f" ({s[:60]})" if len(s) <= 60 else f" ({s[:57]}...)"
    return ""
