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
"""

from __future__ import annotations

import datetime
import functools
import ipaddress
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

MAX_BYTES = 256 * 1024 * 1024
# The name Microsoft publishes each file under; the date is the week's publication date.
FILE_NAME = re.compile(r"ServiceTags_(Public|AzureGovernment|China)_([0-9]{8})\.json")


def date_in_name(path: str) -> datetime.date | None:
    """The date in a ServiceTags_<Cloud>_<YYYYMMDD>.json name; None when the name has none (or an impossible one)."""
    m = FILE_NAME.fullmatch(os.path.basename(path))
    if not m:
        return None
    try:
        return datetime.datetime.strptime(m.group(2), "%Y%m%d").date()
    except ValueError:
        return None


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
    """(IP version, first address as an integer, prefix length) of a canonical CIDR prefix.

    inet_pton parses in C, far faster than ipaddress, and a run reads thousands of prefixes;
    anything it does not take plainly (or any error) goes to ipaddress, strict, whose
    verdict and message stand.
    """
    addr, slash, length = text.partition("/")
    version = 6 if ":" in addr else 4
    family, bits = _FAMILY[version]
    try:
        if "%" in addr or (version == 4 and any(len(o) > 1 and o[0] == "0" for o in addr.split("."))):
            raise ValueError  # zone ids, leading zeros: let ipaddress decide
        value = int.from_bytes(socket.inet_pton(family, addr), "big")
        plen = int(length) if slash else bits
        if (
            not ((length.isascii() and length.isdigit()) or not slash)
            or not 0 <= plen <= bits
            or value & ((1 << (bits - plen)) - 1)
        ):
            raise ValueError
    except (OSError, ValueError):
        net = ipaddress.ip_network(text, strict=True)  # raises ValueError with ipaddress' message
        return net.version, int(net.network_address), net.prefixlen
    return version, value, plen


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

    def error(self, message: str, needle: str | re.Pattern[str] | None = None) -> InputError:
        line, col = _locate(self.text, needle)
        return InputError([Diagnostic(self.path, line, col, message)])

    def regions(self, family: str = catalog.TAG_ACR) -> dict[str, str]:
        """ARM location -> tag region name, for every `<family>.<Region>` tag in the file."""
        out = {}
        prefix = family + "."
        for name in self.entries:
            if name.startswith(prefix):
                region = name[len(prefix) :]
                out[region.lower()] = region
        return out

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
                raise self.error(f"tag {name!r} has an invalid address prefix {p!r}: {ex}", f'"{p}"') from None
            (v4 if version == 4 else v6).append((value, plen))
        features = entry["properties"].get("networkFeatures")
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
    return re.compile(r'"name"\s*:\s*' + re.escape(json.dumps(name)))


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
    try:
        data = json.loads(text)
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
    entries: dict[str, dict[str, Any]] = {}
    for i, v in enumerate(values):
        name = v.get("name") if isinstance(v, dict) else None
        if not (isinstance(name, str) and isinstance(v.get("properties"), dict)):
            what = f"values[{i}] ({name!r})" if isinstance(name, str) else f"values[{i}]"
            at = _locate(text, _tag_name(name)) if isinstance(name, str) else (None, None)
            raise fail(f"not a valid Service Tags file: {what} needs a string 'name' and an object 'properties'", *at)
        if name in entries:
            raise fail(f"not a valid Service Tags file: tag {name!r} appears twice", *_locate(text, _tag_name(name), 2))
        entries[name] = v
    return ServiceTagsFile(path, data["cloud"], int(data["changeNumber"]), entries, text, shape=shape)


def check_cloud(tags: ServiceTagsFile, cloud: catalog.Cloud, spec_name: str) -> None:
    if tags.cloud != cloud.servicetags_cloud:
        expected = cloud.servicetags_cloud
        raise tags.error(
            f"this Service Tags file is for cloud {tags.cloud!r}, but {spec_name} describes "
            f"{cloud.name}: use a ServiceTags_{expected}_<date>.json file",
            _key("cloud"),
        )
