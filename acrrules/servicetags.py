"""Microsoft's weekly Service Tags file: loading and checking.

The file is large (4 MB for Public) and only a handful of its ~3,000 tags
matter, so the structure is checked in two steps: a cheap shape check of every
entry (name + properties), then the JSON Schema in
schemas/servicetags.schema.json on the envelope and the entries we use.

Two shapes are read, with the same rules: the weekly download file, and what
`az network list-service-tags --location L` prints, the Service Tag Discovery
API's ServiceTagsListResult (learn.microsoft.com/rest/api/virtualnetwork/
service-tags/list): `changeNumber` strings at the top and in each tag's
`properties`, and ARM metadata (`id`, `name`, `type`, `nextLink`) the download
file does not have; tags carry `id`, `name`, `properties` {addressPrefixes,
changeNumber, region, state, systemService} and `serviceTagChangeNumber`.
A top-level `id` or `type` marks the Discovery shape.

The file is untrusted input (README: "Security model", "Service Tags files"): `parse` refuses
duplicate JSON keys, tag names that are not plain ASCII or that differ only in case, changeNumbers
above catalog.SERVICETAGS_MAX_CHANGE_NUMBER, a date in the file name after today, and more
prefixes than the caps; `ServiceTagsFile.tag` refuses, for every tag a run uses, a prefix not in
canonical CIDR text, wider than catalog.SERVICETAGS_MIN_PREFIXLEN, or overlapping special-purpose
space (catalog.SERVICETAGS_SPECIAL_RANGES). Every refusal is located and names the tag.
"""

from __future__ import annotations

import bisect
import datetime
import functools
import ipaddress
import itertools
import json
import os
import re
import socket
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import jsonschema

from . import catalog, schema_errors
from .errors import Diagnostic, InputError
from .load import decode_utf8, read_bytes, text_position
from .paths import schemas_dir

MAX_BYTES = catalog.SERVICETAGS_MAX_BYTES  # (also what `tags fetch` downloads at most)
# The name Microsoft publishes each file under; the date is the week's publication date.
FILE_NAME = re.compile(r"ServiceTags_(Public|AzureGovernment|China)_([0-9]{8})\.json")


def date_in_name(path: str) -> datetime.date | None:
    """The date in a ServiceTags_<Cloud>_<YYYYMMDD>.json name; None when the name has none (or an impossible one)."""
    m = FILE_NAME.fullmatch(os.path.basename(path))
    if not m:
        return None
    try:
        digits = m.group(2)  # (datetime.strptime would import _strptime, and its locale, in every run)
        return datetime.date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
    except ValueError:
        return None


def dated_files(directory: str, kind: str) -> list[str]:
    """The ServiceTags_<kind>_<YYYYMMDD>.json files in `directory` (regular files, or links to them), oldest
    first: `tags fetch`, `tags prune`, `render` and `report` of a project all pick from this list."""
    dated = []
    for name in os.listdir(directory):
        m = FILE_NAME.fullmatch(name)
        day = date_in_name(name) if m and m.group(1) == kind else None
        if day is not None and os.path.isfile(os.path.join(directory, name)):
            dated.append((day, name))
    return [os.path.join(directory, name) for _, name in sorted(dated)]


@functools.cache
def _schema() -> dict[str, Any]:
    path = schemas_dir() / "servicetags.schema.json"
    with open(path, encoding="utf-8") as fh:
        schema: dict[str, Any] = json.load(fh)
    return schema


@functools.cache
def _envelope_validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(_schema())


@functools.cache
def _tag_validator(discovery: bool = False) -> jsonschema.Draft202012Validator:
    ref = "#/$defs/discoveryTag" if discovery else "#/$defs/tag"
    return jsonschema.Draft202012Validator({"$defs": _schema()["$defs"], "$ref": ref})


DOWNLOAD, DISCOVERY = "download", "discovery"  # the two shapes (see the module docstring)
_OPTIONAL_STRINGS = ("region", "platform", "systemService")
_DISCOVERY_OPTIONAL_STRINGS = ("region", "state", "systemService")
_DIGITS = re.compile(r"[0-9]{1,18}")
# Microsoft's tag names are letters, digits and dots (at most 47 characters); a name must be plain
# ASCII, so no look-alike (K, U+212A KELVIN SIGN, lower-cases to k) can pose as a real tag.
TAG_NAME_MAX = 128
_TAG_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_NETWORK_FEATURE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")  # NSG, FW, API, UDR, VSE


def _plainly_valid(entry: Any, discovery: bool = False) -> bool:
    """A quick check that implies the tag schema holds (the schema is far slower per tag, and a run
    checks every tag it uses). False only means: ask the schema, which explains the problem."""
    if not (
        type(entry) is dict and type(entry.get("name")) is str and entry["name"] and type(entry.get("id", "")) is str
    ):
        return False
    props = entry.get("properties")
    if type(props) is not dict:
        return False
    change, prefixes = props.get("changeNumber"), props.get("addressPrefixes")
    if discovery:
        if type(change) is not str or not _DIGITS.fullmatch(change):
            return False
    elif type(change) is not int or change < 0:
        return False
    if type(prefixes) is not list or not prefixes:
        return False
    if not all(type(p) is str and p for p in prefixes):
        return False
    if not all(
        type(props.get(k, "")) is str for k in (_DISCOVERY_OPTIONAL_STRINGS if discovery else _OPTIONAL_STRINGS)
    ):
        return False
    if not discovery and type(props.get("regionId", 0)) is not int:
        return False
    features = props.get("networkFeatures")
    return features is None or (type(features) is list and all(type(f) is str for f in features))


Block = tuple[int, int]  # (first address as an integer, prefix length): what merging works on


class ServiceTag(NamedTuple):
    name: str
    change_number: int
    v4_blocks: tuple[Block, ...]
    v6_blocks: tuple[Block, ...]
    # properties.networkFeatures (NSG, FW, ...); None when the tag has no list, which says nothing
    network_features: tuple[str, ...] | None = None

    @property
    def v4(self) -> tuple[ipaddress.IPv4Network, ...]:
        return tuple(ipaddress.IPv4Network(b) for b in self.v4_blocks)

    @property
    def v6(self) -> tuple[ipaddress.IPv6Network, ...]:
        return tuple(ipaddress.IPv6Network(b) for b in self.v6_blocks)


_FAMILY = {4: (socket.AF_INET, 32), 6: (socket.AF_INET6, 128)}


def parse_prefix(text: str) -> tuple[int, int, int]:
    """(IP version, first address as an integer, prefix length) of a prefix in canonical CIDR text:
    `address/length`, the address as ipaddress and inet_ntop write it (IPv6 lower-case, RFC 5952
    compressed), the length in decimal without leading zeros, no host bits set. Anything else
    (a netmask `0.0.0.0/0.0.0.0`, `/00`, `/024`, a bare address, `2001:DB8::/32`) is a ValueError
    that says what is wrong and, when the text means a network, how to write it.

    inet_pton parses in C, far faster than ipaddress, and a run reads thousands of prefixes.
    """
    addr, slash, length = text.partition("/")
    version = 6 if ":" in addr else 4
    family, bits = _FAMILY[version]
    try:
        if not slash or "%" in addr or not (length.isascii() and length.isdigit()) or length != str(int(length)):
            raise ValueError
        packed = socket.inet_pton(family, addr)
        value, plen = int.from_bytes(packed, "big"), int(length)
        if not 0 <= plen <= bits or value & ((1 << (bits - plen)) - 1) or _address_text(family, packed) != addr:
            raise ValueError
    except (OSError, ValueError):
        raise ValueError(_not_canonical(text)) from None
    return version, value, plen


def _address_text(family: int, packed: bytes) -> str:
    """The address as ipaddress writes it: inet_ntop's text, but IPv6 with an IPv4 tail in hex."""
    text = socket.inet_ntop(family, packed)
    return str(ipaddress.IPv6Address(packed)) if family == socket.AF_INET6 and "." in text else text


def _not_canonical(text: str) -> str:
    """Why `text` is no canonical CIDR prefix, in ipaddress' words when it has some."""
    if "%" in text:
        return "an address with a zone id (%...) is no network prefix"
    try:
        net = ipaddress.ip_network(text, strict=True)
    except ValueError as e:
        return str(e)
    if str(net) == text:
        return "not a CIDR prefix"
    return f"not in canonical CIDR notation: the only form accepted for this network is {str(net)!r}"


def _special_table(version: int) -> tuple[list[int], list[int], list[tuple[str, str]]]:
    """The special-purpose ranges of one family, sorted: starts, ends (exclusive), (CIDR, why)."""
    rows = sorted(
        (int(net.network_address), int(net.broadcast_address) + 1, cidr, why)
        for cidr, why in catalog.SERVICETAGS_SPECIAL_RANGES.items()
        if (net := ipaddress.ip_network(cidr)).version == version
    )
    for a, b in itertools.pairwise(rows):
        assert a[1] <= b[0], f"{a[2]} and {b[2]} overlap"  # the lookup below needs disjoint ranges
    return [r[0] for r in rows], [r[1] for r in rows], [(r[2], r[3]) for r in rows]


_SPECIAL = {4: _special_table(4), 6: _special_table(6)}


def prefix_problem(version: int, value: int, plen: int) -> str | None:
    """Why a Service Tags file must not list this prefix (too wide, special-purpose space), or None."""
    floor = catalog.SERVICETAGS_MIN_PREFIXLEN[version]
    if plen < floor:
        return (
            f"is wider than /{floor}, the widest IPv{version} prefix acrrules takes from a Service Tags "
            "file (Microsoft's widest are IPv4 /14 and IPv6 /39)"
        )
    starts, ends, why = _SPECIAL[version]
    last = value + (1 << (_FAMILY[version][1] - plen)) - 1
    i = bisect.bisect_right(starts, last) - 1  # the only range that can overlap: ranges are disjoint
    if i >= 0 and ends[i] > value:
        return f"overlaps {why[i][0]}, {why[i][1]}, which no Service Tags file lists"
    return None


_UNTRUSTED_FIX = (
    "this file is not as Microsoft publishes it: download it again (acrrules tags fetch) and "
    "review the change that edited it"
)


@dataclass
class ServiceTagsFile:
    path: str  # as the user typed it
    cloud: str  # Public | AzureGovernment | China
    change_number: int
    entries: dict[str, dict[str, Any]] = field(repr=False)  # tag name -> raw entry
    text: str = field(repr=False, default="")
    shape: str = DOWNLOAD  # DOWNLOAD or DISCOVERY; the entries are as in the file
    _checked: dict[str, ServiceTag] = field(default_factory=dict, repr=False)

    @property
    def file_name(self) -> str:
        """For output headers: the base name only, never a path the user did not type."""
        return os.path.basename(self.path)

    def error(self, message: str, needle: str | re.Pattern[str] | None = None, tag: str | None = None) -> InputError:
        """A located error; with `tag`, at `needle`'s first occurrence after the tag's name (or the name)."""
        line: int | None
        col: int | None
        line, col = None, None
        if tag is not None:
            m = _tag_name(tag).search(self.text)
            if m is not None:
                start = m.start()
                if needle is not None:
                    pattern = needle if isinstance(needle, re.Pattern) else re.compile(re.escape(needle))
                    found = pattern.search(self.text, m.start())
                    start = found.start() if found is not None else start
                line, col = text_position(self.text, start)
        if line is None:
            line, col = _locate(self.text, needle)
        return InputError([Diagnostic(self.path, line, col, message)])

    def tag(self, name: str) -> ServiceTag:
        if name in self._checked:
            return self._checked[name]
        entry = self.entries.get(name)
        if entry is None:
            close = [n for n in self.entries if n.lower() == name.lower()]
            hint = f" (it has {close[0]!r})" if close else ""
            raise self.error(
                f"the Service Tags file has no tag {name!r}{hint}, which the description needs: "
                f"use a newer {self.cloud} file, or remove the location or option that needs it"
            )
        discovery = self.shape == DISCOVERY
        errors = (
            []
            if _plainly_valid(entry, discovery)
            else sorted(_tag_validator(discovery).iter_errors(entry), key=lambda e: list(e.absolute_path))
        )
        if errors:
            raise self.error(f"tag {name!r} is malformed: {_explain(errors[0])}", _tag_name(name))
        v4: list[Block] = []
        v6: list[Block] = []
        for p in entry["properties"]["addressPrefixes"]:
            try:
                version, value, plen = parse_prefix(p)
            except ValueError as ex:
                raise self.error(
                    f"tag {name!r} has an invalid address prefix {p!r}: {ex}", json.dumps(p), tag=name
                ) from None
            problem = prefix_problem(version, value, plen)
            if problem is not None:
                raise self.error(f"tag {name!r}: {p} {problem}: {_UNTRUSTED_FIX}", json.dumps(p), tag=name)
            (v4 if version == 4 else v6).append((value, plen))
        features = entry["properties"].get("networkFeatures")
        for f in features or ():
            if not _NETWORK_FEATURE.fullmatch(f):
                raise self.error(
                    f"tag {name!r} has a networkFeatures entry {f!r} that is not a plain ASCII word "
                    f"(Microsoft's are NSG, FW, API, UDR, VSE): {_UNTRUSTED_FIX}",
                    _key("networkFeatures"),
                    tag=name,
                )
        tag = ServiceTag(
            name,
            int(entry["properties"]["changeNumber"]),
            tuple(v4),
            tuple(v6),
            tuple(features) if isinstance(features, list) else None,
        )
        self._checked[name] = tag
        return tag


def _locate(text: str, needle: str | re.Pattern[str] | None, nth: int = 1) -> tuple[int | None, int | None]:
    """Line and column of the nth occurrence of `needle` (a string or a pattern) in `text`."""
    if not needle or not text:
        return None, None
    pattern = needle if isinstance(needle, re.Pattern) else re.compile(re.escape(needle))
    for i, m in enumerate(pattern.finditer(text), 1):
        if i == nth:
            off = m.start()
            return text.count("\n", 0, off) + 1, off - (text.rfind("\n", 0, off) + 1) + 1
    return None, None


def _key(name: str) -> re.Pattern[str]:
    """A JSON object key, however the file is spaced."""
    return re.compile(r'"' + re.escape(name) + r'"\s*:')


def _tag_name(name: str) -> re.Pattern[str]:
    """A tag's `"name": "..."`, its non-ASCII characters raw or as JSON escapes."""
    forms = dict.fromkeys((json.dumps(name), json.dumps(name, ensure_ascii=False)))
    return re.compile(r'"name"\s*:\s*(?:' + "|".join(map(re.escape, forms)) + ")")


def _top_level_key(text: str, key: str, nth: int) -> tuple[int | None, int | None]:
    """Line and column of the nth `"key":` of the outermost JSON object (error path only: a scan in Python)."""
    depth, i, seen, n = 0, 0, 0, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            if depth == 1:
                k = j + 1
                while k < n and text[k] in " \t\r\n":
                    k += 1
                if k < n and text[k] == ":":
                    try:
                        name = json.loads(text[i : j + 1])
                    except ValueError:
                        name = None
                    if name == key:
                        seen += 1
                        if seen == nth:
                            return text_position(text, i)
            i = j + 1
            continue
        if c in "[{":
            depth += 1
        elif c in "]}":
            depth -= 1
        i += 1
    return None, None


def _unclosed(text: str) -> bool:
    """Whether the JSON text ends inside a string or with brackets still open (a cut-off download)."""
    depth = 0
    in_string = escaped = False
    for c in text:
        if in_string:
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
        elif c in "[{":
            depth += 1
        elif c in "]}":
            depth -= 1
    return in_string or depth > 0


def _explain(e: jsonschema.ValidationError) -> str:
    """A schema error in words, e.g. "changeNumber: expected an integer, got a string ('7')"."""
    return schema_errors.explain(e, schema_errors.JSON)[0][1]


_LOADED: dict[tuple[str, str, int, int, int], ServiceTagsFile] = {}


def load(path: str) -> ServiceTagsFile:
    """Read and check a Service Tags file; every problem is an InputError naming the file.

    A file is read once per process: a project's descriptions of one cloud, and `report` (which
    renders and compares), share what the first read parsed, while the file is unchanged on disk."""
    try:
        st = os.stat(path)
        key: tuple[str, str, int, int, int] | None = (
            path,
            os.path.realpath(path),
            st.st_ino,
            st.st_size,
            st.st_mtime_ns,
        )
    except OSError:
        key = None
    if key is not None and key in _LOADED:
        return _LOADED[key]
    loaded = _read(path)
    if key is not None:
        if len(_LOADED) >= 4:  # one per cloud and an older one (`--since`) is all a run uses
            _LOADED.pop(next(iter(_LOADED)))
        _LOADED[key] = loaded
    return loaded


def _read(path: str) -> ServiceTagsFile:
    raw = read_bytes(
        path,
        max_bytes=MAX_BYTES,
        directory="is a directory: give the path of a ServiceTags_<Cloud>_<date>.json file",
        missing="no such file: download the weekly Service Tags file (ServiceTags_<Cloud>_<date>.json) "
        "from Microsoft and give its path",
        too_large=f"larger than {MAX_BYTES // (1024 * 1024)} MiB: not a Service Tags file",
    )
    return parse(path, raw)


def parse(path: str, raw: bytes) -> ServiceTagsFile:
    """Check the bytes of a Service Tags file (either shape); errors name `path` (a file or a URL)."""

    def fail(msg: str, line: int | None = None, col: int | None = None) -> InputError:
        return InputError([Diagnostic(path, line, col, msg)])

    if not raw or raw.isspace():  # isspace stops at the first other byte; strip() would copy 4 MB
        raise fail("the file is empty: expected Microsoft's Service Tags JSON")
    text = decode_utf8(path, raw)
    _check_date(path)
    duplicates: dict[int, str] = {}  # id() of an object read with a duplicate key -> that key
    try:
        data = json.loads(text, object_pairs_hook=_pairs_hook(duplicates))
    except json.JSONDecodeError as e:
        if e.pos >= len(text.rstrip()) or _unclosed(text):
            raise fail(
                "the file is truncated (the JSON ends before its last bracket): download the Service Tags file again",
                *text_position(text, len(text.rstrip())),
            ) from None
        raise fail(
            f"not valid JSON ({e.msg}): this is not a Service Tags file, or it is damaged; download it again",
            e.lineno,
            e.colno,
        ) from None
    except RecursionError:
        raise fail("not valid Service Tags JSON: nested too deeply", 1, 1) from None
    except ValueError as e:  # not a JSONDecodeError: a number of more than 4,300 digits
        raise fail(f"not valid Service Tags JSON: {str(e).split(';')[0]}") from None
    if id(data) in duplicates:
        top = duplicates.pop(id(data))
        raise fail(
            f"not a valid Service Tags file: the key {top!r} appears twice at the top level (a JSON reader "
            f"would take one of them silently): {_UNTRUSTED_FIX}",
            *_top_level_key(text, top, 2),
        )
    if not isinstance(data, dict) or "values" not in data or "cloud" not in data:
        raise fail(
            "not a Service Tags file: expected a JSON object with 'changeNumber', 'cloud' and 'values' "
            "(Microsoft's ServiceTags_<Cloud>_<date>.json, or what `az network list-service-tags` prints)",
            1,
            1,
        )
    shape = DISCOVERY if "id" in data or "type" in data else DOWNLOAD
    envelope = {k: v for k, v in data.items() if k != "values"}
    envelope["values"] = []
    errors = sorted(_envelope_validator().iter_errors(envelope), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        at = _locate(text, _key(str(first.absolute_path[0]))) if first.absolute_path else (1, 1)
        what = (
            ("not a valid Service Tags list (read as `az network list-service-tags` output, as it has 'id' or 'type')")
            if shape == DISCOVERY
            else "not a valid Service Tags file"
        )
        raise fail(f"{what}: {_explain(first)}", *at)
    values = data["values"]
    if not isinstance(values, list):
        raise fail(
            f"not a valid Service Tags file: values: expected an array, got "
            f"{schema_errors.type_name(values, schema_errors.JSON)}",
            *_locate(text, _key("values")),
        )
    change_number = int(data["changeNumber"])
    if change_number > catalog.SERVICETAGS_MAX_CHANGE_NUMBER:
        raise fail(
            f"the file's changeNumber {_number(change_number)} is above {catalog.SERVICETAGS_MAX_CHANGE_NUMBER}, "
            f"far beyond any Microsoft publishes (a few hundred): {_UNTRUSTED_FIX}",
            *_top_level_key(text, "changeNumber", 1),
        )
    entries: dict[str, dict[str, Any]] = {}
    folded: dict[str, str] = {}  # lower-case name -> the name as written
    total = 0
    for i, v in enumerate(values):
        name = v.get("name") if isinstance(v, dict) else None
        if not (isinstance(name, str) and isinstance(v.get("properties"), dict)):
            what = f"values[{i}] ({name!r})" if isinstance(name, str) else f"values[{i}]"
            at = _locate(text, _tag_name(name)) if isinstance(name, str) else (None, None)
            raise fail(f"not a valid Service Tags file: {what} needs a string 'name' and an object 'properties'", *at)
        if name in entries:
            raise fail(f"not a valid Service Tags file: tag {name!r} appears twice", *_locate(text, _tag_name(name), 2))
        if len(name) > TAG_NAME_MAX or not _TAG_NAME.fullmatch(name):
            raise fail(
                f"tag {name!a}: a tag name must be at most {TAG_NAME_MAX} ASCII letters, digits, '.', '-' or '_' "
                f"(as Microsoft's are), so that no look-alike can pose as a real tag: {_UNTRUSTED_FIX}",
                *_locate(text, _tag_name(name)),
            )
        twin = folded.setdefault(name.lower(), name)
        if twin != name:
            raise fail(
                f"tag {name!r} differs from tag {twin!r} only in letter case; acrrules reads tag names "
                f"regardless of case, so one would silently stand for the other: {_UNTRUSTED_FIX}",
                *_locate(text, _tag_name(name)),
            )
        props = v["properties"]
        twice = duplicates.pop(id(v), None) or duplicates.pop(id(props), None)
        if twice is not None:
            raise fail(
                f"tag {name!r} has the key {twice!r} twice (a JSON reader would take one of them silently): "
                f"{_UNTRUSTED_FIX}",
                *_locate(text, _tag_name(name)),
            )
        cn = props.get("changeNumber")
        if (type(cn) is int and cn > catalog.SERVICETAGS_MAX_CHANGE_NUMBER) or (
            type(cn) is str
            and cn.isascii()
            and cn.isdigit()
            and (len(cn) > 12 or int(cn) > catalog.SERVICETAGS_MAX_CHANGE_NUMBER)
        ):
            raise fail(
                f"tag {name!r} has changeNumber {_number(cn)}, above {catalog.SERVICETAGS_MAX_CHANGE_NUMBER}, far "
                f"beyond any Microsoft publishes: {_UNTRUSTED_FIX}",
                *_locate(text, _tag_name(name)),
            )
        prefixes = props.get("addressPrefixes")
        if type(prefixes) is list:
            if len(prefixes) > catalog.SERVICETAGS_MAX_PREFIXES_PER_TAG:
                raise fail(
                    f"tag {name!r} lists {len(prefixes):,} address prefixes, more than the "
                    f"{catalog.SERVICETAGS_MAX_PREFIXES_PER_TAG:,} acrrules takes in one tag (Microsoft's largest "
                    f"tag has about 13,000): {_UNTRUSTED_FIX}",
                    *_locate(text, _tag_name(name)),
                )
            total += len(prefixes)
        entries[name] = v
    if total > catalog.SERVICETAGS_MAX_PREFIXES_PER_FILE:
        raise fail(
            f"the file lists {total:,} address prefixes, more than the {catalog.SERVICETAGS_MAX_PREFIXES_PER_FILE:,} "
            f"acrrules takes from one file (Microsoft's Public file has about 96,000): {_UNTRUSTED_FIX}",
            *_top_level_key(text, "values", 1),
        )
    if duplicates:  # a duplicate key deeper down: somewhere in a tag's nested values
        nested = next(iter(duplicates.values()))
        raise fail(
            f"not a valid Service Tags file: a key {nested!r} appears twice in one object (a JSON reader "
            f"would take one of them silently): {_UNTRUSTED_FIX}",
            *_locate(text, _key(nested), 2),
        )
    return ServiceTagsFile(path, data["cloud"], change_number, entries, text, shape=shape)


def _number(n: object) -> str:
    """A number for a message: a hostile one may have thousands of digits."""
    text = str(n)
    return text if len(text) <= 20 else f"{text[:8]}...({len(text)} digits)"


def _pairs_hook(duplicates: dict[int, str]) -> Any:
    """json.loads' object_pairs_hook: a dict, recording (by id) the objects that had a key twice."""

    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        obj = dict(pairs)
        if len(obj) != len(pairs):
            seen: set[str] = set()
            for k, _ in pairs:
                if k in seen:
                    duplicates[id(obj)] = k
                    break
                seen.add(k)
        return obj

    return hook


def _check_date(path: str) -> None:
    """A file dated after today (plus a day of clock skew) is refused: it would pass every --max-age
    check for years and, in a `tags fetch --dir`, hide every real download behind it."""
    dated = date_in_name(path)
    if dated is None:
        return
    from .freshness import ENV_TODAY, today  # freshness imports this module

    now = today()
    if (dated - now).days > catalog.SERVICETAGS_FUTURE_SKEW_DAYS:
        raise InputError(
            [
                Diagnostic(
                    path,
                    None,
                    None,
                    f"the file is dated {dated.isoformat()} by its name, after today ({now.isoformat()}): Microsoft "
                    "names each file by its publication date, so the name is wrong or the clock is; rename the "
                    f"file to the date it was published (or fetch it again with `acrrules tags fetch`), or set "
                    f"the clock ({ENV_TODAY}=YYYY-MM-DD sets today)",
                )
            ]
        )


def check_cloud(tags: ServiceTagsFile, cloud: catalog.Cloud, spec_name: str) -> None:
    if tags.cloud != cloud.servicetags_cloud:
        expected = cloud.servicetags_cloud
        raise tags.error(
            f"this Service Tags file is for cloud {tags.cloud!r}, but {spec_name} describes "
            f"{cloud.name}: use a ServiceTags_{expected}_<date>.json file",
            _key("cloud"),
        )
