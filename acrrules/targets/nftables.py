"""nftables: one `inet` table of acrrules' own, loaded with `nft -f acrrules.nft`.

The table holds two interval sets (the merged IPv4 and IPv6 prefixes of the
plan's service tags) and a regular chain `acr_allow` accepting TCP 443 to them.

- include mode changes no traffic by itself: a host adds its own base chain to
  our table (nft cannot jump across tables) and jumps to `acr_allow`.  A reload
  re-declares our objects idempotently, flushes and refills only them, in one
  transaction, so the host's chains in the table survive.  It also removes the
  standalone base chain `acr_egress` if an earlier standalone file left it.
- standalone mode owns the whole table: it deletes and re-creates it (the
  host's chains in it go too) and adds `acr_egress`, an output hook with policy
  drop.

The helpers at the bottom are shared with the iptables target.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Iterable

from .. import catalog
from ..plan import RulePlan
from ..render import Target

DNS_PORT = 53
# ICMPv6 the kernel itself must send for IPv6 to work at all (router and neighbour
# discovery, MLDv2 reports for the solicited-node groups): conntrack does not track
# them, so "established,related" never matches them.
ICMPV6_LINK_TYPES = (133, 135, 136, 143)
ELEMENTS_PER_LINE = {4: 8, 6: 4}   # keeps long element lists readable; nft accepts any layout

SET_V4 = "acr_v4"
SET_V6 = "acr_v6"
ALLOW_CHAIN = "acr_allow"
EGRESS_CHAIN = "acr_egress"  # standalone only


@dataclass(frozen=True)
class NftFamily:
    """One address family of the table: its set and the rules that use it."""

    version: int                    # 4 or 6
    match: str                      # nft payload keyword: ip | ip6
    set_name: str
    set_type: str                   # ipv4_addr | ipv6_addr
    element_lines: tuple[tuple[str, ...], ...]   # the set's prefixes, chunked for layout
    count: int
    allow: bool                     # False when `sources` lists no client of this family
    sources: tuple[str, ...]        # empty = any source
    resolvers: tuple[str, ...]      # DNS servers the host may query (standalone)


def chunks(items: Iterable, size: int) -> tuple[tuple, ...]:
    items = tuple(items)
    return tuple(items[i:i + size] for i in range(0, len(items), size))


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


def family_prefixes(plan: RulePlan, version: int) -> tuple[str, ...]:
    assert plan.prefixes is not None, "the nftables and iptables targets need a Service Tags file"
    nets = plan.prefixes.v4 if version == 4 else plan.prefixes.v6
    return tuple(str(n) for n in nets)


def tag_lines(plan: RulePlan) -> list[str]:
    """`tag (changeNumber n)` for each tag behind the prefixes, for the header."""
    assert plan.prefixes is not None
    return [f"{tag} (changeNumber {change})" for tag, change in plan.prefixes.tag_change_numbers]


class NftablesTarget(Target):
    id = "nftables"
    files = (("acrrules.nft", "acrrules.nft.j2"),)
    needs_service_tags = True

    def context(self, plan: RulePlan) -> dict:
        s = plan.description.targets
        families = []
        for version, match, set_name, set_type in ((4, "ip", SET_V4, "ipv4_addr"), (6, "ip6", SET_V6, "ipv6_addr")):
            prefixes = family_prefixes(plan, version)
            allow, sources = sources_of(plan, version)
            families.append(NftFamily(
                version=version, match=match, set_name=set_name, set_type=set_type,
                element_lines=chunks(prefixes, ELEMENTS_PER_LINE[version]), count=len(prefixes),
                allow=allow, sources=sources, resolvers=by_version(s.nft_resolvers, version)))
        return {
            "table": s.nft_table,
            "standalone": s.nft_mode == "standalone",
            "families": families,
            "allow_chain": ALLOW_CHAIN,
            "egress_chain": EGRESS_CHAIN,
            "port": int(catalog.PORT),
            "dns_port": DNS_PORT,
            "icmpv6_types": ICMPV6_LINK_TYPES,
            "tags": tag_lines(plan),
        }
