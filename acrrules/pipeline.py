"""The whole pipeline, load -> validate -> model -> plan -> render, for the CLI and API."""
from __future__ import annotations

from typing import NamedTuple

from . import model, plan as planning, servicetags, validate
from .catalog import CLOUDS
from .errors import Diagnostic, InputError, UsageError
from .load import SourceDocument, load_yaml
from .model import Description
from .plan import RulePlan
from .targets import TARGETS


class Loaded(NamedTuple):
    doc: SourceDocument
    description: Description


def load_description(path: str, tags_file: servicetags.ServiceTagsFile | None = None) -> Loaded:
    doc = load_yaml(path)
    extra = None
    if tags_file is not None:
        # A newer Service Tags file may know regions the built-in catalog does not yet.
        extra = {c.name: tags_file.regions() for c in CLOUDS.values() if c.servicetags_cloud == tags_file.cloud}
    validate.validate(doc, extra_locations=extra)
    return Loaded(doc, model.build(doc))


def select_targets(names: list[str] | None, have_service_tags: bool) -> list[str]:
    if not names:
        return [t.id for t in TARGETS.values() if have_service_tags or not t.needs_service_tags]
    out = []
    for n in names:
        if n not in TARGETS:
            raise UsageError(f"unknown target {n!r}: choose from {', '.join(TARGETS)}")
        if TARGETS[n].needs_service_tags and not have_service_tags:
            raise UsageError(f"target {n!r} needs IP prefixes: add --service-tags ServiceTags_<Cloud>_<date>.json")
        if n not in out:
            out.append(n)
    return out


def limit_problems(rule_plan: RulePlan, target_ids: list[str], doc: SourceDocument | None = None
                   ) -> list[Diagnostic]:
    """Platform limits the chosen targets would break, located in the description when it has positions."""
    problems: list[Diagnostic] = []
    for tid in target_ids:
        for p in TARGETS[tid].check(rule_plan):
            if doc is not None:
                problems.append(doc.diagnostic(p.path, p.message))
            else:
                problems.append(Diagnostic(rule_plan.description.source_name, None, None, p.message))
    return problems


def render(rule_plan: RulePlan, target_ids: list[str], doc: SourceDocument | None = None) -> dict[str, str]:
    """Every file of the chosen targets; platform limits are checked for all of them first."""
    problems = limit_problems(rule_plan, target_ids, doc)
    if problems:
        raise InputError(problems)
    files: dict[str, str] = {}
    for tid in target_ids:
        files.update(TARGETS[tid].render(rule_plan))
    return files


def run(spec: str, target_names: list[str] | None = None, service_tags_path: str | None = None
        ) -> tuple[Loaded, RulePlan, dict[str, str]]:
    tags_file = servicetags.load(service_tags_path) if service_tags_path else None
    targets = select_targets(target_names, tags_file is not None)
    loaded = load_description(spec, tags_file)
    rule_plan = planning.build(loaded.description, tags_file)
    return loaded, rule_plan, render(rule_plan, targets, loaded.doc)
