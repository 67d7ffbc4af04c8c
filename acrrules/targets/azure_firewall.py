"""azure-firewall: an azurerm_firewall_policy_rule_collection_group (Terraform).

Application rules allow HTTPS to the FQDNs: one rule per registry (login, data
and regional endpoints), one for the endpoints all registries share
(certificate download, storage wildcard) and one for MCR.  Optionally a
network rule collection allows TCP 443 to the service tags.

Azure limits a rule collection group to 2 MB; a plan that would exceed it is
split into several groups with consecutive priorities, up to the number of
groups a policy may hold.
"""

from __future__ import annotations

import ipaddress
import json
import re
from typing import Any, NamedTuple

from .. import catalog
from ..plan import RulePlan
from ..render import LimitProblem, Target

# Leave room for what Azure adds to our rules when it measures the group.
SIZE_BUDGET = int(catalog.FIREWALL_RCG_MAX_BYTES * 0.9)


class FirewallSettings(NamedTuple):
    rule_collection_group: str = catalog.DEFAULT_NAME  # default_settings: the description's name
    priority: int = 500
    collection_priority: int = 100
    network_rules: bool = False


_PRIORITY = {"type": "integer", "minimum": catalog.FIREWALL_PRIORITY_MIN, "maximum": catalog.FIREWALL_PRIORITY_MAX}
SETTINGS_SCHEMA: dict[str, Any] = {
    "description": "Azure Firewall Policy application rules (and optionally network rules) as Terraform.",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "rule_collection_group": {
            "$ref": "#/$defs/azureName",
            "description": "Name of the rule collection group. Default: the description's name.",
        },
        "priority": {
            **_PRIORITY,
            "default": FirewallSettings().priority,
            "description": "Priority of the rule collection group (the next ones, when split, follow it).",
        },
        "collection_priority": {
            **_PRIORITY,
            "default": FirewallSettings().collection_priority,
            "description": "Priority of the application rule collection (network rules: +1).",
        },
        "network_rules": {
            "description": "Also emit a network rule collection allowing TCP 443 to the service tags "
            "(opens whole service tags; see README).",
            "type": "boolean",
            "default": FirewallSettings().network_rules,
        },
    },
}


class AppRule(NamedTuple):
    name: str
    description: str
    fqdns: tuple[str, ...]


class NetRule(NamedTuple):
    name: str
    description: str
    tags: tuple[str, ...]


class Collection(NamedTuple):
    name: str
    priority: int
    rules: tuple[AppRule, ...] | tuple[NetRule, ...]


class Group(NamedTuple):
    label: str  # Terraform resource label
    name: str  # Azure name of the rule collection group
    priority: int
    app_collections: tuple[Collection, ...]
    net_collections: tuple[Collection, ...]


def _regions_text(kind: str, regions: list[str], room: int) -> str:
    text = f"{kind} in {', '.join(regions)}"
    return text if len(text) <= room or len(regions) == 1 else f"{kind} in {len(regions)} regions"


def app_rules(plan: RulePlan) -> list[AppRule]:
    by_registry: dict[str, list[str]] = {reg.name: [] for reg in plan.description.registries}
    shared: list[str] = []
    mcr: list[str] = []
    kinds: set[str] = set()
    for fqdn, kind, registry, _, _ in plan.endpoints:  # (a large plan has a million endpoints)
        if registry is not None:
            by_registry[registry].append(fqdn)
        elif kind in ("mcr", "mcr-data"):
            mcr.append(fqdn)
        else:
            shared.append(fqdn)
            kinds.add(kind)
    name = plan.description.name
    cloud = plan.description.cloud_info
    rules = []
    for reg in plan.description.registries:  # description order: what the user wrote
        parts = ["login server"]
        regions = list(reg.regions)
        if reg.uses_dedicated_data:
            parts.append(_regions_text("dedicated data endpoints", regions, 90))
        if reg.regional_endpoints:
            parts.append(_regions_text("regional endpoints", regions, 90))
        rules.append(
            AppRule(
                f"acr-{reg.name}", f"Registry {reg.name}: " + "; ".join(parts), tuple(sorted(by_registry[reg.name]))
            )
        )
    shared_parts = [f"certificate download ({cloud.login_suffix})"]
    if "storage" in kinds:
        shared_parts.append(f"layer blobs in Azure Storage ({cloud.storage_wildcard})")
    rules.append(
        AppRule(f"{name}-shared", "Shared by the registries: " + "; ".join(shared_parts), tuple(sorted(shared)))
    )
    if mcr:
        rest, data = cloud.mcr_fqdns
        rules.append(
            AppRule(
                f"{name}-mcr", f"Microsoft Container Registry: REST API ({rest}) and data ({data})", tuple(sorted(mcr))
            )
        )
    return rules


def net_rules(plan: RulePlan) -> list[NetRule]:
    name = plan.description.name
    return [NetRule(f"{name}-{t.tag}", f"TCP {catalog.PORT} to {t.tag}: {t.purpose}", (t.tag,)) for t in plan.tags]


def _body(rule: AppRule | NetRule, sources: tuple[str, ...]) -> dict[str, Any]:
    """The rule as Azure stores it (its ARM JSON), which is what the 2 MB limit counts."""
    if isinstance(rule, AppRule):
        return {
            "ruleType": "ApplicationRule",
            "name": rule.name,
            "description": rule.description,
            "protocols": [{"protocolType": "Https", "port": catalog.PORT}],
            "sourceAddresses": list(sources),
            "targetFqdns": list(rule.fqdns),
            "sourceIpGroups": [],
            "fqdnTags": [],
            "webCategories": [],
            "targetUrls": [],
            "terminateTLS": False,
            "destinationAddresses": [],
            "httpHeadersToInsert": [],
        }
    return {
        "ruleType": "NetworkRule",
        "name": rule.name,
        "description": rule.description,
        "ipProtocols": ["TCP"],
        "sourceAddresses": list(sources),
        "destinationAddresses": list(rule.tags),
        "destinationPorts": [str(catalog.PORT)],
        "sourceIpGroups": [],
        "destinationIpGroups": [],
        "destinationFqdns": [],
    }


def _size(rule: AppRule | NetRule, sources: tuple[str, ...]) -> int:
    """Bytes of _body(rule) as JSON."""
    return len(json.dumps(_body(rule, sources)))


class _Sizer:
    """_size for many rules of one description: the JSON of everything but a rule's name, description
    and FQDNs (or tags) is the same for every rule of a kind, so it is measured once, and each rule
    adds the JSON of its own three values (a large description has 100,000 rules)."""

    def __init__(self, sources: tuple[str, ...]):
        self.sources = sources
        self.base: dict[type, int] = {}

    def __call__(self, rule: AppRule | NetRule) -> int:
        values = rule.fqdns if isinstance(rule, AppRule) else rule.tags
        base = self.base.get(type(rule))
        if base is None:  # the JSON with empty strings and an empty list in the rule's own places
            empty = rule._replace(name="", description="", **{"fqdns" if isinstance(rule, AppRule) else "tags": ()})
            base = self.base[type(rule)] = _size(empty, self.sources) - 3 * 2
        # The name, the description and the list of values, each as JSON: a string is its text and
        # quotes; a list of k strings adds k - 1 separators ", " and its brackets.
        brackets_and_separators = 2 * len(values) or 2
        text = rule.name + rule.description + "".join(values)
        if _JSON_AS_IS.fullmatch(text):  # the usual rule: one check in C instead of an encoder call
            return base + len(text) + 2 * (2 + len(values)) + brackets_and_separators
        parts = (rule.name, rule.description, *values)
        return base + sum(len(json.dumps(p)) for p in parts) + brackets_and_separators


# What JSON writes as it is: printable ASCII but `"` and `\`.
_JSON_AS_IS = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]*")


def groups(plan: RulePlan, s: FirewallSettings) -> list[Group]:
    name = plan.description.name
    sources = plan.description.sources
    rules: list[AppRule | NetRule] = list(app_rules(plan))
    if s.network_rules:
        rules += net_rules(plan)
    # Greedy packing in rule order: deterministic, and a small plan stays one group.
    packed: list[list[AppRule | NetRule]] = [[]]
    used = 0
    size_of = _Sizer(sources)
    for r in rules:
        size = size_of(r)
        if packed[-1] and used + size > SIZE_BUDGET:
            packed.append([])
            used = 0
        packed[-1].append(r)
        used += size
    out = []
    for i, chunk in enumerate(packed):
        suffix = "" if len(packed) == 1 else f"-{i + 1}"
        apps = tuple(r for r in chunk if isinstance(r, AppRule))
        nets = tuple(r for r in chunk if isinstance(r, NetRule))
        app_c = (Collection(f"{name}-fqdn{suffix}", s.collection_priority, apps),) if apps else ()
        net_c = (Collection(f"{name}-servicetags{suffix}", s.collection_priority + 1, nets),) if nets else ()
        # The resource label is fixed (each --out DIR is its own module), so addresses never move.
        out.append(
            Group(
                label="acrrules" + suffix.replace("-", "_"),
                name=s.rule_collection_group + suffix,
                priority=s.priority + i,
                app_collections=app_c,
                net_collections=net_c,
            )
        )
    return out


class AzureFirewallTarget(Target):
    id = "azure-firewall"
    files = (("azure-firewall.tf", "azure-firewall.tf.j2"),)
    terraform = True
    settings_schema = SETTINGS_SCHEMA
    Settings = FirewallSettings

    def default_settings(self, plan: RulePlan) -> dict[str, Any]:
        return {"rule_collection_group": plan.description.name}

    def object_names(self, plan: RulePlan) -> tuple[tuple[str, Any], ...]:
        s = self.settings(plan)
        return (("ruleCollectionGroup", s.rule_collection_group), ("priority", s.priority))

    def check(self, plan: RulePlan) -> list[LimitProblem]:
        s = self.settings(plan)
        problems = []
        gs = groups(plan, s)
        if len(gs) > catalog.FIREWALL_MAX_RCGS:
            problems.append(
                LimitProblem(
                    ("registries",),
                    (
                        f"the Azure Firewall rules need {len(gs)} rule collection groups (each planned to at most "
                        f"{SIZE_BUDGET // 1024} KiB, 90% of Azure's 2 MB limit), but a "
                        f"policy holds at most {catalog.FIREWALL_MAX_RCGS}: split the description into several files "
                        "or use fewer `sources`"
                    ),
                )
            )
        last = s.priority + len(gs) - 1
        if last > catalog.FIREWALL_PRIORITY_MAX:
            problems.append(
                LimitProblem(
                    ("targets", "azure-firewall", "priority"),
                    (
                        f"the rules need {len(gs)} rule collection groups with priorities {s.priority}-{last}, "
                        f"past the maximum {catalog.FIREWALL_PRIORITY_MAX}: lower targets.azure-firewall.priority"
                    ),
                )
            )
        if s.collection_priority + 1 > catalog.FIREWALL_PRIORITY_MAX and s.network_rules:
            problems.append(
                LimitProblem(
                    ("targets", "azure-firewall", "collection_priority"),
                    (
                        f"the network rule collection takes priority collection_priority + 1, past the maximum "
                        f"{catalog.FIREWALL_PRIORITY_MAX}: lower targets.azure-firewall.collection_priority"
                    ),
                )
            )
        if not catalog.FIREWALL_SUPPORTS_IPV6:
            for i, src in enumerate(plan.description.sources):
                if src != "*" and ipaddress.ip_network(src, strict=False).version == 6:
                    problems.append(
                        LimitProblem(
                            ("sources", i),
                            (
                                f"Azure Firewall does not support IPv6 sources ({src}): remove it, or leave "
                                "azure-firewall out of `outputs:` (--target) for this dual-stack description"
                            ),
                        )
                    )
        if s.network_rules:
            no_fw = [t.tag for t in plan.tags if t.network_features is not None and "FW" not in t.network_features]
            if no_fw:
                shown = ", ".join(no_fw[:3]) + (f" and {len(no_fw) - 3} more" if len(no_fw) > 3 else "")
                problems.append(
                    LimitProblem(
                        ("targets", "azure-firewall", "network_rules"),
                        (
                            f"azure-firewall: the Service Tags file {plan.service_tags_path} does not list FW in "
                            f"properties.networkFeatures of {shown}, so Azure Firewall network rules cannot use "
                            f"{'them' if len(no_fw) > 1 else 'it'}: set network_rules: false (the application rules "
                            "still allow every endpoint)"
                        ),
                    )
                )
            unique = len(set(plan.description.sources)) + len(plan.tags)
            if unique > catalog.FIREWALL_MAX_NETWORK_UNIQUE:
                problems.append(
                    LimitProblem(
                        ("sources",),
                        (
                            f"network rules would use {unique} unique sources and destinations; Azure Firewall allows "
                            f"{catalog.FIREWALL_MAX_NETWORK_UNIQUE}: use fewer sources or turn network_rules off"
                        ),
                    )
                )
        return problems

    def context(self, plan: RulePlan) -> dict[str, Any]:
        return {"groups": groups(plan, self.settings(plan)), "sources": list(plan.description.sources)}
