"""`acrrules report`: the review summary of a weekly run (spec §5), for a pull request.

`build` gathers the facts into a Report, from the same code that renders the rules
(pipeline.run_description, the targets' own rule lists, tagsdiff, nsg.removed_rules);
`as_json` and `markdown` (templates/report.md.j2) only present them. Nothing here
depends on the clock, the working directory beyond how paths were typed, or a hash seed.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from . import __version__, catalog, pipeline, servicetags, tagsdiff
from . import plan as planning
from .errors import AcrrulesError, UsageError
from .plan import Endpoint, RulePlan
from .render import TERRAFORM_VERSIONS_FILE, environment, source_label
from .targets import TARGETS
from .targets.nsg import NsgPlace, delete_command, nsg_place, removed_rules_of

ADDED, CHANGED, UNCHANGED = "added", "changed", "unchanged"
NSG_TARGETS = ("nsg-arm", "nsg-tf")


class RegionRow(NamedTuple):
    registry: str
    sku: str
    region: str  # ARM location
    role: str  # home | replica
    tags: tuple[str, ...]  # the service tags of this registry region


class TagRow(NamedTuple):
    tag: str
    registries: tuple[str, ...]  # empty for the MCR tags
    region: str | None
    change_number: int | None  # None without a Service Tags file
    ipv4: int | None  # this tag's prefixes merged into the fewest CIDRs
    ipv6: int | None


class NsgRuleRow(NamedTuple):
    priority: int
    name: str
    tag: str
    address: str | None  # Terraform resource address (nsg-tf)


class NsgTable(NamedTuple):
    target: str
    file: str
    first: int  # the priority block acrrules owns
    last: int
    rules: tuple[NsgRuleRow, ...]


NameValue = str | int | tuple[str | int, ...]  # a name, a number, or several (a priority range: first, last)

# How the Markdown report words the keys of TargetRow.names that are not plain words (the JSON uses
# the keys; a target's other keys are shown as they are).
NAME_LABELS = {
    "ruleCollectionGroup": "rule collection group",
    "ruleNames": "rule names",
    "endpointSelector": "endpoint selector",
    "networkSets": "network sets",
}


class TargetRow(NamedTuple):
    target: str
    files: tuple[str, ...]
    names: tuple[tuple[str, NameValue], ...]  # (key, value) of the objects the target creates


class FileRow(NamedTuple):
    file: str
    status: str  # added | changed | unchanged
    lines_added: int
    lines_removed: int


class RemovedRule(NamedTuple):
    name: str
    priority: int | None
    tag: str | None
    command: str


class OutDir(NamedTuple):
    path: str  # as typed
    files: tuple[FileRow, ...]
    nsg_checked: bool  # nsg-arm is rendered, so nsg.json was compared
    removed_rules: tuple[RemovedRule, ...]
    base: str | None = None  # compared with the files committed at this git revision, not those on disk
    place_known: bool = False  # the settings name the resource group and the NSG of nsg.json
    # (file, what is there) for each file that is no regular file, or too large to read: "a
    # symbolic link to ../.git/config" (the CLI warns; render replaces it). Not in the JSON.
    not_regular: tuple[tuple[str, str], ...] = ()


class Report(NamedTuple):
    version: str
    name: str
    spec: str  # relative to the working directory when under it
    cloud: str
    sources: tuple[str, ...]
    targets: tuple[TargetRow, ...]
    skipped: tuple[tuple[str, str], ...]
    registries: tuple[RegionRow, ...]
    endpoints: tuple[Endpoint, ...]  # as `acrrules endpoints` lists them
    service_tags: dict[str, Any] | None  # {"file", "cloud", "changeNumber"}
    tags: tuple[TagRow, ...]
    totals: tuple[int, int] | None  # merged union (IPv4, IPv6): what the IP sets hold
    nsg: tuple[NsgTable, ...]
    since: tagsdiff.TagsDiff | None
    out: OutDir | None
    mcr: tuple[str, ...]  # the MCR FQDNs, when allowed


def build(
    spec: str,
    target_names: list[str] | None = None,
    service_tags_path: str | None = None,
    since_path: str | None = None,
    out_dir: str | None = None,
    base: str | None = None,
    out_follow_symlink: bool = False,
) -> Report:
    if base is not None and out_dir is None:
        raise UsageError("--base REF compares with the rules committed at REF: give --out DIR, where they are rendered")
    if since_path is not None and service_tags_path is None:
        raise UsageError("--since OLD compares OLD with the Service Tags file of this run: give --service-tags NEW too")
    tags_file = servicetags.load(service_tags_path) if service_tags_path else None
    old_file = servicetags.load(since_path) if since_path else None
    if target_names:  # a wrong --target is reported before the description is read, as by render
        pipeline.select_targets(target_names, tags_file is not None)
    loaded = pipeline.load_description(spec, tags_file)
    run = pipeline.run_description(loaded, target_names, tags_file, out_dir)
    plan, desc = run.plan, loaded.description
    selected = pipeline.select_targets(target_names, tags_file is not None, desc).targets  # as run chose
    chosen = tuple(t for t in TARGETS if t in selected)
    since = tagsdiff.compare(old_file, tags_file, spec) if old_file is not None and tags_file is not None else None
    return Report(
        version=__version__,
        name=desc.name,
        spec=source_label(desc.source_name, None),
        cloud=desc.cloud,
        sources=desc.sources,
        targets=tuple(_target_row(plan, t) for t in chosen),
        skipped=tuple(run.skipped),
        registries=_registries(plan),
        endpoints=plan.endpoints,
        service_tags=None
        if tags_file is None
        else {"file": tags_file.file_name, "cloud": tags_file.cloud, "changeNumber": tags_file.change_number},
        tags=_tags(plan, tags_file),
        totals=None if plan.prefixes is None else (len(plan.prefixes.v4_prefixes), len(plan.prefixes.v6_prefixes)),
        nsg=tuple(_nsg_table(plan, t) for t in NSG_TARGETS if t in chosen),
        since=since,
        out=None
        if out_dir is None
        else _out_dir(out_dir, run.files, "nsg-arm" in chosen, nsg_place(plan, "nsg-arm"), base, out_follow_symlink),
        mcr=desc.cloud_info.mcr_fqdns if desc.mcr else (),
    )


def _target_row(plan: RulePlan, tid: str) -> TargetRow:
    files = tuple(name for name, _ in TARGETS[tid].files)
    if TARGETS[tid].terraform:
        files += (TERRAFORM_VERSIONS_FILE,)
    what = TARGETS[tid].object_names(plan)
    return TargetRow(tid, files, what)


def _registries(plan: RulePlan) -> tuple[RegionRow, ...]:
    by_region: dict[tuple[str, str], list[str]] = {}
    for t in plan.tags:
        if t.region is not None:
            for reg in t.registries:
                by_region.setdefault((reg, t.region), []).append(t.tag)
    return tuple(
        RegionRow(reg.name, reg.sku, r, "home" if i == 0 else "replica", tuple(by_region.get((reg.name, r), ())))
        for reg in plan.description.registries
        for i, r in enumerate(reg.regions)
    )


def _tags(plan: RulePlan, tags_file: servicetags.ServiceTagsFile | None) -> tuple[TagRow, ...]:
    rows = []
    for t in plan.tags:
        v4 = v6 = None
        if tags_file is not None:
            st = tags_file.tag(t.tag)
            v4, v6 = len(planning.collapse(st.v4_blocks, 4)), len(planning.collapse(st.v6_blocks, 6))
        rows.append(TagRow(t.tag, t.registries, t.region, t.change_number, v4, v6))
    return tuple(rows)


def _nsg_table(plan: RulePlan, tid: str) -> NsgTable:
    target = TARGETS[tid]
    rules = target.context(plan)["rules"]  # the list the template renders, in its order
    first = target.settings(plan).priority
    return NsgTable(
        tid,
        target.files[0][0],
        first,
        first + catalog.NSG_BLOCK_SIZE - 1,
        tuple(
            NsgRuleRow(
                r.priority, r.name, r.tag, f"azurerm_network_security_rule.{r.label}" if tid == "nsg-tf" else None
            )
            for r in rules
        ),
    )


def _out_dir(
    out_dir: str,
    files: dict[str, str],
    nsg_arm: bool,
    place: NsgPlace,
    ref: str | None = None,
    follow_symlink: bool = False,
) -> OutDir:
    """What `render --out DIR` would do to DIR: each file added, changed or unchanged (bytes, as
    --check compares, read as --check reads them: write.read_existing), and the NSG rules that
    leave nsg.json. With `ref`, DIR as committed at that git revision instead of on disk."""
    from . import write

    base = Path(out_dir)
    if ref is not None:
        from .gitbase import committed_files

        committed = committed_files(ref, out_dir, list(files))
        return _compared(out_dir, files, nsg_arm, place, ref, lambda name, _limit: (committed[name], None))
    if base.exists() and not base.is_dir():
        raise AcrrulesError(f"{out_dir}: --out must be the directory the rules are rendered into; this is a file")
    with write.locked(out_dir, exclusive=False, create=False, follow_symlink=follow_symlink) as dir_fd:

        def on_disk(name: str, limit: int) -> tuple[bytes | None, str | None]:
            try:
                existing = write.read_existing(dir_fd, name, limit)
            except OSError as e:
                raise AcrrulesError(f"{base / name}: cannot read it to compare: {e.strerror or e}") from None
            if existing.kind == write.DIRECTORY:
                raise AcrrulesError(f"{base / name}: cannot read it to compare: it is a directory")
            return existing.data, None if existing.kind == write.MISSING else existing.what

        return _compared(out_dir, files, nsg_arm, place, None, on_disk)


def _compared(
    out_dir: str,
    files: dict[str, str],
    nsg_arm: bool,
    place: NsgPlace,
    ref: str | None,
    read: Callable[[str, int], tuple[bytes | None, str | None]],
) -> OutDir:
    """The rows of _out_dir, each existing file got with `read(name, limit)`: (its bytes, or None
    with what stands there instead: None for nothing, else e.g. "a symbolic link to ...")."""
    from . import write

    rows, odd = [], []
    old_nsg: str | None = None
    for name, text in files.items():
        new = text.encode("utf-8")
        new_lines = text.count("\n") + (not text.endswith("\n") and bool(text))
        raw, what = read(name, write.read_limit(new))
        if raw is None:
            if what is None:
                rows.append(FileRow(name, ADDED, new_lines, 0))
            else:  # its content is not read: every rendered line replaces it
                rows.append(FileRow(name, CHANGED, new_lines, 0))
                odd.append((name, what))
            continue
        if name == "nsg.json":
            old_nsg = raw.decode("utf-8", "replace")
        if raw == new:
            rows.append(FileRow(name, UNCHANGED, 0, 0))
            continue
        old_lines = raw.decode("utf-8", "replace").splitlines()
        plus = minus = 0
        for line in difflib.unified_diff(old_lines, text.splitlines(), lineterm="", n=0):
            if line.startswith("+") and not line.startswith("+++"):
                plus += 1
            elif line.startswith("-") and not line.startswith("---"):
                minus += 1
        rows.append(FileRow(name, CHANGED, plus, minus))
    new_nsg = files.get("nsg.json")
    gone = removed_rules_of(old_nsg, new_nsg) if nsg_arm else []
    return OutDir(
        out_dir,
        tuple(rows),
        nsg_arm,
        tuple(RemovedRule(r.name, r.priority, r.tag, delete_command(r, place)) for r in gone),
        ref,
        None not in place,
        tuple(odd),
    )


# ---- presentation ------------------------------------------------------------------------


def as_json(r: Report) -> dict[str, Any]:
    """The documented JSON shape (`acrrules report --help`, README)."""
    since = None
    if r.since is not None:
        since = tagsdiff.as_json(r.since)
        del since["spec"]
        for key, f in (("old", r.since.old), ("new", r.since.new)):
            since[key] = {"file": f.file_name, "cloud": f.cloud, "changeNumber": f.change_number}
    return {
        "acrrules": r.version,
        "name": r.name,
        "spec": r.spec,
        "cloud": r.cloud,
        "sources": list(r.sources),
        "targets": [
            {
                "target": t.target,
                "files": list(t.files),
                "names": {k: list(v) if isinstance(v, tuple) else v for k, v in t.names},
            }
            for t in r.targets
        ],
        "skipped": [{"target": t, "reason": why} for t, why in r.skipped],
        "registries": [
            {"registry": x.registry, "sku": x.sku, "region": x.region, "role": x.role, "tags": list(x.tags)}
            for x in r.registries
        ],
        "endpoints": [e.as_json() for e in r.endpoints],
        "serviceTags": r.service_tags,
        "tags": [
            {
                "tag": t.tag,
                "registries": list(t.registries),
                "region": t.region,
                "changeNumber": t.change_number,
                "ipv4": t.ipv4,
                "ipv6": t.ipv6,
            }
            for t in r.tags
        ],
        "totals": None if r.totals is None else {"ipv4": r.totals[0], "ipv6": r.totals[1]},
        "nsg": [
            {
                "target": n.target,
                "file": n.file,
                "priorities": [n.first, n.last],
                "rules": [
                    {
                        "priority": x.priority,
                        "name": x.name,
                        "tag": x.tag,
                        **({"address": x.address} if x.address is not None else {}),
                    }
                    for x in n.rules
                ],
            }
            for n in r.nsg
        ],
        "since": since,
        "out": None
        if r.out is None
        else {
            "dir": r.out.path,
            "base": r.out.base,
            "files": [
                {"file": f.file, "status": f.status, "linesAdded": f.lines_added, "linesRemoved": f.lines_removed}
                for f in r.out.files
            ],
            "removedRules": [
                {"name": x.name, "priority": x.priority, "tag": x.tag, "command": x.command}
                for x in r.out.removed_rules
            ]
            if r.out.nsg_checked
            else None,
        },
    }


def format_json(r: Report) -> str:
    import json

    return json.dumps(as_json(r), indent=2) + "\n"  # ASCII: rule names from a committed nsg.json are untrusted text


def markdown(r: Report) -> str:
    """The Markdown report: logic stays here and in build, the text format in report.md.j2."""
    registries: dict[str, list[RegionRow]] = {}
    for row in r.registries:
        registries.setdefault(row.registry, []).append(row)
    endpoint_order = _endpoint_order(r)
    since = r.since
    return (
        environment()
        .get_template("report.md.j2")
        .render(
            r=r,
            port=catalog.PORT,
            by_registry=list(registries.items()),
            endpoints=sorted(r.endpoints, key=endpoint_order),
            since=since,
            since_prefixes=_since_prefixes(since) if since is not None else [],
            since_totals=_since_totals(since) if since is not None else None,
            out_counts=_counts(r.out) if r.out is not None else None,
            login={e.registry: e.fqdn for e in r.endpoints if e.kind == "login"},
            name_labels=NAME_LABELS,
        )
    )


_EndpointKey = tuple[bool, int, int, int, str]


def _endpoint_order(r: Report) -> Callable[[Endpoint], _EndpointKey]:
    """Endpoints per registry (description order) and region (home first), then the shared ones."""
    # Keyed as Endpoint.registry is, which is None for the shared endpoints (then: no entry).
    registry_index: dict[str | None, int] = {}
    region_index: dict[tuple[str | None, str], int] = {}
    for row in r.registries:
        registry_index.setdefault(row.registry, len(registry_index))
        region_index.setdefault((row.registry, row.region), len(region_index))
    kinds = ("login", "data", "regional", "certificate", "storage", "mcr", "mcr-data")

    def key(e: Endpoint) -> _EndpointKey:
        shared = e.registry is None
        return (
            shared,
            registry_index.get(e.registry, 0),
            -1 if e.region is None else region_index.get((e.registry, e.region), 0),
            kinds.index(e.kind) if e.kind in kinds else len(kinds),
            e.fqdn,
        )

    return key


def _since_prefixes(d: tagsdiff.TagsDiff) -> list[tuple[str, str, str]]:
    """(tag, prefix, added|removed) rows, per tag in name order, added first, as tags diff lists them."""
    return [
        (c.tag, str(n), kind)
        for c in d.changed
        for kind, nets in (("added", c.added), ("removed", c.removed))
        for n in nets
    ]


def _since_totals(d: tagsdiff.TagsDiff) -> tuple[int, int]:
    return sum(len(c.added) for c in d.changed), sum(len(c.removed) for c in d.changed)


def _counts(out: OutDir) -> dict[str, int]:
    counts = {ADDED: 0, CHANGED: 0, UNCHANGED: 0}
    for f in out.files:
        counts[f.status] += 1
    return counts
