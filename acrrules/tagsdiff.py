"""`acrrules tags diff`: what changed between two weekly Service Tags files.

Microsoft publishes a new file every week; most weeks the tags a description
uses do not move. This compares two files tag by tag (prefix sets, v4 and v6
together) so a team knows whether its IP-based rules must be re-rendered.

Only entries whose raw JSON differs are parsed and checked (most of the ~3,000
Public tags are byte-for-byte the same from week to week), so a full diff costs
little more than reading the two files.

Some changes are no reason to stop but must be looked at by a person (TagWarning,
exit EXIT_REVIEW): a tag whose addresses grow by more than
catalog.SERVICETAGS_WIDENING_FACTOR, prefixes that change under an unchanged
changeNumber, a new tag that differs from one of the old file only by letter case
or look-alike characters.
"""

from __future__ import annotations

import ipaddress
import json
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from . import catalog
from . import plan as planning
from .errors import EXIT_CHANGES, EXIT_OK, EXIT_REVIEW, Diagnostic, InputError
from .escape import terminal as printable  # file content must not drive the terminal or a CI log
from .servicetags import Block, ServiceTag, ServiceTagsFile, check_cloud, load

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

ADDED, REMOVED, CHANGED = "added", "removed", "changed"
# TagWarning kinds
WIDENED, UNCHANGED_NUMBER, LOOK_ALIKE = "widened", "unchanged-changeNumber", "look-alike"


@dataclass(frozen=True)
class TagChange:
    """One tag whose prefixes (or only its changeNumber) differ between the files."""

    tag: str
    status: str  # added | removed | changed
    old_change_number: int | None  # None when the tag is not in the old file
    new_change_number: int | None  # None when the tag is not in the new file
    added: tuple[Network, ...]
    removed: tuple[Network, ...]

    @property
    def prefixes_changed(self) -> bool:
        return bool(self.added or self.removed)


@dataclass(frozen=True)
class TagWarning:
    """A change a person must look at before rendering with the new file."""

    tag: str
    kind: str  # WIDENED | UNCHANGED_NUMBER | LOOK_ALIKE
    message: str  # in words, the tag and file names escaped for a terminal


@dataclass(frozen=True)
class TagsDiff:
    old: ServiceTagsFile
    new: ServiceTagsFile
    spec: str | None  # the description the tags came from, as typed; None = every tag
    compared: int  # how many tags were compared
    changed: tuple[TagChange, ...]  # prefixes differ (tags added or removed included), sorted by tag
    renumbered: tuple[TagChange, ...]  # same prefixes, new per-tag changeNumber
    missing_in_new: tuple[str, ...] = ()  # tags the description needs that the new file lacks
    warnings: tuple[TagWarning, ...] = ()  # in tag order

    @property
    def unchanged(self) -> int:
        return self.compared - len(self.changed) - len(self.renumbered)

    @property
    def exit_code(self) -> int:
        if self.warnings:
            return EXIT_REVIEW
        return EXIT_CHANGES if self.changed else EXIT_OK


def _net_key(n: Network) -> tuple[int, Network]:
    return (n.version, n)


def _prefix_set(tags_file: ServiceTagsFile, name: str) -> set[Network]:
    t = tags_file.tag(name)  # checks the entry against the schema; errors name the file
    return set(t.v4) | set(t.v6)


def _compare(old: ServiceTagsFile, new: ServiceTagsFile, name: str) -> TagChange | None:
    in_old, in_new = name in old.entries, name in new.entries
    if in_old and in_new:
        if old.entries[name] == new.entries[name]:
            return None
        a, b = old.tag(name), new.tag(name)  # entries of the two shapes never compare equal as raw JSON
        if (
            a.change_number == b.change_number
            and set(a.v4_blocks) == set(b.v4_blocks)
            and set(a.v6_blocks) == set(b.v6_blocks)
        ):
            return None
    before = _prefix_set(old, name) if in_old else set()
    after = _prefix_set(new, name) if in_new else set()
    status = CHANGED if in_old and in_new else (ADDED if in_new else REMOVED)
    old_cn = old.tag(name).change_number if in_old else None
    new_cn = new.tag(name).change_number if in_new else None
    change = TagChange(
        name,
        status,
        old_cn,
        new_cn,
        tuple(sorted(after - before, key=_net_key)),
        tuple(sorted(before - after, key=_net_key)),
    )
    if status == CHANGED and not change.prefixes_changed and old_cn == new_cn:
        return None  # e.g. prefixes reordered or another property edited: nothing a firewall sees
    return change


def _spec_tags(spec: str, old: ServiceTagsFile, new: ServiceTagsFile) -> tuple[list[str], list[str]]:
    """The tags the description needs, named as in the new file, and those only the old file has."""
    from .pipeline import load_description

    desc = load_description(spec, new).description
    check_cloud(new, desc.cloud_info, desc.source_name)
    try:
        return [t.tag for t in planning.service_tags(desc, new)], []
    except InputError as new_error:
        # A region the new file dropped: report its tags as removed (exit 1) rather than
        # failing, when the old file still resolves every tag the description needs.
        try:
            names = [t.tag for t in planning.service_tags(desc, old)]
        except InputError:
            raise new_error from None
        return names, [n for n in names if n not in new.entries]


def diff(old_path: str, new_path: str, spec: str | Sequence[str] | None = None) -> TagsDiff:
    """Compare two Service Tags files; every input problem is an InputError naming its file."""
    return compare(load(old_path), load(new_path), spec)


def compare(old: ServiceTagsFile, new: ServiceTagsFile, spec: str | Sequence[str] | None = None) -> TagsDiff:
    """`diff` of two loaded files (`report --since` has NEW loaded already); with several specs, the
    tags that any of them needs (`tags diff --spec A --spec B`, a project)."""
    if old.cloud != new.cloud:
        raise InputError(
            [
                Diagnostic(
                    new.path,
                    None,
                    None,
                    f"this Service Tags file is for cloud {new.cloud!r}, but {old.path} is for "
                    f"{old.cloud!r}: compare two files of the same cloud",
                )
            ]
        )
    missing: list[str] = []
    specs = [spec] if isinstance(spec, str) else list(spec or ())
    if not specs:
        names = sorted(set(old.entries) | set(new.entries))
    else:
        wanted: set[str] = set()
        for one in specs:
            needed, lacking = _spec_tags(one, old, new)
            wanted |= set(needed)
            missing += [m for m in lacking if m not in missing]
        names = sorted(wanted)
    changes = [c for c in (_compare(old, new, n) for n in names) if c is not None]
    return TagsDiff(
        old=old,
        new=new,
        spec=", ".join(specs) if specs else None,
        compared=len(names),
        changed=tuple(c for c in changes if c.prefixes_changed or c.status != CHANGED),
        renumbered=tuple(c for c in changes if not c.prefixes_changed and c.status == CHANGED),
        missing_in_new=tuple(missing),
        warnings=tuple(_warnings(old, new, changes)),
    )


# ---- what a person must look at -------------------------------------------------------


def _addresses(blocks: tuple[Block, ...], version: int) -> int:
    """How many addresses the blocks cover (overlaps counted once)."""
    bits = 32 if version == 4 else 128
    return sum(1 << (bits - p.length) for p in planning.collapse(blocks, version))


def _widening(a: ServiceTag, b: ServiceTag) -> list[str]:
    factor = catalog.SERVICETAGS_WIDENING_FACTOR
    out = []
    for version, before, after in ((4, a.v4_blocks, b.v4_blocks), (6, a.v6_blocks, b.v6_blocks)):
        if set(after) <= set(before):
            continue
        was, now = _addresses(before, version), _addresses(after, version)
        if was == 0 and now > 0:
            out.append(f"its IPv{version} addresses grow from none to {now:,}")
        elif now > factor * was:
            out.append(f"its IPv{version} addresses grow {now / was:,.0f}-fold, from {was:,} to {now:,}")
    return out


def fold(name: str) -> str:
    """A tag name as a reader would confuse it: letter case and compatibility look-alikes (NFKC) gone."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).casefold())


def _warnings(old: ServiceTagsFile, new: ServiceTagsFile, changes: list[TagChange]) -> list[TagWarning]:
    out = []
    old_folded: dict[str, str] | None = None
    for c in changes:
        tag = printable(c.tag)
        if c.status == CHANGED and c.prefixes_changed:
            a, b = old.tag(c.tag), new.tag(c.tag)
            if a.change_number == b.change_number:
                out.append(
                    TagWarning(
                        c.tag,
                        UNCHANGED_NUMBER,
                        f"{tag}: prefixes changed (+{len(c.added)} -{len(c.removed)}) while its changeNumber stayed "
                        f"{b.change_number}; Microsoft raises a tag's changeNumber with every change, so the file "
                        f"was edited: compare {printable(new.path)} with Microsoft's download",
                    )
                )
            grown = _widening(a, b)
            if grown:
                out.append(
                    TagWarning(
                        c.tag,
                        WIDENED,
                        f"{tag} widens sharply: {'; '.join(grown)} (more than "
                        f"{catalog.SERVICETAGS_WIDENING_FACTOR}-fold, which no real week comes near): review "
                        "its added prefixes before rendering with the new file",
                    )
                )
        elif c.status == ADDED:
            if old_folded is None:
                old_folded = {fold(n): n for n in old.entries}
            twin = old_folded.get(fold(c.tag))
            if twin is not None and twin != c.tag:
                out.append(
                    TagWarning(
                        c.tag,
                        LOOK_ALIKE,
                        f"{tag} is new, and differs from {printable(twin)} of {printable(old.path)} only by letter "
                        "case or look-alike characters: a renamed twin can stand in for the real tag; check "
                        "that Microsoft's file has it",
                    )
                )
    return out


def warning_lines(d: TagsDiff) -> list[str]:
    """The warnings, one line each, for standard error."""
    return [f"warning: {w.message}" for w in d.warnings]


# ---- output ---------------------------------------------------------------------------


def as_json(d: TagsDiff) -> dict[str, Any]:
    """The documented JSON shape of `acrrules tags diff --format json` (see docs in cli.py)."""

    def file_info(f: ServiceTagsFile) -> dict[str, Any]:
        return {"file": f.path, "cloud": f.cloud, "changeNumber": f.change_number}

    def change(c: TagChange) -> dict[str, Any]:
        return {
            "tag": c.tag,
            "status": c.status,
            "changeNumber": [c.old_change_number, c.new_change_number],
            "added": [str(n) for n in c.added],
            "removed": [str(n) for n in c.removed],
        }

    return {
        "old": file_info(d.old),
        "new": file_info(d.new),
        "spec": d.spec,
        "compared": d.compared,
        "changed": [change(c) for c in d.changed],
        "renumbered": [
            {"tag": c.tag, "changeNumber": [c.old_change_number, c.new_change_number]} for c in d.renumbered
        ],
        "unchanged": d.unchanged,
        "missingInNew": list(d.missing_in_new),
        "warnings": [{"tag": w.tag, "kind": w.kind, "message": w.message} for w in d.warnings],
    }


def format_json(d: TagsDiff) -> str:
    return json.dumps(as_json(d), indent=2) + "\n"


def _cn(n: int | None) -> str:
    return "-" if n is None else str(n)


def format_text(d: TagsDiff) -> str:
    """For people: one block per changed tag, then a summary that says what to do."""

    def file_line(label: str, f: ServiceTagsFile) -> str:
        return f"{label} {printable(f.path)} (cloud {printable(f.cloud)}, changeNumber {f.change_number})\n"

    out = [file_line("old:", d.old), file_line("new:", d.new)]
    scope = f"the {d.compared} tag(s) {printable(d.spec)} needs" if d.spec else f"all {d.compared} tags"
    out.append(f"compared: {scope}\n")
    for c in d.changed:
        what = {ADDED: " (new tag)", REMOVED: " (tag removed)", CHANGED: ""}[c.status]
        out.append(
            f"\n{printable(c.tag)}{what}: changeNumber {_cn(c.old_change_number)} -> "
            f"{_cn(c.new_change_number)}, +{len(c.added)} -{len(c.removed)}\n"
        )
        out += [f"  +{n}\n" for n in c.added]
        out += [f"  -{n}\n" for n in c.removed]
    if d.renumbered:
        out.append("\nchangeNumber only (same prefixes):\n")
        out += [
            f"  {printable(c.tag)}: {_cn(c.old_change_number)} -> {_cn(c.new_change_number)}\n" for c in d.renumbered
        ]
    for name in d.missing_in_new:
        out.append(
            f"\nwarning: {printable(d.new.path)} has no tag {printable(name)}, which "
            f"{printable(d.spec)} needs: rendering with it will fail until the description changes\n"
        )
    added = sum(len(c.added) for c in d.changed)
    removed = sum(len(c.removed) for c in d.changed)
    out.append("\n")
    if d.changed:
        out.append(
            f"summary: {len(d.changed)} tag(s) changed (+{added} -{removed} prefixes), "
            f"{len(d.renumbered)} changeNumber-only, {d.unchanged} unchanged: IP rules rendered from "
            f"{printable(d.old.path)} are out of date; render them again with --service-tags "
            f"{printable(d.new.path)}\n"
        )
    else:
        only = ""
        if d.renumbered:
            only = f"; {len(d.renumbered)} tag(s) have a new changeNumber only"
        elif d.old.change_number != d.new.change_number:
            only = f"; only the file's changeNumber differs ({d.old.change_number} -> {d.new.change_number})"
        out.append(
            f"summary: no prefix changes in {d.compared} tag(s){only}: rules rendered from "
            f"{printable(d.old.path)} are still current\n"
        )
    return "".join(out)
