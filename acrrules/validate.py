"""Stage 2: validate a loaded description.

First the JSON Schema (structure, types, enums, unknown keys), then the rules a
schema cannot express (Premium-only features, locations of the chosen cloud,
duplicates, CIDRs).  Every problem of a file is collected and reported at once,
each at its position, with a hint how to fix it.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sized
from pathlib import Path
from typing import Any

import jsonschema
from jsonschema.protocols import Validator

from . import catalog, schema_errors
from .errors import Diagnostic, InputError
from .load import SourceDocument, format_path
from .paths import schemas_dir
from .schema_errors import YAML, closest
from .schema_errors import type_name as _type_name


def schema_path() -> Path:
    return schemas_dir() / "registry.schema.json"


@functools.cache
def registry_schema() -> dict[str, Any]:
    """The description's schema: schemas/registry.schema.json, with the settings fragment of every
    target that owns one and the target list of `outputs` taken from the target table (a test
    proves the file says the same, for editors)."""
    from .targets import TARGETS

    with open(schema_path(), encoding="utf-8") as fh:
        schema: dict[str, Any] = json.load(fh)
    schema["properties"]["outputs"]["items"]["enum"] = list(TARGETS)
    settings = schema["properties"]["targets"]["properties"]
    for tid, target in TARGETS.items():
        if target.settings_schema:
            settings[tid] = target.settings_schema
    return schema


def schema_text() -> str:
    """What `acrrules schema` prints, and what schemas/registry.schema.json holds (regenerate it with
    `acrrules schema > schemas/registry.schema.json` after changing a target's settings)."""
    return json.dumps(registry_schema(), indent=2, ensure_ascii=False) + "\n"


def ecma_pattern(pattern: str) -> str:
    """A JSON Schema pattern (ECMA-262) as a Python regex: ECMA's `$` is the end of the string, but
    Python's `$` also matches before a final newline, so `^[a-z]+$` would accept "prod\\n" and the
    newline would reach the outputs.  Each `$` outside a character class becomes `\\Z`."""
    out, i, in_class = [], 0, False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if c == "[":
            in_class = True
        elif c == "]":
            in_class = False
        out.append("\\Z" if c == "$" and not in_class else c)
        i += 1
    return "".join(out)


@functools.cache
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(ecma_pattern(pattern))


def _pattern(
    validator: Validator, pattern: str, instance: Any, schema: Mapping[str, Any]
) -> Iterator[jsonschema.ValidationError]:
    if validator.is_type(instance, "string") and not _compiled(pattern).search(instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


def _is_integer(checker: Any, instance: Any) -> bool:
    """JSON Schema's integer is any number with no fractional part (200.0) and jsonschema's
    excludes bool only: a description's integers are ints, as every output writes them."""
    return type(instance) is int


# Draft 2020-12 with ECMA-262 `pattern` semantics (see ecma_pattern) and integers that are ints.
# types-jsonschema leaves extend() unannotated; it returns a validator class, as create() does.
_Validator: type[Validator] = jsonschema.validators.extend(  # type: ignore[no-untyped-call]
    jsonschema.Draft202012Validator,
    {"pattern": _pattern},
    type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine("integer", _is_integer),
)


@functools.cache
def _validator() -> Validator:
    # The schema itself is checked by tests/test_schema.py, not on every run.
    return _Validator(inline_refs(registry_schema()))


def inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with each "$ref": "#/$defs/NAME" replaced by that definition (in an allOf when
    the $ref has sibling keywords): the same checks and the same errors, without a reference
    lookup for every registry, which was most of the schema's cost on a large description."""
    defs = schema.get("$defs", {})

    def inline(node: Any, seen: frozenset[str]) -> Any:
        if isinstance(node, list):
            return [inline(v, seen) for v in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/") and ref[8:] in defs and ref not in seen:
            target = inline(defs[ref[8:]], seen | {ref})
            rest = {k: inline(v, seen) for k, v in node.items() if k != "$ref"}
            return {"allOf": [target], **rest} if rest else target
        return {k: inline(v, seen) for k, v in node.items()}

    inlined: dict[str, Any] = inline(schema, frozenset())
    return inlined


def _key_diagnostics(doc: SourceDocument) -> list[Diagnostic]:
    """Every key of a mapping is text: a label key written `1:` or `true:` would reach the outputs
    as a number or a boolean (the schema's propertyNames checks strings only)."""
    out: list[Diagnostic] = []
    if doc.text_keys_only:  # the loader saw every key (a walk over 100,000 registries: a third of a second)
        return out
    stack: list[tuple[tuple[Any, ...], Any]] = [((), doc.data)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                if type(key) is not str:
                    shown = "null" if key is None else str(key).lower() if isinstance(key, bool) else str(key)
                    out.append(
                        doc.diagnostic(
                            path + (key,),
                            f"{format_path(path)}: the key {shown} is {_type_name(key)}, not text: "
                            f"quote it ('{shown}') or use another key",
                            key=True,
                        )
                    )
                if isinstance(value, (dict, list)):
                    stack.append((path + (key,), value))
        elif isinstance(node, list):
            stack.extend((path + (i,), v) for i, v in enumerate(node) if isinstance(v, (dict, list)))
    return out


# ---- the schema, fast on large descriptions -------------------------------------------------
#
# jsonschema was most of the time validate took on a large description (bench/bench_scale.py).
# Each registry is first
# checked by a predicate compiled from the registry's own subschema (`_compile`), which says
# True only when the subschema surely holds; jsonschema then runs on the rest of the document and
# on each registry the predicate does not pass, so that every message is jsonschema's, as before.

_Check = Callable[[Any], bool]
_IGNORED = frozenset({"description", "default", "x-message", "title", "$comment", "examples"})


def _compile(schema: Any) -> _Check | None:
    """A predicate that implies `schema` holds (False: ask jsonschema), or None when the schema
    uses a keyword this compiler does not know (then jsonschema checks everything)."""
    if not isinstance(schema, dict):
        return None
    checks: list[_Check] = []
    for keyword, arg in schema.items():
        if keyword in _IGNORED:
            continue
        check = _compile_keyword(keyword, arg, schema)
        if check is None:
            return None
        checks.append(check)
    return _all(checks)


def _all(checks: list[_Check]) -> _Check:
    if len(checks) == 1:
        return checks[0]

    def check(v: Any) -> bool:
        for c in checks:  # noqa: SIM110 - a loop is faster than all(<generator>), run for every registry
            if not c(v):
                return False
        return True

    return check


def _compile_keyword(keyword: str, arg: Any, schema: dict[str, Any]) -> _Check | None:
    if keyword == "type" and arg in _TYPES:
        return _TYPES[arg]
    if keyword == "enum" and isinstance(arg, list) and all(type(a) is str for a in arg):
        allowed = frozenset(arg)
        return lambda v: type(v) is str and v in allowed
    if keyword == "pattern" and isinstance(arg, str):
        search = _compiled(arg).search
        return lambda v: type(v) is not str or search(v) is not None
    if keyword in ("minLength", "maxLength", "minItems", "maxItems") and type(arg) is int:
        kind: type[Sized] = str if keyword.endswith("Length") else list
        n: int = arg
        if keyword.startswith("min"):
            return lambda v: type(v) is not kind or len(v) >= n
        return lambda v: type(v) is not kind or len(v) <= n
    if keyword == "items":
        item = _compile(arg)
        if item is None:
            return None

        def items(v: Any) -> bool:
            if type(v) is list:
                for x in v:
                    if not item(x):
                        return False
            return True

        return items
    if keyword == "required" and isinstance(arg, list):
        need = tuple(arg)
        return lambda v: type(v) is not dict or all(k in v for k in need)
    if keyword == "properties" and isinstance(arg, dict):
        props: dict[str, _Check] = {}
        for name, sub in arg.items():
            compiled = _compile(sub)
            if compiled is None:
                return None
            props[name] = compiled

        def properties(v: Any) -> bool:
            if type(v) is dict:
                for k, x in v.items():
                    c = props.get(k)
                    if c is not None and not c(x):
                        return False
            return True

        return properties
    if keyword == "additionalProperties" and arg is False and isinstance(schema.get("properties"), dict):
        known = frozenset(schema["properties"])
        return lambda v: type(v) is not dict or known.issuperset(v)
    if keyword == "allOf" and isinstance(arg, list):
        subs: list[_Check] = []
        for sub in arg:
            compiled = _compile(sub)
            if compiled is None:
                return None
            subs.append(compiled)
        return _all(subs)
    return None


_TYPES: dict[str, _Check] = {
    "object": lambda v: type(v) is dict,
    "array": lambda v: type(v) is list,
    "string": lambda v: type(v) is str,
    "integer": lambda v: type(v) is int,
    "boolean": lambda v: type(v) is bool,
}


@functools.cache
def _split_validators() -> tuple[Validator, Validator, _Check] | None:
    """(the document's validator without the registries' items, the registry's validator, the
    registry's predicate), or None when the registry's subschema does not compile."""
    schema = inline_refs(registry_schema())
    item = schema["properties"]["registries"].get("items")
    check = _compile(item)
    if check is None:
        return None
    rest = dict(schema)
    rest["properties"] = dict(schema["properties"])
    rest["properties"]["registries"] = {k: v for k, v in schema["properties"]["registries"].items() if k != "items"}
    return _Validator(rest), _Validator(item), check


def _schema_diagnostics(doc: SourceDocument) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    split = _split_validators()
    registries = doc.data.get("registries")
    if split is None or type(registries) is not list:
        for err in _validator().iter_errors(doc.data):
            out.extend(_explain(doc, err))
        return out
    rest, registry_validator, plainly_valid = split
    for err in rest.iter_errors(doc.data):
        out.extend(_explain(doc, err))
    for i, reg in enumerate(registries):
        if plainly_valid(reg):
            continue
        for err in registry_validator.iter_errors(reg):
            err.path.extendleft((i, "registries"))  # as if found in the whole document
            out.extend(_explain(doc, err))
    return out


def _explain(doc: SourceDocument, err: jsonschema.ValidationError) -> list[Diagnostic]:
    return [doc.diagnostic(path, message, key=key) for path, message, key in schema_errors.explain(err, YAML)]


# ---- rules the schema cannot express ---------------------------------------------------


def _semantic_diagnostics(doc: SourceDocument, extra_locations: dict[str, dict[str, str]] | None) -> list[Diagnostic]:
    data = doc.data
    out: list[Diagnostic] = []
    cloud_name = data.get("cloud", catalog.DEFAULT_CLOUD)
    cloud = catalog.CLOUDS.get(cloud_name) if isinstance(cloud_name, str) else None
    locations = dict(cloud.locations) if cloud else {}
    if cloud and extra_locations and cloud.name in extra_locations:
        # A region only a (newer) Service Tags file knows is a location when its name is one as
        # the catalog's are; it never replaces a catalog location (a case or look-alike twin).
        for loc, region in extra_locations[cloud.name].items():
            if loc not in locations and catalog.REGION_NAME.fullmatch(region) and loc == region.lower():
                locations[loc] = region

    explained: dict[str, str] = {}

    def check_location(path: tuple[Any, ...], loc: Any) -> bool:
        if not isinstance(loc, str) or cloud is None:
            return False
        if loc in locations:
            return True
        if loc not in explained:  # difflib, once per distinct mistake however often it is made
            explained[loc] = explain_location(loc)
        out.append(doc.diagnostic(path, f"{format_path(path)}: {explained[loc]}"))
        return False

    def explain_location(loc: str) -> str:
        assert cloud is not None
        other = catalog.cloud_of_location(loc)
        if not loc.isascii():  # a look-alike: the Kelvin sign K lower-cases to k
            import unicodedata

            c = next(c for c in loc if not c.isascii())
            meant = unicodedata.normalize("NFKC", loc).lower()
            msg = (
                f"{loc!r} contains U+{ord(c):04X} ({unicodedata.name(c, 'unnamed')}), not ASCII: "
                "location names are ASCII letters and digits"
                + (f"; did you mean {meant!r}?" if meant in locations else "")
            )
        elif loc.lower() in locations:
            msg = f"{loc!r} must be written in lower case: {loc.lower()!r}"
        elif other and other != cloud.name:
            msg = (
                f"{loc!r} is a location of {other}, not of {cloud.name}: "
                f"set `cloud: {other}` or pick a location of {cloud.name}"
            )
        else:
            compact = loc.replace(" ", "").replace("-", "").lower()
            hint = compact if compact in locations else closest(compact, locations)
            msg = f"unknown {cloud.name} location {loc!r}" + (
                f"; did you mean {hint!r}?" if hint else "; use an ARM location name such as 'eastus'"
            )
        return msg

    registries = data.get("registries")
    seen_names: dict[str, int] = {}
    if isinstance(registries, list):
        for i, reg in enumerate(registries):
            if not isinstance(reg, dict):
                continue
            base = ("registries", i)
            name = reg.get("name")
            if isinstance(name, str):
                low = name.lower()
                if low in seen_names:
                    out.append(
                        doc.diagnostic(
                            base + ("name",),
                            f"{format_path(base + ('name',))}: duplicate registry name {name!r} "
                            f"(registry names are case-insensitive; already used by "
                            f"registries[{seen_names[low]}])",
                        )
                    )
                else:
                    seen_names[low] = i
            sku = reg.get("sku")
            if sku in catalog.SKUS and sku != "Premium":
                for key in catalog.PREMIUM_ONLY:
                    val = reg.get(key)
                    used = (
                        (key == "replicas" and isinstance(val, list) and len(val) > 0)
                        or (key == "data_endpoints" and val in catalog.USES_DEDICATED_DATA)
                        or (key in ("regional_endpoints", "private_link") and val is True)
                    )
                    if used:
                        out.append(
                            doc.diagnostic(
                                base + (key,),
                                f"{format_path(base + (key,))}: {key} needs sku Premium "
                                f"(this registry is {sku}): upgrade the SKU or remove {key}",
                                key=True,
                            )
                        )
            home = reg.get("location")
            home_ok = check_location(base + ("location",), home)
            replicas = reg.get("replicas")
            if isinstance(replicas, list):
                seen: dict[str, int] = {}
                for j, rep in enumerate(replicas):
                    p = base + ("replicas", j)
                    if not isinstance(rep, str):
                        continue
                    if home_ok and rep == home:
                        out.append(
                            doc.diagnostic(
                                p,
                                f"{format_path(p)}: {rep!r} is the home location; "
                                "a registry cannot replicate to its own location: remove it",
                            )
                        )
                    elif rep in seen:
                        out.append(
                            doc.diagnostic(
                                p,
                                f"{format_path(p)}: duplicate replica {rep!r} "
                                f"(already replicas[{seen[rep]}]): remove it",
                            )
                        )
                    else:
                        seen[rep] = j
                        check_location(p, rep)
            if reg.get("private_link") is True and reg.get("data_endpoints") == catalog.DATA_STORAGE:
                at: tuple[Any, ...] = base + ("data_endpoints",)
                out.append(
                    doc.diagnostic(
                        at,
                        f"{format_path(at)}: private_link needs dedicated data endpoints, "
                        "but data_endpoints is 'storage': use 'dedicated' (or 'both' while "
                        "migrating), or omit data_endpoints",
                    )
                )

    sources = data.get("sources")
    if isinstance(sources, list):
        out.extend(_check_addresses(doc, ("sources",), sources, allow_star=True))
    targets = data.get("targets")
    if isinstance(targets, dict):
        from .targets import TARGETS

        for tid, target in TARGETS.items():
            settings = targets.get(tid)
            if not isinstance(settings, dict):
                continue
            for key in target.address_settings:
                if isinstance(settings.get(key), list):
                    out.extend(
                        _check_addresses(doc, ("targets", tid, key), settings[key], allow_star=False, hosts_only=True)
                    )
    return out


# Plain CIDR notation only: ipaddress also reads netmasks (10.0.0.0/255.0.0.0) and IPv6 zone
# ids (fe80::1%eth0), which NSGs, Azure Firewall and netfilter do not.
_CIDR_CHARS = re.compile(r"^[0-9A-Fa-f:.]+(/[0-9]{1,3})?$")


def _check_addresses(
    doc: SourceDocument, path: tuple[Any, ...], values: list[Any], *, allow_star: bool, hosts_only: bool = False
) -> list[Diagnostic]:
    out = []
    seen: dict[Any, int] = {}
    what = "an IP address" if hosts_only else "an IP address or CIDR such as 10.0.0.0/24"
    for i, v in enumerate(values):
        p = path + (i,)
        if not isinstance(v, str):
            continue
        if v == "*":
            if not allow_star:
                out.append(doc.diagnostic(p, f"{format_path(p)}: '*' is not allowed here: give IP addresses"))
            elif len(values) > 1:
                out.append(
                    doc.diagnostic(
                        p,
                        f"{format_path(p)}: '*' (any source) cannot be combined with "
                        'addresses: use either ["*"] or a list of addresses',
                    )
                )
            continue
        try:
            if not _CIDR_CHARS.match(v):
                raise ValueError(v)
            value = ipaddress.ip_address(v) if hosts_only else ipaddress.ip_network(v, strict=True)
        except ValueError:
            fix = ""
            if not hosts_only:
                try:
                    meant = str(ipaddress.ip_network(v.strip(), strict=False))
                    if _CIDR_CHARS.match(meant):
                        fix = f"; did you mean {meant!r}?" + (" (host bits are set)" if _CIDR_CHARS.match(v) else "")
                except ValueError:
                    pass
            out.append(doc.diagnostic(p, f"{format_path(p)}: {v!r} is not {what}{fix}"))
            continue
        if value in seen:  # Azure rejects a rule that lists the same prefix twice
            out.append(
                doc.diagnostic(
                    p,
                    f"{format_path(p)}: {v!r} is listed twice (already "
                    f"{format_path(path + (seen[value],))}): remove it",
                )
            )
        else:
            seen[value] = i
    return out


def validate(doc: SourceDocument, *, extra_locations: dict[str, dict[str, str]] | None = None) -> None:
    """Raise InputError with every problem of `doc`, or return when it is valid.

    `extra_locations` (cloud -> {arm location: tag region}) adds regions a given
    Service Tags file knows and the built-in catalog does not (yet).
    """
    if doc.data is None:
        raise InputError(
            list(doc.problems)
            + [
                Diagnostic(
                    doc.name,
                    1,
                    1,
                    "the file is empty: a description needs at least "
                    "`version: 1` and a `registries:` list (see `acrrules schema`)",
                )
            ]
        )
    if not isinstance(doc.data, dict):
        raise InputError(
            list(doc.problems)
            + [
                doc.diagnostic(
                    (),
                    f"the top level is {_type_name(doc.data)}, but a description is a "
                    "mapping with `version: 1` and `registries:`",
                )
            ]
        )
    problems = list(doc.problems)
    problems += _key_diagnostics(doc)
    problems += _schema_diagnostics(doc)
    problems += _semantic_diagnostics(doc, extra_locations)
    if problems:
        raise InputError(problems)
