"""Checks across descriptions (spec §8): what two descriptions of one repository must not share.

Each description is valid on its own; together they may still collide where their rules meet:
one `name`; NSG priority blocks that overlap on one NSG (or on an NSG the settings do not name,
since the two may be deployed into one); one rule collection group name or priority on a firewall
policy; one nft table, iptables chain or ipset, squid ACL or Kubernetes object on a host or
cluster. The names are the effective ones, as each target derives them from `name` and its
settings (its own `settings`, `object_names` and rule lists), so the check and the rendered
files never disagree.

`check` returns one located Diagnostic per clash, at the later description, naming the earlier
one's location too (`b.acr.yaml:L:C: ... a.acr.yaml:L:C ...`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import NamedTuple

from . import catalog
from . import plan as planning
from .errors import Diagnostic
from .load import KeyPath
from .pipeline import Loaded, checked_targets
from .plan import RulePlan
from .targets import TARGETS
from .targets.azure_firewall import groups
from .targets.iptables import set_names
from .targets.nsg import NsgPlace, nsg_place


class _Claim(NamedTuple):
    """Something a description's rules take, that a second description must not take again."""

    kind: str  # name | nsg | nsg-names | firewall | nft | iptables | squid | k8s
    target: str  # the target id ("" for the name)
    where: tuple[KeyPath, ...]  # where the description says it, most precise first
    explicit: bool  # set in the settings (not derived from `name`)
    value: tuple[object, ...]  # what is taken; its shape depends on kind
    place: NsgPlace | None = None  # nsg, nsg-names: the NSG, as far as known
    cloud: str = ""  # nsg, firewall: Azure resources live in one cloud


def _given(plan: RulePlan, tid: str, key: str) -> bool:
    return key in plan.description.target_data.get(tid, {})


def claims(loaded: Loaded, target_names: Sequence[str] | None = None, plan: RulePlan | None = None) -> list[_Claim]:
    """What this description's chosen targets take (target_names, else its outputs, else every target)."""
    d = loaded.description
    plan = plan if plan is not None else planning.build(d)
    out = [_Claim("name", "", (("name",), ()), "name" in _data(loaded), (d.name,))]
    for tid in checked_targets(d, target_names):
        target = TARGETS[tid]
        s = target.settings(plan)
        base: tuple[KeyPath, ...] = (("targets", tid), ("outputs",), ())
        if tid in ("nsg-arm", "nsg-tf"):
            place = nsg_place(plan, tid)
            first = s.priority
            block = (first, first + catalog.NSG_BLOCK_SIZE - 1)
            out.append(
                _Claim(
                    "nsg",
                    tid,
                    (("targets", tid, "priority"), *base),
                    _given(plan, tid, "priority"),
                    block,
                    place,
                    d.cloud,
                )
            )
            where = (("targets", tid, "name"), ("name",), *base)
            out.append(_Claim("nsg-names", tid, where, _given(plan, tid, "name"), (s.name,), place, d.cloud))
        elif tid == "azure-firewall":
            gs = groups(plan, s)
            names = tuple(g.name for g in gs)
            where = (("targets", tid, "rule_collection_group"), ("name",), *base)
            out.append(
                _Claim("firewall-name", tid, where, _given(plan, tid, "rule_collection_group"), names, None, d.cloud)
            )
            prios = tuple(g.priority for g in gs)
            where = (("targets", tid, "priority"), *base)
            out.append(_Claim("firewall-priority", tid, where, _given(plan, tid, "priority"), prios, None, d.cloud))
        elif tid == "nftables":
            where = (("targets", tid, "table"), ("name",), *base)
            out.append(_Claim("nft", tid, where, _given(plan, tid, "table"), (s.table,)))
        elif tid == "iptables":
            sets = tuple(n for v in (4, 6) for n in set_names(s.chain, v))
            where = (("targets", tid, "chain"), ("name",), *base)
            out.append(_Claim("iptables", tid, where, _given(plan, tid, "chain"), (s.chain, *sets)))
        elif tid == "squid":
            acls = dict(target.object_names(plan))["acls"]
            where = (("targets", tid, "acl_prefix"), ("name",), *base)
            out.append(_Claim("squid", tid, where, _given(plan, tid, "acl_prefix"), tuple(n.lower() for n in acls)))
        elif tid in ("calico", "cilium"):
            objects = dict(target.object_names(plan))
            kind = objects.get("kind", "GlobalNetworkPolicy")  # calico's one policy is global
            where = (("targets", tid, "name"), ("name",), *base)
            value = (kind, objects.get("namespace"), objects["policy"])
            out.append(_Claim("k8s", tid, where, _given(plan, tid, "name"), value))
    return out


def _data(loaded: Loaded) -> dict[str, object]:
    data = loaded.doc.data if loaded.doc is not None else None
    return data if isinstance(data, dict) else {}


def _at(loaded: Loaded, where: tuple[KeyPath, ...]) -> tuple[str, int | None, int | None]:
    """The most precise place the description says it: the first of `where` written in the file."""
    doc = loaded.doc
    if doc is None:
        return loaded.description.source_name, None, None
    for path in where:
        m = doc.written_at(path)
        if m is not None:
            return doc.name, m.line, m.column
    return doc.name, 1, 1


def _label(at: tuple[str, int | None, int | None]) -> str:
    name, line, column = at
    return name if line is None else f"{name}:{line}:{column}"


def _overlap(a: tuple[object, ...], b: tuple[object, ...]) -> tuple[object, ...]:
    return tuple(x for x in a if x in b)


def _clash(a: _Claim, b: _Claim) -> str | None:
    """What is wrong when description B (claim b) comes after description A (claim a), or None."""
    if a.kind != b.kind:
        return None
    if a.kind == "name":
        if a.value != b.value:
            return None
        return (
            f"name: {b.value[0]!r} is also the name of {{other}}: two descriptions with one name would share the "
            "names derived from it (nft table, iptables chain and ipsets, squid ACLs, NSG rule names, rule "
            "collection group, Kubernetes objects): give each description a name of its own"
        )
    if a.kind in ("nsg", "nsg-names"):
        assert a.place is not None and b.place is not None
        if a.cloud != b.cloud or not a.place.may_be(b.place):
            return None
        same = _nsg_words(a.place, b.place)
        if a.kind == "nsg-names":
            if a.value != b.value:
                return None
            return (
                f"targets.{b.target}.name: the rule names {b.value[0]}-<service tag> are also those of {a.target} "
                f"in {{other}}, {same}: one deployment would overwrite the other's rules; set targets.{b.target}.name "
                "(or the description's name) to a prefix of its own"
            )
        (a1, a2), (b1, b2) = a.value, b.value
        assert isinstance(a1, int) and isinstance(a2, int) and isinstance(b1, int) and isinstance(b2, int)
        if a2 < b1 or b2 < a1:
            return None
        free = a2 + 1 if a2 + catalog.NSG_BLOCK_SIZE <= catalog.NSG_PRIORITY_MAX else None
        fix = f"such as priority {free}" if free is not None else "below or above it"
        return (
            f"targets.{b.target}.priority: the NSG priority block {b1}-{b2} overlaps the block {a1}-{a2} of "
            f"{a.target} in {{other}}, {same}: Azure refuses two rules with one priority in an NSG; give one "
            f"of them a block of its own ({fix}), or name different NSGs with resource_group_name and "
            f"network_security_group_name in targets.{b.target}"
        )
    if a.kind in ("firewall-name", "firewall-priority"):
        both = _overlap(a.value, b.value)
        if a.cloud != b.cloud or not both:
            return None
        if a.kind == "firewall-name":
            return (
                f"targets.azure-firewall.rule_collection_group: the rule collection group {both[0]!r} is also "
                "written by {other}: on one firewall policy one would replace the other; set "
                "targets.azure-firewall.rule_collection_group (or the description's name) to a name of its own"
            )
        last = max(x for x in a.value if isinstance(x, int))
        return (
            f"targets.azure-firewall.priority: the rule collection group priority {both[0]} is also used by "
            f"{{other}}: a firewall policy takes each priority once; give one of them another priority (such as "
            f"{last + 1}; a group split in several takes the next priorities too)"
        )
    if (a.value != b.value) if a.kind == "k8s" else not _overlap(a.value, b.value):
        return None  # a Kubernetes object is its kind, namespace and name together; the others: any name shared
    if a.kind == "nft":
        what = f"targets.nftables.table: the nft table inet {b.value[0]} is also the table of {{other}}"
    elif a.kind == "iptables":
        sets = ", ".join(str(v) for v in b.value[1::2])
        what = (
            f"targets.iptables.chain: the iptables chain {b.value[0]} and its ipsets {sets} are also those of {{other}}"
        )
    elif a.kind == "squid":
        acls = ", ".join(str(v) for v in b.value)
        what = f"targets.squid.acl_prefix: the squid ACLs {acls} (squid ignores case) are also those of {{other}}"
    else:
        what = f"targets.{b.target}.name: the {b.value[0]} {_k8s_name(b.value)} is also written by {{other}}"
    key = {"nft": "table", "iptables": "chain", "squid": "acl_prefix", "k8s": "name"}[a.kind]
    where = "on one cluster" if a.kind == "k8s" else "on one host"
    return (
        f"{what}: {where} each would replace the other's rules; set targets.{b.target}.{key} (or the "
        "description's name) to a name of its own"
    )


def _k8s_name(value: tuple[object, ...]) -> str:
    _, namespace, name = value
    return f"{name!r}" if namespace is None else f"{name!r} in namespace {namespace!r}"


def _nsg_words(a: NsgPlace, b: NsgPlace) -> str:
    if None not in a and None not in b:
        return f"on the same NSG ({a.resource_group}/{a.nsg})"
    return (
        "and the settings do not tell the two NSGs apart (resource_group_name, network_security_group_name), so "
        "they may be one"
    )


def check(
    loaded: Sequence[Loaded], target_names: Sequence[str] | None = None, plans: Sequence[RulePlan] | None = None
) -> list[Diagnostic]:
    """Every clash between two of the descriptions, located at the later one and naming the earlier.

    target_names: the targets to check for every description (as `validate --target`); None: each
    description's `outputs:`, else every target. plans: the descriptions' plans when the caller has
    them (built here otherwise)."""
    if len(loaded) < 2:
        return []  # nothing to clash with: a single large description costs no second look at its rules
    all_claims = [claims(x, target_names, plans[i] if plans is not None else None) for i, x in enumerate(loaded)]
    problems: list[Diagnostic] = []
    for j, later in enumerate(loaded):
        for i in range(j):
            earlier = loaded[i]
            if _same_file(earlier, later):
                continue  # one file given twice
            same_name = earlier.description.name == later.description.name
            said: set[tuple[str, object]] = set()  # one problem of each kind per pair
            for b in all_claims[j]:
                for a in all_claims[i]:
                    if same_name and a.kind != "name" and not (a.explicit or b.explicit) and _derived(a.kind):
                        continue  # the name clash says it
                    message = _clash(a, b)
                    if message is None:
                        continue
                    kind = (a.kind, a.value[0] if a.kind == "k8s" else None)
                    if kind in said:
                        continue
                    said.add(kind)
                    text = message.replace("{other}", _label(_at(earlier, a.where)))
                    file, line, column = _at(later, b.where)
                    problems.append(Diagnostic(file, line, column, text))
    return problems


def _same_file(a: Loaded, b: Loaded) -> bool:
    if a.doc is None or b.doc is None:
        return False
    return a.doc.name == b.doc.name or os.path.realpath(a.doc.name) == os.path.realpath(b.doc.name)


def _derived(kind: str) -> bool:
    """Kinds whose default names come from the description's name."""
    return kind not in ("nsg", "firewall-priority")
