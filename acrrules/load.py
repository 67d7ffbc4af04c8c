"""Stage 1: load a YAML description into plain data, keeping every position.

PyYAML's loaders silently accept duplicate keys, expand aliases without bound
and recurse once per nesting level.  We build the data from the parser's
*event* stream instead: it is iterative, so nesting depth, alias expansion and
duplicate keys are all checked here, cheaply, before anything else runs.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import os
import re
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple, NoReturn

import yaml

from .errors import Diagnostic, InputError

# libyaml is much faster on large descriptions; same events either way
_Loader: type[yaml.SafeLoader] | type[yaml.CSafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

MAX_DEPTH = 64  # the format needs 5 levels; anything deeper is an accident or an attack
# Values (scalars, mappings and lists) in one description.  Aliases repeat values without
# writing them out: at most MAX_ALIAS_VALUES come from expanding aliases (an alias bomb stops
# here, after a few MB of work), and at most MAX_NODES in all (a file that writes out its values
# needs 2 bytes per value at the least, so MAX_BYTES alone would allow 32 million).
# The largest description the schema allows (100,000 registries: the maxItems of `registries`
# in schemas/registry.schema.json) needs about 10 values per registry: 1,000,000.
MAX_NODES = 4_000_000
MAX_ALIAS_VALUES = 1_000_000
MAX_BYTES = 64 * 1024 * 1024

KeyPath = tuple[Any, ...]  # a key path such as ("registries", 0, "sku")
Path = KeyPath


class Mark(NamedTuple):
    line: int  # 1-based
    column: int  # 1-based


@dataclass
class SourceDocument:
    """A loaded file: its data and where each value (and each key) came from."""

    name: str  # the path as the user typed it
    data: Any
    # Positions, per collection (by its key path) in the order of its items: a list's values, a
    # mapping's keys and values alternating (key 0, value 0, key 1, ...), each packed in one int
    # (line << 32 | column, 0-based).  A large description has a million positions: a key path and a
    # Mark for each took 300 MB for 100,000 registries.
    marks: dict[KeyPath, array[int]] = field(default_factory=dict)
    root_mark: int | None = None
    # Problems that did not stop reading (duplicate keys: the first one is kept, merge keys);
    # validate.validate() reports them together with everything else wrong in the file.
    problems: list[Diagnostic] = field(default_factory=list)
    # Whether every mapping key is text: False when the loader met another key, None when unknown
    # (data not from load_yaml); validate only looks for such keys when this is not True.
    text_keys_only: bool | None = None
    _key_index: dict[int, dict[Any, int]] = field(default_factory=dict, repr=False, compare=False)

    def mark(self, path: Path, *, key: bool = False) -> Mark | None:
        """Position of `path` (its key when `key`), else of its nearest parent."""
        path = tuple(path)
        if key:
            found = self._find(path, key=True)
            if found is not None:
                return _unpack(found)
        while True:
            found = self._find(path, key=False)
            if found is not None:
                return _unpack(found)
            if not path:
                return None
            path = path[:-1]

    def written_at(self, path: Path) -> Mark | None:
        """Position of the value at `path` when the file writes it (no parent stands in)."""
        found = self._find(tuple(path), key=False)
        return None if found is None else _unpack(found)

    def _find(self, path: KeyPath, *, key: bool) -> int | None:
        if not path:
            return None if key else self.root_mark
        parent, last = path[:-1], path[-1]
        marks = self.marks.get(parent)
        if marks is None:
            return None
        node = self.data
        for p in parent:
            if (type(node) is dict and p in node) or (type(node) is list and type(p) is int and 0 <= p < len(node)):
                node = node[p]
            else:
                return None
        if type(node) is list:
            ok = not key and type(last) is int and 0 <= last < len(marks)
            return marks[last] if ok else None
        if type(node) is dict and last in node:
            index = self._key_index.get(id(node))
            if index is None:  # once per mapping: a file with many errors in one large mapping stays linear
                index = self._key_index[id(node)] = {k: i for i, k in enumerate(node)}
            i = 2 * index[last] + (0 if key else 1)
            return marks[i] if i < len(marks) else None
        return None

    def diagnostic(self, path: Path, message: str, *, key: bool = False) -> Diagnostic:
        m = self.mark(path, key=key)
        return Diagnostic(self.name, m.line if m else None, m.column if m else None, message)


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """The cyclic garbage collector off for a block that builds a great many objects and no
    cycles (a description's data, its positions, its plan): without it a collection walks them
    all again and again, a third of loading 100,000 registries.  Reference counting still
    frees everything; the collector's state is restored afterwards."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def format_path(path: Path) -> str:
    """`registries[0].sku` style, as users write it."""
    out = ""
    for p in path:
        if isinstance(p, int):
            out += f"[{p}]"
        elif not str(p).isprintable():  # a key with a line break or control character: one line, visibly
            out += f"[{str(p)!r}]"
        else:
            out += ("." if out else "") + str(p)
    return out or "(top level)"


def _mark(m: Any) -> int:
    """A parser mark (0-based line and column), packed (see SourceDocument.marks)."""
    packed: int = m.line << 32 | m.column
    return packed


def _unpack(packed: int) -> Mark:
    return Mark((packed >> 32) + 1, (packed & 0xFFFFFFFF) + 1)


def read_bytes(name: str, *, max_bytes: int, directory: str, missing: str, too_large: str) -> bytes:
    """A whole input file (descriptions and Service Tags files alike), every OS problem a diagnostic;
    the messages for a directory, a missing file and a file over `max_bytes` are the caller's."""

    def fail(message: str) -> InputError:
        return InputError([Diagnostic(name, None, None, message)])

    try:
        if os.path.isdir(name):
            raise fail(directory)
        with open(name, "rb") as fh:
            raw = fh.read(max_bytes + 1)
    except InputError:
        raise
    except FileNotFoundError:
        raise fail(missing) from None
    except PermissionError:
        raise fail("permission denied: the file is not readable") from None
    except OSError as e:
        raise fail(f"cannot read the file: {e.strerror or e}") from None
    if len(raw) > max_bytes:
        raise fail(too_large)
    return raw


def read_text(name: str) -> str:
    """Read a description as UTF-8, turning every OS or encoding problem into a diagnostic."""
    raw = read_bytes(
        name,
        max_bytes=MAX_BYTES,
        directory="is a directory, not a file: give the path of a .yaml description",
        missing="no such file: check the path",
        too_large=f"file is larger than {MAX_BYTES // (1024 * 1024)} MiB",
    )
    return decode_utf8(name, raw)


def decode_utf8(name: str, raw: bytes) -> str:
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    for bom, encoding in _OTHER_BOMS:
        if raw.startswith(bom):
            raise InputError(
                [Diagnostic(name, 1, 1, f"the file is {encoding} encoded, not valid UTF-8: save it as UTF-8")]
            )
    if b"\x00" in raw:  # before decoding: a NUL is valid UTF-8, but no text file has one
        line, col = _byte_position(raw, raw.index(b"\x00"))
        raise InputError([Diagnostic(name, line, col, "NUL byte: this is a binary file, not a text file")])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line, col = _byte_position(raw, e.start)
        raise InputError(
            [Diagnostic(name, line, col, f"byte 0x{raw[e.start]:02x} is not valid UTF-8: save the file as UTF-8")]
        ) from None
    return text


def _byte_position(raw: bytes, offset: int) -> tuple[int, int]:
    """1-based line and column (in characters, as editors count) of a byte offset."""
    before = raw[:offset]
    line_start = before.rfind(b"\n") + 1
    return before.count(b"\n") + 1, len(before[line_start:].decode("utf-8", "replace")) + 1


# UTF-32 first: its little-endian BOM starts with UTF-16's.
_OTHER_BOMS = (
    (b"\xff\xfe\x00\x00", "UTF-32"),
    (b"\x00\x00\xfe\xff", "UTF-32"),
    (b"\xff\xfe", "UTF-16"),
    (b"\xfe\xff", "UTF-16"),
)


class _Builder:
    """Builds Python data from YAML events, checking as it goes."""

    def __init__(self, name: str):
        self.name = name
        self.doc = SourceDocument(name, None, text_keys_only=True)
        self.errors: list[Diagnostic] = []
        self.anchors: dict[str, tuple[Any, int]] = {}  # anchor -> (value, expanded node count)
        self.nodes = 0
        self.alias_values = 0  # of self.nodes, how many come from expanding aliases
        self.ambiguous = False  # a scalar YAML 1.1 and YAML 1.2 tools read differently was found
        self._constructor = Yaml12Loader("")  # resolve + construct plain scalars only
        self._resolved: dict[tuple[str, Any], str] = {}  # (text, implicit) -> tag: keys and words recur
        # Plain scalars resolve() found to be text or a boolean, with their value: the fast path
        # of build() takes them from then on without resolving them again (`name`, `true`).
        self.plain_values: dict[str, str | bool] = {}

    def value_mark(self, stack: list[list[Any]], packed: int) -> None:
        """Record where the value the parser is at starts (a key's position: attach())."""
        if not stack:
            self.doc.root_mark = packed
            return
        top = stack[-1]
        if type(top[0]) is list or (top[4] is not _NO_KEY and top[4] is not _DUP_KEY):
            top[6].append(packed)

    def error(self, mark: Any, message: str) -> None:
        m = _unpack(_mark(mark))
        self.errors.append(Diagnostic(self.name, m.line, m.column, message))

    def fatal(self, mark: Any, message: str) -> NoReturn:
        self.error(mark, message)
        raise InputError(self.errors)

    def scalar(self, ev: Any) -> Any:
        tag = ev.tag
        if tag is None or tag == "!":
            resolved = self._resolved.get((ev.value, ev.implicit))
            if resolved is None:
                resolved = self._constructor.resolve(yaml.ScalarNode, ev.value, ev.implicit)  # type: ignore[no-untyped-call]
                if len(self._resolved) < 10_000:
                    self._resolved[ev.value, ev.implicit] = resolved
                    if ev.implicit[0] and resolved == _STR_TAG:
                        self.plain_values[ev.value] = ev.value
                    elif ev.implicit[0] and resolved == _BOOL_TAG and ev.value in _BOOLS:
                        self.plain_values[ev.value] = _BOOLS[ev.value]
            tag = resolved
            if tag == YAML11_TAG:
                self.ambiguous = True
                self.error(ev.start_mark, yaml11_problem(ev.value))
                return ev.value  # not used: the file is refused once it has been read (build())
        elif tag in _EXPLICIT_CORE and not _EXPLICIT_CORE[tag].fullmatch(ev.value):
            self.ambiguous = True
            self.error(ev.start_mark, yaml11_problem(ev.value, tag))
            return ev.value
        if tag == _MERGE_TAG:
            return "<<"  # as a key it is reported by attach(); as a value the schema rejects it
        if tag in (_STR_TAG, _VALUE_TAG):
            # A string is its text (what the constructor would return); YAML 1.1 resolves a plain
            # "=" to the "value" type: a string here too.
            return ev.value
        if tag not in _SCALAR_TAGS:
            self.fatal(
                ev.start_mark,
                f"the YAML tag {_short_tag(tag)} is not supported: "
                "a description holds plain values only; remove the tag",
            )
        if tag == _BOOL_TAG and ev.value in _BOOLS:
            return _BOOLS[ev.value]
        if tag == _NULL_TAG and ev.tag is None:
            return None
        node = yaml.ScalarNode(tag, ev.value, ev.start_mark, ev.end_mark, ev.style)
        try:
            return self._constructor.construct_object(node, deep=True)
        except yaml.YAMLError as e:
            problem = getattr(e, "problem", None) or str(e)
            self.fatal(ev.start_mark, f"cannot read value {ev.value[:40]!r} ({_short_tag(tag)}): {problem}")
        except (ValueError, OverflowError):  # e.g. an integer of more than 4,300 digits, or a date like 2025-02-30
            self.fatal(
                ev.start_mark,
                f"cannot read value {ev.value[:40]!r}"
                f"{'...' if len(ev.value) > 40 else ''} as {_short_tag(tag)[2:]}: "
                "write a valid value, or quote it to make it a string",
            )

    def count(self, n: int, mark: Any, *, alias: bool = False) -> None:
        self.nodes += n
        if alias:
            self.alias_values += n
            if self.alias_values > MAX_ALIAS_VALUES:
                self.fatal(
                    mark,
                    f"more than {MAX_ALIAS_VALUES:,} values after expanding aliases "
                    "(an alias bomb?): write the values out or use fewer aliases",
                )
        if self.nodes > MAX_NODES:
            from_aliases = f", {self.alias_values:,} of them from aliases" if self.alias_values else ""
            self.fatal(
                mark,
                f"the file is too large: more than {MAX_NODES:,} values{from_aliases}; "
                "split the registries over several descriptions",
            )

    def build(self, get_event: Callable[[], Any]) -> SourceDocument:
        """The document from a parser's events: `get_event()` gives the next one, None at the end."""
        # Each stack entry: [container, path, self.nodes before it (its expanded size is self.nodes
        # at its end less this), anchor, pending key, its start mark, its positions (SourceDocument.marks),
        # its keys' positions once a duplicate key needed them (_key_position)]
        stack: list[list[Any]] = []
        documents = 0

        def attach(value: Any, mark: Any) -> None:
            if not stack:
                self.doc.data = value
                return
            top = stack[-1]
            container = top[0]
            if isinstance(container, list):
                container.append(value)
                return
            # mapping: either this is a key or a value
            if top[4] is _NO_KEY:
                if isinstance(value, (dict, list)):
                    self.fatal(mark, "a mapping or list cannot be used as a key: keys must be plain names")
                key = value
                if key == "<<":
                    self.error(mark, "YAML merge keys (<<) are not supported: write the keys out")
                    top[4] = _DUP_KEY  # dropped: its value would only be reported again as an unknown key
                    return
                try:
                    hash(key)
                except TypeError:
                    self.fatal(mark, "this value cannot be used as a key")
                if type(key) is not str:
                    self.doc.text_keys_only = False
                if key in container:
                    first = _unpack(top[6][2 * _key_position(top, key)])
                    self.error(
                        mark,
                        f"duplicate key {key!r} in {format_path(top[1])} (first defined at line {first.line}, "
                        f"column {first.column}): keep one and delete the other",
                    )
                    top[4] = _DUP_KEY
                else:
                    top[4] = key
                    top[6].append(_mark(mark))
                return
            if top[4] is not _DUP_KEY:
                container[top[4]] = value
            top[4] = _NO_KEY

        def child_path() -> KeyPath | None:
            if not stack:
                return ()
            top = stack[-1]
            parent: KeyPath = top[1]
            if isinstance(top[0], list):
                return parent + (len(top[0]),)
            if top[4] is _NO_KEY:
                return None  # a key, not a value
            return parent + (top[4],)

        # The innermost open collection, unpacked for the fast paths (set again whenever the stack changes)
        top: list[Any] | None = None
        into: Any = None  # top[0]
        is_list = False
        add_mark: Any = None  # top[6].append
        nodes = 0  # self.nodes, kept in a local by the fast paths and handed over around the general one
        scalar_event, plain_values, resolved_first = yaml.ScalarEvent, self.plain_values, _RESOLVED_FIRST
        mapping_start, sequence_start = yaml.MappingStartEvent, yaml.SequenceStartEvent
        mapping_end, sequence_end = yaml.MappingEndEvent, yaml.SequenceEndEvent
        no_key, dup_key, max_nodes, not_plain = _NO_KEY, _DUP_KEY, MAX_NODES, _NO_KEY
        all_marks = self.doc.marks
        while (ev := get_event()) is not None:
            # Fast paths, most events of a large file.  Everything else, and every case with
            # something to report, takes the general path below.
            kind = type(ev)
            if kind is scalar_event:
                # A plain-text scalar or a boolean in a collection, written once (no anchor), that
                # is a list item, a mapping's value or a new key.
                if top is not None and ev.tag is None and not ev.anchor and nodes < max_nodes:
                    text = ev.value
                    if not ev.implicit[0] or text[:1] not in resolved_first:
                        value = text
                    else:
                        value = plain_values.get(text, not_plain)
                    if value is not not_plain:
                        m: Any = ev.start_mark
                        if is_list:
                            nodes += 1
                            add_mark(m.line << 32 | m.column)
                            into.append(value)
                            continue
                        key = top[4]
                        if key is no_key:
                            if type(value) is str and value != "<<" and value not in into:
                                nodes += 1
                                top[4] = value
                                add_mark(m.line << 32 | m.column)
                                continue
                        elif key is not dup_key:
                            nodes += 1
                            add_mark(m.line << 32 | m.column)
                            into[key] = value
                            top[4] = no_key
                            continue
            elif kind is mapping_start or kind is sequence_start:
                # An untagged collection that is a list item or a mapping's value.
                if top is not None and ev.tag is None and nodes < max_nodes and len(stack) < MAX_DEPTH:
                    key = None if is_list else top[4]
                    if key is not no_key and key is not dup_key:
                        path = top[1] + ((len(into),) if is_list else (key,))
                        nodes += 1
                        m = ev.start_mark
                        add_mark(m.line << 32 | m.column)
                        into = {} if kind is mapping_start else []
                        marks: array[int] = array("Q")
                        all_marks[path] = marks
                        top = [into, path, nodes - 1, ev.anchor, no_key, m, marks, None]
                        stack.append(top)
                        is_list = kind is sequence_start
                        add_mark = marks.append
                        continue
            elif (kind is mapping_end or kind is sequence_end) and top is not None and not top[3] and len(stack) > 1:
                # The end of a collection without an anchor that is a list item or a mapping's value.
                parent = stack[-2]
                key = parent[4]
                if type(parent[0]) is list or (key is not no_key and key is not dup_key):
                    stack.pop()
                    if type(parent[0]) is list:
                        parent[0].append(into)
                    else:
                        parent[0][key] = into
                        parent[4] = no_key
                    top = parent
                    into = parent[0]
                    is_list = type(into) is list
                    add_mark = parent[6].append
                    continue
            self.nodes = nodes
            if kind is yaml.MappingEndEvent or kind is yaml.SequenceEndEvent:
                done: list[Any] = stack.pop()
                if done[3]:  # its anchor
                    self.anchors[done[3]] = (done[0], self.nodes - done[2])
                attach(done[0], done[5])
            elif kind is yaml.MappingStartEvent or kind is yaml.SequenceStartEvent:
                self.count(1, ev.start_mark)
                if ev.tag not in _COLLECTION_TAGS:
                    self.fatal(
                        ev.start_mark,
                        f"the YAML tag {_short_tag(ev.tag)} is not supported: "
                        "a description holds plain mappings and lists only; remove the tag",
                    )
                if len(stack) >= MAX_DEPTH:
                    self.fatal(
                        ev.start_mark,
                        f"nested more than {MAX_DEPTH} levels deep: a description needs only a few levels",
                    )
                path = child_path()
                if path is None:
                    self.fatal(ev.start_mark, "a mapping or list cannot be used as a key: keys must be plain names")
                self.value_mark(stack, _mark(ev.start_mark))
                container: Any = {} if kind is yaml.MappingStartEvent else []
                self.doc.marks[path] = array("Q")
                marks = self.doc.marks[path]
                stack.append([container, path, self.nodes - 1, ev.anchor, _NO_KEY, ev.start_mark, marks, None])
            elif kind is scalar_event:
                self.count(1, ev.start_mark)
                value = self.scalar(ev)
                self.value_mark(stack, _mark(ev.start_mark))
                if ev.anchor:
                    self.anchors[ev.anchor] = (value, 1)
                attach(value, ev.start_mark)
            elif kind is yaml.AliasEvent:
                if ev.anchor not in self.anchors:
                    self.fatal(ev.start_mark, f"alias *{ev.anchor} refers to no anchor &{ev.anchor} defined before it")
                value, size = self.anchors[ev.anchor]
                self.count(size, ev.start_mark, alias=True)
                self.value_mark(stack, _mark(ev.start_mark))
                attach(value, ev.start_mark)
            elif kind is yaml.DocumentStartEvent:
                documents += 1
                if documents > 1:
                    self.fatal(
                        ev.start_mark,
                        "a second YAML document ('---'): a description is one document; "
                        "put each description in its own file",
                    )
            # (stream start and end, document end: nothing to build)
            nodes = self.nodes
            top = stack[-1] if stack else None
            if top is not None:
                into = top[0]
                is_list = type(into) is list
                add_mark = top[6].append
        if self.ambiguous:
            # The file means different things to different YAML tools: validating one reading
            # would only add messages about values the user has to rewrite anyway.
            raise InputError(self.errors)
        self.doc.problems = list(self.errors)
        return self.doc


def _key_position(entry: list[Any], key: Any) -> int:
    """The position of `key` among the keys of the mapping being built in stack `entry`: an index
    kept in the entry from the first duplicate on and extended as keys are added, so that a file
    that repeats thousands of keys is reported in linear time."""
    container, index = entry[0], entry[7]
    if index is None:
        index = entry[7] = {}
    if len(index) < len(container):
        for i, k in enumerate(itertools.islice(container, len(index), None), len(index)):
            index[k] = i
    position: int = index[key]
    return position


_NO_KEY = object()
_DUP_KEY = object()
_CORE = "tag:yaml.org,2002:"
_MERGE_TAG = _CORE + "merge"
_VALUE_TAG = _CORE + "value"
_STR_TAG = _CORE + "str"
_BOOL_TAG = _CORE + "bool"
_NULL_TAG = _CORE + "null"
_BOOLS = {v: v.lower() == "true" for v in ("true", "True", "TRUE", "false", "False", "FALSE")}
# Dates (timestamp) load too, so that a date where a name belongs gets a type error, not a tag error.
_SCALAR_TAGS = {_CORE + t for t in ("str", "int", "float", "bool", "null", "timestamp")}
_COLLECTION_TAGS = {None, "!", _CORE + "map", _CORE + "seq"}
# Refused: what the YAML reader rejects (yaml.reader.Reader.NON_PRINTABLE), and what it takes but
# a reviewer cannot see. U+0085, U+2028 and U+2029 end a line for
# PyYAML (YAML 1.1) and for nothing else (YAML 1.2 tools, editors, `wc -l`, diffs): text after
# one in a comment is configuration to acrrules and a comment to the reviewer.  Zero-width
# characters and bidirectional controls (Trojan Source, CVE-2021-42574) make text display as
# something else than it is; U+FEFF after the start of the file is a zero-width space too.
HIDDEN = "\x85\u2028\u2029\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\u061c\ufeff"
# One positive class for both (the complement of the reader's printable set, written out, compiles
# in a fraction of the time of a negated class with astral ranges; tests/test_untrusted_descriptions.py
# checks that they agree on every code point).
_REFUSED = re.compile(f"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff{HIDDEN}]")
_LINE_BREAKS = "\x85\u2028\u2029"


# ---- scalars: YAML 1.2 core schema, and nothing two YAML versions read differently ----------
#
# PyYAML resolves plain scalars by YAML 1.1 rules, even under `%YAML 1.2`: `0310` is 200
# (octal), `3:20` is 200 (base 60), `2_0_0` and `0xC8` are 200, `yes`/`on` are true.  Editors
# and yaml-language-server follow YAML 1.2, where `yes` is text and `0310` is 310, and a
# reviewer reads what is written.  A description therefore takes, unquoted, only what both
# versions read alike: decimal integers, decimals such as 1.5, true/false and null.  Any other
# plain scalar that either version reads as a number or a boolean is refused, located, with
# both readings; quoted, it is a string for everyone.  (Dates are text here, as in YAML 1.2:
# no field of a description is a date.)

YAML11_TAG = "tag:acrrules.dev,2025:yaml-1.1-only"


class Yaml12Loader(yaml.SafeLoader):
    """A SafeLoader whose implicit resolvers are the YAML 1.2 core schema's, restricted to the
    notations YAML 1.1 reads alike; every other number or boolean notation of either version
    resolves to YAML11_TAG, which no constructor builds (load() reports it)."""

    yaml_implicit_resolvers = {}  # noqa: RUF012 - PyYAML keeps resolvers in a class attribute


def _refuse_yaml11(loader: yaml.SafeLoader, node: yaml.Node) -> NoReturn:
    raise yaml.constructor.ConstructorError(None, None, yaml11_problem(str(node.value)), node.start_mark)


_IMPLICIT = (
    (_CORE + "null", r"~|null|Null|NULL|", ["~", "n", "N", ""]),
    (_CORE + "bool", r"true|True|TRUE|false|False|FALSE", list("tTfF")),
    (_CORE + "int", r"[-+]?(?:0|[1-9][0-9]*)", list("-+0123456789")),
    (_CORE + "float", r"[-+]?(?:0|[1-9][0-9]*)\.[0-9]+", list("-+0123456789")),
    (_CORE + "merge", r"<<", ["<"]),  # not YAML 1.2; kept so that a merge key gets its own message
    (
        YAML11_TAG,
        r"""yes|Yes|YES|no|No|NO|on|On|ON|off|Off|OFF|y|Y|n|N   # YAML 1.1 booleans
        |[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])*(?:\.[0-9_]*)?(?:[eE][-+]?[0-9]+)?  # 0310, 2_0_0, 3:20, 1e3, 1.
        |[-+]?0[bBoOxX][0-9a-fA-F_]+                          # 0b1010, 0o310, 0xC8
        |[-+]?\.[0-9][0-9_]*(?:[eE][-+]?[0-9]+)?               # .5
        |[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)""",
        list("-+0123456789.yYnNoO"),
    ),
)
for _tag, _regexp, _first in _IMPLICIT:
    Yaml12Loader.add_implicit_resolver(_tag, re.compile(f"^(?:{_regexp})$", re.X), _first)
Yaml12Loader.add_constructor(YAML11_TAG, _refuse_yaml11)
# A plain scalar starting with none of these is a string for Yaml12Loader, without resolving it.
_RESOLVED_FIRST = frozenset(Yaml12Loader.yaml_implicit_resolvers)

# An explicit !!int, !!float or !!bool is read by YAML 1.1 rules as well: decimal notation only.
_EXPLICIT_CORE = {
    _CORE + "int": re.compile(r"[-+]?(?:0|[1-9][0-9]*)"),
    _CORE + "float": re.compile(r"[-+]?(?:0|[1-9][0-9]*)\.[0-9]+"),
    _CORE + "bool": re.compile(r"true|True|TRUE|false|False|FALSE"),
}

_YAML11_BOOLS = {
    **dict.fromkeys(("yes", "Yes", "YES", "on", "On", "ON", "y", "Y"), True),
    **dict.fromkeys(("no", "No", "NO", "off", "Off", "OFF", "n", "N"), False),
}
_YAML12_INT = re.compile(r"[-+]?[0-9]+")
_YAML12_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")


def yaml12_reading(value: str) -> Any:
    """What a YAML 1.2 core-schema tool makes of a plain scalar."""
    if value in ("true", "True", "TRUE"):
        return True
    if value in ("false", "False", "FALSE"):
        return False
    if value in ("", "~", "null", "Null", "NULL"):
        return None
    try:
        if _YAML12_INT.fullmatch(value):
            return int(value, 10)
        if re.fullmatch(r"0o[0-7]+", value):
            return int(value[2:], 8)
        if re.fullmatch(r"0x[0-9a-fA-F]+", value):
            return int(value[2:], 16)
        if _YAML12_FLOAT.fullmatch(value) or re.fullmatch(r"[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)", value):
            return float(value.replace(".inf", "inf").replace(".Inf", "inf").replace(".INF", "inf"))
    except ValueError:  # more digits than Python converts
        pass
    return value


def yaml11_reading(value: str, tag: str | None = None) -> Any:
    """What a YAML 1.1 tool makes of a plain scalar (PyYAML's reading; `y` and `n` are booleans
    in YAML 1.1's type repository, though PyYAML leaves them text)."""
    if tag is None and value in _YAML11_BOOLS:
        return _YAML11_BOOLS[value]
    loader = yaml.SafeLoader("")
    if tag is None:
        tag = loader.resolve(yaml.ScalarNode, value, (True, False))  # type: ignore[no-untyped-call]
    try:
        return loader.construct_object(yaml.ScalarNode(tag, value), deep=True)
    except (yaml.YAMLError, ValueError, OverflowError):
        return value


def _reading(value: Any) -> str:
    if value is True or value is False:
        return str(value).lower()
    if value is None:
        return "null"
    if isinstance(value, str):
        return f"the string {value[:40]!r}"
    if isinstance(value, float) and value.is_integer():
        return f"the number {value!r}"
    return str(value)


def yaml11_problem(value: str, tag: str | None = None) -> str:
    """The message for a scalar YAML 1.1 and 1.2 tools read differently (or that is written in
    another notation than decimal): both readings, and how to write what is meant."""
    shown = value if len(value) <= 40 else value[:37] + "..."
    v11 = yaml11_reading(value, tag)
    v12 = v11 if tag is not None else yaml12_reading(value)
    readings = (v12, v11)
    if type(v11) is type(v12) and repr(v11) == repr(v12):  # the same value (NaN too)
        meaning = f"{shown} is {_reading(v12)}"
    else:
        meaning = f"{shown} is {_reading(v12)} to YAML 1.2 tools (editors, yaml-language-server) but {_reading(v11)} to YAML 1.1 tools"
    if any(type(r) is bool for r in readings):
        fix = "write true or false"
    else:
        ints = [r for r in readings if type(r) is int] + [
            int(r) for r in readings if type(r) is float and r.is_integer()
        ]
        fix = f"write {ints[0]}" if ints else "write a decimal number such as 1.5"
    if tag is not None:
        return f"{meaning}: write numbers in decimal and booleans as true or false; {fix} without the tag"
    return f"{meaning}: unquoted, acrrules takes decimal numbers and true/false only; {fix}, or quote it ('{shown}') to mean the text"


def _short_tag(tag: str | None) -> str:
    if tag is None:
        return "(none)"
    return "!!" + tag[len(_CORE) :] if tag.startswith(_CORE) else tag


def text_position(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column of a character offset."""
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def load_yaml(name: str, text: str | None = None) -> SourceDocument:
    """Load one description file (or `text` under that name).

    Raises InputError when the file cannot be read as one YAML document; problems that
    leave the data readable are in the result's `problems`, for validate() to report.
    """
    if text is None:
        text = read_text(name)
    bad = _REFUSED.search(text, 1 if text.startswith("\ufeff") else 0)
    if bad:  # the YAML reader would say so with a byte offset only, or not at all
        line, col = text_position(text, bad.start())
        raise InputError([Diagnostic(name, line, col, refused_character(bad.group()))])
    builder = _Builder(name)
    try:
        loader = _Loader(text)
        try:
            with paused_gc():
                return builder.build(loader.get_event)
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        problem = e.problem or "invalid YAML"
        if ("\t" in text and "tab" in problem.lower()) or _tab_at(text, mark):
            problem += " (YAML does not allow tabs for indentation: use spaces)"
        elif "maximum nesting depth" in problem:  # libyaml's own limit, met before ours in flow collections
            problem = "nested too deeply: a description needs only a few levels"
        elif problem.startswith("mapping values are not allowed"):
            problem += " (check the indentation of this line and the lines above it)"
        hint = ""
        if e.context and e.context not in problem:
            started = e.context_mark
            if started is not None and mark is not None and started.line != mark.line:
                hint = f" ({e.context} that starts at line {started.line + 1}, column {started.column + 1})"
            else:
                hint = f" ({e.context})"
        m = _unpack(_mark(mark)) if mark else None
        builder.errors.append(
            Diagnostic(name, m.line if m else None, m.column if m else None, f"YAML syntax error: {problem}{hint}")
        )
        raise InputError(builder.errors) from None
    except yaml.YAMLError as e:  # pragma: no cover - reader errors are caught above; defensive
        detail = " ".join(str(e).split())
        raise InputError(builder.errors + [Diagnostic(name, None, None, f"YAML error: {detail}")]) from None


def refused_character(c: str) -> str:
    """Why a character found in a description is refused, and how to fix it."""
    code = f"U+{ord(c):04X}"
    if not re.fullmatch(f"[{HIDDEN}]", c):
        return (
            f"control character {code} is not allowed in YAML: delete it "
            "(or write it as an escape in a double-quoted string)"
        )
    import unicodedata

    named = f"{code} ({unicodedata.name(c, 'NEXT LINE' if c == chr(0x85) else code)})"
    escape = f'"\\u{ord(c):04x}"'
    if c in _LINE_BREAKS:
        why = (
            "PyYAML ends the line here and YAML 1.2 tools, editors and diffs do not, "
            "so text after it would be read by acrrules but not seen by a reviewer"
        )
    else:
        why = "an invisible formatting character can make the text display as something else than it is"
    return (
        f"{named} is not allowed in a description: {why}; delete it (or write it as {escape} in a double-quoted string)"
    )


def _tab_at(text: str, mark: Any) -> bool:
    if mark is None:
        return False
    lines = text.split("\n")
    if mark.line < len(lines):
        return "\t" in lines[mark.line][: mark.column + 1]
    return False
