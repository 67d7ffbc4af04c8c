"""nsg-arm and nsg-tf: NSG outbound security rules, one per service tag.

Azure accepts a service tag only in `destinationAddressPrefix` (singular), so
each tag gets its own rule.  A rule's name (`<prefix>-<tag>`) and priority
(`priority` + the tag's fixed slot, catalog.nsg_slot) depend on the tag and
the settings alone: adding or removing a region, a registry or MCR leaves
every other rule as it is, in Azure and in the diff.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

from .. import catalog
from ..plan import RulePlan, TagRule, location_path
from ..render import LimitProblem, Target

_NAME_OK = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_.-]*[A-Za-z0-9_])?$")


class NsgArmSettings(NamedTuple):
    priority: int = 100  # first priority of the block acrrules owns
    name: str = catalog.DEFAULT_NAME  # rule-name prefix; default_settings: the description's name
    resource_group_name: str | None = None  # where nsg.json is deployed: the deletion commands, the clash checks
    network_security_group_name: str | None = None


class NsgTfSettings(NamedTuple):
    priority: int = 100
    name: str = catalog.DEFAULT_NAME
    resource_group_name: str | None = None  # the variables' defaults, when given
    network_security_group_name: str | None = None


_COMMON = {
    "priority": {
        "$ref": "#/$defs/nsgPriority",
        "description": "First priority of the block of "
        f"{catalog.NSG_BLOCK_SIZE} priorities acrrules owns in the NSG (README: the priority block).",
    },
    "name": {
        "$ref": "#/$defs/nsgRulePrefix",
        "description": "Prefix of the rule names (<name>-<service tag>). Default: the description's name.",
    },
}
_RESOURCE_GROUP: dict[str, Any] = {
    "type": "string",
    "pattern": "^[-\\w._()]{0,89}[-\\w_()]$",
    "x-message": "must be 1-90 letters, digits, '-', '_', '.', '(' or ')', and not end "
    "with '.' (Azure resource group names)",
}
ARM_SCHEMA: dict[str, Any] = {
    "description": "NSG outbound security rules, one per service tag, as an ARM deployment template.",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        **_COMMON,
        "resource_group_name": {
            **_RESOURCE_GROUP,
            "description": "The resource group nsg.json is deployed into: named in the commands that delete "
            "rules which left nsg.json, and in the checks across descriptions. Default: nsg-tf's, else unknown.",
        },
        "network_security_group_name": {
            "$ref": "#/$defs/azureName",
            "description": "The NSG nsg.json is deployed into (its networkSecurityGroupName parameter), as "
            "resource_group_name. Default: nsg-tf's, else unknown.",
        },
    },
}
TF_SCHEMA: dict[str, Any] = {
    "description": "The same NSG rules as azurerm_network_security_rule resources (a Terraform module).",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        **_COMMON,
        "resource_group_name": {
            **_RESOURCE_GROUP,
            "description": "Default of the module's resource_group_name variable.",
        },
        "network_security_group_name": {
            "$ref": "#/$defs/azureName",
            "description": "Default of the module's network_security_group_name variable.",
        },
    },
}


class NsgRule(NamedTuple):
    name: str
    label: str  # Terraform resource label: from the tag alone, so addresses never move
    priority: int
    tag: str
    description: str
    source_prefix: str | None  # exactly one of source_prefix / source_prefixes is set
    source_prefixes: tuple[str, ...]


def describe(prefix: str, tag: TagRule, limit: int = catalog.NSG_DESCRIPTION_MAX) -> str:
    return f"{prefix}: {tag.purpose}"[:limit]


def rule_name(prefix: str, tag: str) -> str:
    return f"{prefix}-{tag}"[: catalog.NSG_NAME_MAX]


def rules(plan: RulePlan, first_priority: int, prefix: str) -> list[NsgRule]:
    """The rules in priority order; tags without a slot are left out (check() reports them)."""
    sources = plan.description.sources
    single = sources[0] if len(sources) == 1 else None
    cloud = plan.description.cloud_info
    out = []
    for tag in plan.tags:
        slot = catalog.nsg_slot(cloud, tag.family, tag.region)
        if slot is None:
            continue
        name = rule_name(prefix, tag.tag)
        assert _NAME_OK.match(name), name  # tags are [A-Za-z0-9.]; a new tag shape must fail loudly
        label = "acrrules_" + re.sub(r"[^a-z0-9]+", "_", tag.tag.lower())
        out.append(
            NsgRule(
                name,
                label,
                first_priority + slot,
                tag.tag,
                describe(prefix, tag),
                single,
                () if single else tuple(sources),
            )
        )
    return sorted(out, key=lambda r: r.priority)


def _object_names(s: NsgArmSettings | NsgTfSettings) -> tuple[tuple[str, Any], ...]:
    return (
        ("ruleNames", f"{s.name}-<service tag>"),
        ("priorities", (s.priority, s.priority + catalog.NSG_BLOCK_SIZE - 1)),
    )


def _limits(plan: RulePlan, target_id: str, first_priority: int) -> list[LimitProblem]:
    problems = []
    last = first_priority + catalog.NSG_BLOCK_SIZE - 1
    if last > catalog.NSG_PRIORITY_MAX:
        problems.append(
            LimitProblem(
                ("targets", target_id, "priority"),
                (
                    f"{target_id} owns the priorities {first_priority}-{last} (a block of {catalog.NSG_BLOCK_SIZE}, "
                    f"one fixed slot per service tag), past Azure's maximum {catalog.NSG_PRIORITY_MAX}: set "
                    f"targets.{target_id}.priority to at most {catalog.NSG_PRIORITY_MAX - catalog.NSG_BLOCK_SIZE + 1}"
                ),
            )
        )
    desc = plan.description
    for tag in plan.tags:
        if catalog.nsg_slot(desc.cloud_info, tag.family, tag.region) is None:
            problems.append(
                LimitProblem(
                    location_path(desc, tag.region),
                    (
                        f"{target_id}: location {tag.region!r} is newer than this version of acrrules, so its NSG "
                        f"rules have no fixed priority slot yet: upgrade acrrules, or leave {target_id} out of "
                        "`outputs:` (--target) for now"
                    ),
                )
            )
        elif tag.network_features is not None and "NSG" not in tag.network_features:
            problems.append(
                LimitProblem(
                    location_path(desc, tag.region),
                    (
                        f"{target_id}: the Service Tags file {plan.service_tags_path} does not list NSG in properties.networkFeatures of {tag.tag} "
                        f"({', '.join(tag.network_features) or 'none'}), so Azure refuses it in NSG rules: leave "
                        f"{target_id} out of `outputs:` (--target) for this cloud"
                    ),
                )
            )
    return problems


class DeployedRule(NamedTuple):
    name: str
    priority: int | None
    tag: str | None


class NsgPlace(NamedTuple):
    """The NSG a target's rules are deployed into, as far as the settings say (None: unknown)."""

    resource_group: str | None
    nsg: str | None

    def may_be(self, other: NsgPlace) -> bool:
        """Whether the two may be one NSG: only names both sides give can tell them apart."""
        return all(a is None or b is None or a == b for a, b in zip(self, other, strict=True))


def nsg_place(plan: RulePlan, target_id: str) -> NsgPlace:
    """Where `target_id`'s rules go: its own settings, then, for what they leave unsaid, those of the
    description's other NSG target (nsg-arm and nsg-tf write the same rules)."""
    from . import TARGETS  # the table imports this module

    own = TARGETS[target_id].settings(plan)
    other = TARGETS["nsg-tf" if target_id == "nsg-arm" else "nsg-arm"].settings(plan)
    return NsgPlace(
        own.resource_group_name or other.resource_group_name,
        own.network_security_group_name or other.network_security_group_name,
    )


def delete_command(rule: DeployedRule, place: NsgPlace) -> str:
    """The Azure CLI command that deletes a rule which left nsg.json; RG and NSG stand for what is unknown."""
    import shlex  # only a removal notice needs it: not imported by every run

    rg = shlex.quote(place.resource_group) if place.resource_group else "RG"
    nsg = shlex.quote(place.nsg) if place.nsg else "NSG"
    return f"az network nsg rule delete -g {rg} --nsg-name {nsg} -n {shlex.quote(rule.name)}"


_ARM_RULE_NAME = re.compile(
    r"^\[format\('\{0\}/\{1\}', parameters\('networkSecurityGroupName'\), '((?:[^']|'')*)'\)\]$"
)


def rules_of_template(text: str) -> list[DeployedRule]:
    """The security rules of an nsg.json that acrrules wrote (others' templates: what can be read)."""
    import json

    try:
        doc = json.loads(text)
    except ValueError:
        return []
    out = []
    for res in doc.get("resources", []) if isinstance(doc, dict) else []:
        if not isinstance(res, dict) or res.get("type") != "Microsoft.Network/networkSecurityGroups/securityRules":
            continue
        m = _ARM_RULE_NAME.match(str(res.get("name", "")))
        name = m.group(1).replace("''", "'") if m else str(res.get("name", "")).rsplit("/", 1)[-1]
        props: dict[str, Any] = res["properties"] if isinstance(res.get("properties"), dict) else {}
        prio = props.get("priority")
        out.append(DeployedRule(name, prio if isinstance(prio, int) else None, props.get("destinationAddressPrefix")))
    return out


def removed_rules_of(old_text: str | None, new_text: str | None) -> list[DeployedRule]:
    """Rules of the old nsg.json (its text as write.read_text read it from the output directory:
    None when there is no regular file) that the new one no longer has (nothing when not
    rendering nsg-arm)."""
    if new_text is None or old_text is None:
        return []
    new_names = {r.name for r in rules_of_template(new_text)}
    return [r for r in rules_of_template(old_text) if r.name not in new_names]


class _NsgTarget(Target):
    """What nsg-arm and nsg-tf share: the rule set, its priority block and its name prefix."""

    def default_settings(self, plan: RulePlan) -> dict[str, Any]:
        return {"name": plan.description.name}

    def object_names(self, plan: RulePlan) -> tuple[tuple[str, Any], ...]:
        return _object_names(self.settings(plan))

    def check(self, plan: RulePlan) -> list[LimitProblem]:
        return _limits(plan, self.id, self.settings(plan).priority)


class NsgArmTarget(_NsgTarget):
    id = "nsg-arm"
    files = (("nsg.json", "nsg.json.j2"),)
    api_version = "2024-07-01"
    settings_schema = ARM_SCHEMA
    Settings = NsgArmSettings

    def context(self, plan: RulePlan) -> dict[str, Any]:
        s = self.settings(plan)
        return {"rules": rules(plan, s.priority, s.name), "api_version": self.api_version}


class NsgTfTarget(_NsgTarget):
    id = "nsg-tf"
    files = (("nsg.tf", "nsg.tf.j2"),)
    terraform = True
    settings_schema = TF_SCHEMA
    Settings = NsgTfSettings

    def context(self, plan: RulePlan) -> dict[str, Any]:
        s = self.settings(plan)
        return {
            "rules": rules(plan, s.priority, s.name),
            "resource_group_name": s.resource_group_name,
            "network_security_group_name": s.network_security_group_name,
        }
