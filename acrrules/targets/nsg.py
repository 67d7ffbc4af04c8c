"""nsg-arm and nsg-tf: NSG outbound security rules, one per service tag.

Azure accepts a service tag only in `destinationAddressPrefix` (singular), so
each tag gets its own rule; priorities are consecutive from the configured
first priority, in the plan's tag order.
"""
from __future__ import annotations

import re
from typing import NamedTuple

from .. import catalog
from ..plan import RulePlan, TagRule
from ..render import LimitProblem, Target

_NAME_OK = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_.-]*[A-Za-z0-9_])?$")


class NsgRule(NamedTuple):
    name: str
    label: str            # Terraform resource label
    priority: int
    tag: str
    description: str
    source_prefix: str | None          # exactly one of source_prefix / source_prefixes is set
    source_prefixes: tuple[str, ...]


def describe(tag: TagRule, limit: int = catalog.NSG_DESCRIPTION_MAX) -> str:
    """`<purpose> for a, b and 3 more`, within Azure's description limit."""
    base = f"acrrules: {tag.purpose}"
    if not tag.registries:
        return base[:limit]
    names = list(tag.registries)
    for shown in range(len(names), 0, -1):
        rest = len(names) - shown
        text = f"{base} for {', '.join(names[:shown])}" + (f" and {rest} more" if rest else "")
        if len(text) <= limit:
            return text
    return f"{base} for {len(names)} registries"[:limit]


def rules(plan: RulePlan, first_priority: int) -> list[NsgRule]:
    sources = plan.description.sources
    single = sources[0] if len(sources) == 1 else None
    out = []
    for i, tag in enumerate(plan.tags):
        name = f"acrrules-{tag.tag}"[: catalog.NSG_NAME_MAX]
        assert _NAME_OK.match(name), name  # tags are [A-Za-z0-9.]; a new tag shape must fail loudly
        label = "acrrules_" + re.sub(r"[^a-z0-9]+", "_", tag.tag.lower())
        out.append(NsgRule(name, label, first_priority + i, tag.tag, describe(tag),
                           single, () if single else tuple(sources)))
    return out


def _limits(plan: RulePlan, target_id: str, first_priority: int) -> list[LimitProblem]:
    n = len(plan.tags)
    problems = []
    if n > catalog.NSG_MAX_RULES:
        problems.append(LimitProblem(("registries",), (
            f"{target_id} needs {n} security rules, but an NSG holds at most {catalog.NSG_MAX_RULES}: "
            "split the description")))
    last = first_priority + n - 1
    if last > catalog.NSG_PRIORITY_MAX:
        problems.append(LimitProblem(("targets", target_id, "priority"), (
            f"{target_id} needs {n} rules with consecutive priorities {first_priority}-{last}, past the "
            f"maximum {catalog.NSG_PRIORITY_MAX}: set targets.{target_id}.priority to at most "
            f"{max(catalog.NSG_PRIORITY_MIN, catalog.NSG_PRIORITY_MAX - n + 1)}")))
    return problems


class NsgArmTarget(Target):
    id = "nsg-arm"
    files = (("nsg.json", "nsg.json.j2"),)
    api_version = "2024-07-01"

    def check(self, plan: RulePlan) -> list[LimitProblem]:
        return _limits(plan, self.id, plan.description.targets.nsg_arm_priority)

    def context(self, plan: RulePlan) -> dict:
        return {"rules": rules(plan, plan.description.targets.nsg_arm_priority), "api_version": self.api_version}


class NsgTfTarget(Target):
    id = "nsg-tf"
    files = (("nsg.tf", "nsg.tf.j2"),)

    def check(self, plan: RulePlan) -> list[LimitProblem]:
        return _limits(plan, self.id, plan.description.targets.nsg_tf_priority)

    def context(self, plan: RulePlan) -> dict:
        s = plan.description.targets
        return {"rules": rules(plan, s.nsg_tf_priority),
                "resource_group_name": s.nsg_tf_resource_group_name,
                "network_security_group_name": s.nsg_tf_network_security_group_name}
