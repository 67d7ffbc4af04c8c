"""Microsoft's weekly Service Tags file: loading and checking.

The file is large (4 MB for Public) and only a handful of its ~3,000 tags
matter, so the structure is checked in two steps: a cheap shape check of every
entry (name + properties), then the JSON Schema in
schemas/servicetags.schema.json on the envelope and the entries we use.
"""
from __future__ import annotations

import functools
import ipaddress
import json
import os
from dataclasses import dataclass, field
from typing import Any

import jsonschema

from . import catalog
from .errors import Diagnostic, InputError
from .load import decode_utf8
from .paths import schemas_dir

MAX_BYTES = 256 * 1024 * 1024


@functools.cache
def _schema() -> dict:
    path = schemas_dir() / "servicetags.schema.json"
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


@functools.cache
def _envelope_validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(_schema())


@functools.cache
def _tag_validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator({"$defs": _schema()["$defs"], "$ref": "#/$defs/tag"})


@dataclass(frozen=True)
class ServiceTag:
    name: str
    change_number: int
    v4: tuple[ipaddress.IPv4Network, ...]
    v6: tuple[ipaddress.IPv6Network, ...]


@dataclass
class ServiceTagsFile:
    path: str                 # as the user typed it
    cloud: str                # Public | AzureGovernment | China
    change_number: int
    entries: dict[str, dict[str, Any]] = field(repr=False)   # tag name -> raw entry
    text: str = field(repr=False, default="")
    _checked: dict[str, ServiceTag] = field(default_factory=dict, repr=False)

    @property
    def file_name(self) -> str:
        """For output headers: the base name only, never a path the user did not type."""
        return os.path.basename(self.path)

    def error(self, message: str, needle: str | None = None) -> InputError:
        line = col = None
        if needle and self.text:
            off = self.text.find(needle)
            if off >= 0:
                line = self.text.count("\n", 0, off) + 1
                col = off - (self.text.rfind("\n", 0, off) + 1) + 1
        return InputError([Diagnostic(self.path, line, col, message)])

    def regions(self, family: str = catalog.TAG_ACR) -> dict[str, str]:
        """ARM location -> tag region name, for every `<family>.<Region>` tag in the file."""
        out = {}
        prefix = family + "."
        for name in self.entries:
            if name.startswith(prefix):
                region = name[len(prefix):]
                out[region.lower()] = region
        return out

    def tag(self, name: str) -> ServiceTag:
        if name in self._checked:
            return self._checked[name]
        entry = self.entries.get(name)
        if entry is None:
            close = [n for n in self.entries if n.lower() == name.lower()]
            hint = f" (it has {close[0]!r})" if close else ""
            raise self.error(f"the Service Tags file has no tag {name!r}{hint}, which the description needs: "
                             f"use a newer {self.cloud} file, or remove the location or option that needs it")
        errors = sorted(_tag_validator().iter_errors(entry), key=lambda e: list(e.absolute_path))
        if errors:
            e = errors[0]
            where = "/".join(str(p) for p in e.absolute_path)
            raise self.error(f"tag {name!r} is malformed at {where or '(entry)'}: {e.message}", f'"{name}"')
        v4, v6 = [], []
        for p in entry["properties"]["addressPrefixes"]:
            try:
                net = ipaddress.ip_network(p, strict=True)
            except ValueError as ex:
                raise self.error(f"tag {name!r} has an invalid address prefix {p!r}: {ex}", f'"{p}"') from None
            (v4 if net.version == 4 else v6).append(net)
        tag = ServiceTag(name, int(entry["properties"]["changeNumber"]), tuple(v4), tuple(v6))
        self._checked[name] = tag
        return tag


def load(path: str) -> ServiceTagsFile:
    """Read and check a Service Tags file; every problem is an InputError naming the file."""
    def fail(msg, line=None, col=None):
        return InputError([Diagnostic(path, line, col, msg)])

    try:
        if os.path.isdir(path):
            raise fail("is a directory: give the path of a ServiceTags_<Cloud>_<date>.json file")
        with open(path, "rb") as fh:
            raw = fh.read(MAX_BYTES + 1)
    except InputError:
        raise
    except FileNotFoundError:
        raise fail("no such file: download the weekly Service Tags file (ServiceTags_<Cloud>_<date>.json) "
                   "from Microsoft and give its path") from None
    except PermissionError:
        raise fail("permission denied: the file is not readable") from None
    except OSError as e:
        raise fail(f"cannot read the file: {e.strerror or e}") from None
    if len(raw) > MAX_BYTES:
        raise fail(f"larger than {MAX_BYTES // (1024 * 1024)} MiB: not a Service Tags file")
    if not raw.strip():
        raise fail("the file is empty: expected Microsoft's Service Tags JSON")
    text = decode_utf8(path, raw)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        truncated = e.pos >= len(text.rstrip())
        what = "the file is truncated (JSON ends early)" if truncated else f"not valid JSON: {e.msg}"
        raise fail(f"{what}: download the Service Tags file again", e.lineno, e.colno) from None
    except RecursionError:
        raise fail("not valid Service Tags JSON: nested too deeply") from None
    if not isinstance(data, dict) or "values" not in data or "cloud" not in data:
        raise fail("not a Service Tags file: expected a JSON object with 'changeNumber', 'cloud' and 'values' "
                   "(Microsoft's ServiceTags_<Cloud>_<date>.json)", 1, 1)
    envelope = {k: v for k, v in data.items() if k != "values"}
    envelope["values"] = []
    errors = list(_envelope_validator().iter_errors(envelope))
    if errors:
        e = errors[0]
        where = "/".join(str(p) for p in e.absolute_path) or "(top level)"
        raise fail(f"not a valid Service Tags file at {where}: {e.message}", 1, 1)
    values = data["values"]
    if not isinstance(values, list):
        raise fail("not a valid Service Tags file: 'values' must be a list", 1, 1)
    entries: dict[str, dict] = {}
    for i, v in enumerate(values):
        if not (isinstance(v, dict) and isinstance(v.get("name"), str) and isinstance(v.get("properties"), dict)):
            raise fail(f"not a valid Service Tags file: values[{i}] has no 'name' and 'properties'", 1, 1)
        if v["name"] in entries:
            raise fail(f"not a valid Service Tags file: tag {v['name']!r} appears twice", 1, 1)
        entries[v["name"]] = v
    return ServiceTagsFile(path, data["cloud"], int(data["changeNumber"]), entries, text)


def check_cloud(tags: ServiceTagsFile, cloud: catalog.Cloud, spec_name: str) -> None:
    if tags.cloud != cloud.servicetags_cloud:
        expected = cloud.servicetags_cloud
        raise InputError([Diagnostic(tags.path, None, None,
                                     f"this Service Tags file is for cloud {tags.cloud!r}, but {spec_name} "
                                     f"describes {cloud.name}: use a ServiceTags_{expected}_<date>.json file")])
