"""What the nftables and iptables targets share: prefixes and addresses per IP version."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any, TypeVar

from .. import catalog
from ..plan import Prefix, RulePlan
from ..render import LimitProblem

T = TypeVar("T")


# Settings both netfilter targets take.
MODE_SCHEMA: dict[str, Any] = {
    "enum": list(catalog.NETFILTER_MODES),
    "default": catalog.NETFILTER_MODES[0],
    "description": "include: sets and a chain for the host's own rules to use; standalone: a complete egress "
    "policy (policy drop).",
}
RESOLVERS_SCHEMA: dict[str, Any] = {
    "$ref": "#/$defs/resolvers",
    "description": "DNS resolvers the host may query (standalone mode).",
}


def chunks(items: Iterable[T], size: int) -> tuple[tuple[T, ...], ...]:
    seq = tuple(items)
    return tuple(seq[i : i + size] for i in range(0, len(seq), size))


def by_version(addresses: Iterable[str], version: int) -> tuple[str, ...]:
    """The addresses/networks of one IP version, canonical, in the order given."""
    out = []
    for a in addresses:
        net = ipaddress.ip_network(a, strict=True)
        if net.version == version:
            out.append(str(net) if "/" in a else str(net.network_address))
    return tuple(out)


def sources_of(plan: RulePlan, version: int) -> tuple[bool, tuple[str, ...]]:
    """(allow at all, source networks): `*` allows any source; else only the listed clients of that family."""
    sources = plan.description.sources
    if tuple(sources) == ("*",):
        return True, ()
    mine = by_version(sources, version)
    return bool(mine), mine


def family_prefixes(plan: RulePlan, version: int) -> tuple[Prefix, ...]:
    """The plan's merged prefixes of one IP version."""
    assert plan.prefixes is not None, "the nftables and iptables targets need a Service Tags file"
    return plan.prefixes.v4_prefixes if version == 4 else plan.prefixes.v6_prefixes


def tag_lines(plan: RulePlan) -> list[str]:
    """`tag (changeNumber n)` for each tag behind the prefixes, for the header."""
    assert plan.prefixes is not None
    return [f"{tag} (changeNumber {change})" for tag, change in plan.prefixes.tag_change_numbers]


def no_resolvers_warning(target_id: str, plan: RulePlan, settings: Any) -> list[LimitProblem]:
    """Standalone mode without `resolvers`: the egress policy drops every DNS query of the host."""
    if settings.mode != catalog.NETFILTER_MODES[1] or settings.resolvers:
        return []
    return [
        LimitProblem(
            ("targets", target_id, "mode"),
            (
                f"targets.{target_id}.mode: standalone without resolvers drops every DNS query this host sends "
                "(the policy allows DNS to the resolvers only), so the registries' names stop resolving: list the "
                f"host's DNS servers in targets.{target_id}.resolvers (see /etc/resolv.conf; with "
                "systemd-resolved, its upstream servers: resolvectl dns)"
            ),
        )
    ]
