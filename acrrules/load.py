"""Stage 1: load a YAML description into plain data, keeping every position.

PyYAML's loaders silently accept duplicate keys, expand aliases without bound
and recurse once per nesting level.  We build the data from the parser's
*event* stream instead: it is iterative, so nesting depth, alias expansion and
duplicate keys are all checked here, cheaply, before anything else runs.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple, NoReturn

import yaml

from .errors import Diagnostic, InputError

# libyaml is much faster on large descriptions; same events either way
_Loader: type[yaml.SafeLoader] | type[yaml.CSafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

MAX_DEPTH = 64  # the format needs 5 levels; anything deeper is an accident or an attack
MAX_NODES = 1_000_000  # after alias expansion: ~5,000 registries need ~100,000
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
    value_marks: dict[KeyPath, Mark] = field(default_factory=dict)
    key_marks: dict[KeyPath, Mark] = field(default_factory=dict)
    # Problems that did not stop reading (duplicate keys: the first one is kept, merge keys);
    # validate.validate() reports them together with everything else wrong in the file.
    problems: list[Diagnostic] = field(default_factory=list)

    def mark(self, path: Path, *, key: bool = False) -> Mark | None:
        """Position of `path` (its key when `key`), else of its nearest parent."""
        path = tuple(path)
        if key and path in self.key_marks:
            return self.key_marks[path]
        while True:
            if path in self.value_marks:
                return self.value_marks[path]
            if not path:
                return None
            path = path[:-1]

    def diagnostic(self, path: Path, message: str, *, key: bool = False) -> Diagnostic:
        m = self.mark(path, key=key)
        return Diagnostic(self.name, m.line if m else None, m.column if m else None, message)


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


def _mark(m: Any) -> Mark:
    return Mark(m.line + 1, m.column + 1)


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
        self.doc = SourceDocument(name, None)
        self.errors: list[Diagnostic] = []
        self.anchors: dict[str, tuple[Any, int]] = {}  # anchor -> (value, expanded node count)
        self.nodes = 0
        self._constructor = yaml.SafeLoader("")  # resolve + construct plain scalars only

    def error(self, mark: Any, message: str) -> None:
        m = _mark(mark)
        self.errors.append(Diagnostic(self.name, m.line, m.column, message))

    def fatal(self, mark: Any, message: str) -> NoReturn:
        self.error(mark, message)
        raise InputError(self.errors)

    def scalar(self, ev: Any) -> Any:
        tag = ev.tag
        if tag is None or tag == "!":
            tag = self._constructor.resolve(yaml.ScalarNode, ev.value, ev.implicit)  # type: ignore[no-untyped-call]
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

    def count(self, n: int, mark: Any) -> None:
        self.nodes += n
        if self.nodes > MAX_NODES:
            self.fatal(
                mark,
                f"more than {MAX_NODES:,} values after expanding aliases "
                "(an alias bomb?): write the values out or use fewer aliases",
            )

    def build(self, events: Iterable[Any]) -> SourceDocument:
        # Each stack entry: [container, path, expanded size, anchor, pending key, key mark]
        stack: list[list[Any]] = []
        documents = 0
        root_set = False

        def attach(value: Any, size: int, mark: Any, path_for_child: KeyPath | None) -> None:
            nonlocal root_set
            if not stack:
                self.doc.data = value
                root_set = True
                return
            top = stack[-1]
            container = top[0]
            top[2] += size
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
                if key in container:
                    first = self.doc.key_marks.get(top[1] + (key,))
                    where = f" (first defined at line {first.line}, column {first.column})" if first else ""
                    self.error(
                        mark, f"duplicate key {key!r} in {format_path(top[1])}{where}: keep one and delete the other"
                    )
                    top[4] = _DUP_KEY
                else:
                    top[4] = key
                    self.doc.key_marks[top[1] + (key,)] = _mark(mark)
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

        for ev in events:
            if isinstance(ev, yaml.DocumentStartEvent):
                documents += 1
                if documents > 1:
                    self.fatal(
                        ev.start_mark,
                        "a second YAML document ('---'): a description is one document; "
                        "put each description in its own file",
                    )
                continue
            if isinstance(ev, (yaml.StreamStartEvent, yaml.StreamEndEvent, yaml.DocumentEndEvent)):
                continue
            if isinstance(ev, yaml.AliasEvent):
                if ev.anchor not in self.anchors:
                    self.fatal(ev.start_mark, f"alias *{ev.anchor} refers to no anchor &{ev.anchor} defined before it")
                value, size = self.anchors[ev.anchor]
                self.count(size, ev.start_mark)
                path = child_path()
                if path is not None:
                    self.doc.value_marks[path] = _mark(ev.start_mark)
                attach(value, size, ev.start_mark, path)
                continue
            if isinstance(ev, yaml.ScalarEvent):
                self.count(1, ev.start_mark)
                value = self.scalar(ev)
                path = child_path()
                if path is not None:
                    self.doc.value_marks[path] = _mark(ev.start_mark)
                if ev.anchor:
                    self.anchors[ev.anchor] = (value, 1)
                attach(value, 1, ev.start_mark, path)
                continue
            if isinstance(ev, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
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
                self.doc.value_marks[path] = _mark(ev.start_mark)
                container: Any = {} if isinstance(ev, yaml.MappingStartEvent) else []
                stack.append([container, path, 1, ev.anchor, _NO_KEY, ev.start_mark])
                continue
            if isinstance(ev, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                container, path, size, anchor, _, mark = stack.pop()
                if anchor:
                    self.anchors[anchor] = (container, size)
                attach(container, size, mark, path)
                continue
        self.doc.problems = list(self.errors)
        return self.doc


_NO_KEY = object()
_DUP_KEY = object()
_CORE = "tag:yaml.org,2002:"
_MERGE_TAG = _CORE + "merge"
_VALUE_TAG = _CORE + "value"
_STR_TAG = _CORE + "str"
# Dates (timestamp) load too, so that a date where a name belongs gets a type error, not a tag error.
_SCALAR_TAGS = {_CORE + t for t in ("str", "int", "float", "bool", "null", "timestamp")}
_COLLECTION_TAGS = {None, "!", _CORE + "map", _CORE + "seq"}
# What the YAML reader rejects (yaml.reader.Reader.NON_PRINTABLE).
_NON_PRINTABLE = re.compile("[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


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
    bad = _NON_PRINTABLE.search(text)
    if bad:  # the YAML reader would say so with a byte offset only
        line, col = text_position(text, bad.start())
        raise InputError(
            [
                Diagnostic(
                    name,
                    line,
                    col,
                    f"control character U+{ord(bad.group()):04X} is not "
                    "allowed in YAML: delete it (or write it as an escape "
                    "in a double-quoted string)",
                )
            ]
        )
    builder = _Builder(name)
    try:
        return builder.build(yaml.parse(text, Loader=_Loader))
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
        m = _mark(mark) if mark else None
        builder.errors.append(
            Diagnostic(name, m.line if m else None, m.column if m else None, f"YAML syntax error: {problem}{hint}")
        )
        raise InputError(builder.errors) from None
    except yaml.YAMLError as e:  # pragma: no cover - reader errors are caught above; defensive
        detail = " ".join(str(e).split())
        raise InputError(builder.errors + [Diagnostic(name, None, None, f"YAML error: {detail}")]) from None


def _tab_at(text: str, mark: Any) -> bool:
    if mark is None:
        return False
    lines = text.split("\n")
    if mark.line < len(lines):
        return "\t" in lines[mark.line][: mark.column + 1]
    return False
