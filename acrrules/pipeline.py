"""The whole pipeline, load -> validate -> model -> plan -> render, for the CLI and API."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from . import hints, model, servicetags, validate
from . import plan as planning
from .catalog import CLOUDS, TAG_ACR
from .errors import Diagnostic, InputError, UsageError
from .load import SourceDocument, load_yaml, paused_gc
from .model import Description
from .plan import RulePlan
from .render import render_terraform_versions, source_label
from .targets import TARGETS


class Loaded(NamedTuple):
    doc: SourceDocument | None  # None: a Description given to the API without its file (no positions)
    description: Description


def load_description(path: str, tags_file: servicetags.ServiceTagsFile | None = None) -> Loaded:
    return validated(load_yaml(path), tags_file)


def validated(doc: SourceDocument, tags_file: servicetags.ServiceTagsFile | None = None) -> Loaded:
    """A loaded description, validated (with the locations `tags_file` knows) and modelled."""
    if hints.looks_like_service_tags(doc.data):  # not a description: say what it is, not its schema errors
        raise InputError([Diagnostic(doc.name, None, None, hints.service_tags_given_as_description(doc.data))])
    extra = None
    if tags_file is not None:
        # A newer Service Tags file may know regions the built-in catalog does not yet.
        extra = {
            c.name: planning.tag_regions(tags_file, TAG_ACR, c)
            for c in CLOUDS.values()
            if c.servicetags_cloud == tags_file.cloud
        }
    with paused_gc():  # (see paused_gc)
        validate.validate(doc, extra_locations=extra)
        return Loaded(doc, model.build(doc))


def checked_targets(description: Description, target_names: Sequence[str] | None) -> list[str]:
    """The targets `validate` checks: those named (--target, each once), else the description's
    `outputs`, else every target."""
    return list(dict.fromkeys(target_names)) if target_names else list(description.outputs or TARGETS)


class Selection(NamedTuple):
    """The targets a run renders or checks, and the ones it leaves out with the reason."""

    targets: list[str]
    skipped: list[tuple[str, str]]  # (target, why)
    partial: tuple[tuple[str, str], ...] = ()  # (target and the files it leaves out, why): rendered without them


def select_targets(
    names: list[str] | None,
    have_service_tags: bool,
    description: Description | None = None,
    *,
    service_tags_hint: str = hints.CLI_SERVICE_TAGS,
) -> Selection:
    """`--target` names when given (an IP target without prefixes is an error), else the
    description's `outputs:` (or every target) less those the inputs do not allow.
    service_tags_hint: how the caller's user gives a Service Tags file (hints.CLI_SERVICE_TAGS,
    hints.API_SERVICE_TAGS)."""
    if names:
        out = []
        for n in names:
            if n not in TARGETS:
                raise UsageError(hints.unknown("target", n, TARGETS))
            if TARGETS[n].needs_service_tags and not have_service_tags:
                raise UsageError(f"target {n!r} needs IP prefixes: {service_tags_hint}")
            if n not in out:
                out.append(n)
        return Selection(out, [], _partial(out, have_service_tags, service_tags_hint))
    wanted = list(description.outputs) if description is not None and description.outputs else list(TARGETS)
    chosen, skipped = [], []
    for n in wanted:
        if TARGETS[n].needs_service_tags and not have_service_tags:
            skipped.append((n, f"it needs IP prefixes: {service_tags_hint}"))
        else:
            chosen.append(n)
    return Selection(chosen, skipped, _partial(chosen, have_service_tags, service_tags_hint))


def _partial(chosen: list[str], have_service_tags: bool, service_tags_hint: str) -> tuple[tuple[str, str], ...]:
    """The chosen targets that render some of their files only with a Service Tags file."""
    if have_service_tags:
        return ()
    return tuple(
        (f"{n} ({', '.join(TARGETS[n].prefix_files)})", f"they need IP prefixes: {service_tags_hint}")
        for n in chosen
        if TARGETS[n].prefix_files
    )


def limit_problems(rule_plan: RulePlan, target_ids: list[str], doc: SourceDocument | None = None) -> list[Diagnostic]:
    """Platform limits the chosen targets would break, located in the description when it has positions."""
    problems: list[Diagnostic] = []
    for tid in target_ids:
        for p in TARGETS[tid].check(rule_plan):
            if doc is not None:
                problems.append(doc.diagnostic(p.path, p.message))
            else:
                problems.append(Diagnostic(rule_plan.description.source_name, None, None, p.message))
    return problems


def render(
    rule_plan: RulePlan, target_ids: list[str], doc: SourceDocument | None = None, out_dir: str | None = None
) -> dict[str, str]:
    """Every file of the chosen targets, their headers naming the description relative to
    `out_dir` (None: relative to the working directory, as for `--out -`); platform limits are
    checked for all of them first."""
    problems = limit_problems(rule_plan, target_ids, doc)
    if problems:
        raise InputError(problems)
    source = source_label(rule_plan.description.source_name, out_dir)
    files: dict[str, str] = {}
    for tid in target_ids:
        files.update(TARGETS[tid].render(rule_plan, source))
    if any(TARGETS[tid].terraform for tid in target_ids):
        files.update(render_terraform_versions(rule_plan, source))
    return files


class Run(NamedTuple):
    loaded: Loaded
    plan: RulePlan
    files: dict[str, str]
    skipped: list[tuple[str, str]]  # what this run left out and why, for stderr (targets, or files of one)


def run(
    spec: str, target_names: list[str] | None = None, service_tags_path: str | None = None, out_dir: str | None = None
) -> Run:
    """`acrrules render`: read the inputs, then run_description."""
    tags_file = servicetags.load(service_tags_path) if service_tags_path else None
    if target_names:  # a wrong --target is reported before the description is read
        select_targets(target_names, tags_file is not None)
    loaded = load_description(spec, tags_file)
    return run_description(loaded, target_names, tags_file, out_dir)


def run_description(
    loaded: Loaded,
    target_names: list[str] | None = None,
    tags_file: servicetags.ServiceTagsFile | None = None,
    out_dir: str | None = None,
    *,
    service_tags_hint: str = hints.CLI_SERVICE_TAGS,
) -> Run:
    """Select, plan, check and render a loaded description: the one code path of `render`,
    `report` and the Python API (`acrrules.render`)."""
    selection = select_targets(
        target_names, tags_file is not None, loaded.description, service_tags_hint=service_tags_hint
    )
    rule_plan = planning.build(loaded.description, tags_file)
    # The description's own outputs are checked even when this run skips them (no prefixes yet),
    # so a mistake in their settings shows up now, not on the first run with a Service Tags file.
    problems = limit_problems(rule_plan, [t for t, _ in selection.skipped], loaded.doc)
    if problems:
        raise InputError(problems + limit_problems(rule_plan, selection.targets, loaded.doc))
    return Run(
        loaded,
        rule_plan,
        render(rule_plan, selection.targets, loaded.doc, out_dir),
        selection.skipped + list(selection.partial),
    )


def limit_warnings(rule_plan: RulePlan, target_ids: list[str], doc: SourceDocument | None = None) -> list[Diagnostic]:
    """What the chosen targets warn about (Target.warnings), located like limit_problems, each message
    starting `warning: `; sorted, without duplicates."""
    found: set[Diagnostic] = set()
    for tid in target_ids:
        for p in TARGETS[tid].warnings(rule_plan):
            message = f"warning: {p.message}"
            if doc is not None:
                found.add(doc.diagnostic(p.path, message))
            else:
                found.add(Diagnostic(rule_plan.description.source_name, None, None, message))
    return sorted(found, key=lambda d: (d.file, d.line or 0, d.column or 0, d.message))


def run_warnings(result: Run) -> list[Diagnostic]:
    """limit_warnings for the targets a run rendered, and for those it skipped (as their problems are checked)."""
    skipped = {name for name, _ in result.skipped}
    ids = [t for t in TARGETS if t in skipped or any(name in result.files for name, _ in TARGETS[t].files)]
    return limit_warnings(result.plan, ids, result.loaded.doc)
