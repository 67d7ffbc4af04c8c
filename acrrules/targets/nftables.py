"""nftables: one `inet` table, loaded with `nft -f acrrules.nft`.

The table holds two interval sets (the merged IPv4 and IPv6 prefixes of the
plan's service tags) and a regular chain `acr_allow` accepting TCP 443 to them.

A load never deletes or replaces a table, in either mode: it re-declares the
table and acrrules' own objects (names starting `acr_`) idempotently, empties
and refills only those, in one transaction.  Whatever else the table holds and
every other table survive, so a name that clashes with a table of the host can
never take the host's inbound policy with it.

- include mode changes no traffic by itself: a host adds its own base chain to
  our table (nft cannot jump across tables) and jumps to `acr_allow`.  A load
  also removes the standalone base chain `acr_egress` if an earlier standalone
  file left it.
- standalone mode adds `acr_egress`, an output hook with policy drop (it is
  removed and defined again on each load).  A standalone table must be
  acrrules' own: the names of the host's and the distributions' tables
  (catalog.NFT_HOST_TABLES) are refused, located, as are tables a daemon
  rebuilds (catalog.NFT_TOOL_TABLES) in both modes.  Without `resolvers` the
  policy drops every DNS query: a located warning (`warnings`).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from .. import catalog
from ..model import nft_name
from ..plan import Prefix, RulePlan
from ..render import LimitProblem, Target
from .netfilter import (
    MODE_SCHEMA,
    RESOLVERS_SCHEMA,
    by_version,
    family_prefixes,
    no_resolvers_warning,
    sources_of,
    tag_lines,
)

# One set element per line: one changed prefix is one changed line in a diff (nft accepts any layout).

SET_V4 = "acr_v4"
SET_V6 = "acr_v6"
ALLOW_CHAIN = "acr_allow"
EGRESS_CHAIN = "acr_egress"  # standalone only


class NftFamily(NamedTuple):
    """One address family of the table: its set and the rules that use it."""

    version: int  # 4 or 6
    match: str  # nft payload keyword: ip | ip6
    set_name: str
    set_type: str  # ipv4_addr | ipv6_addr
    prefixes: tuple[Prefix, ...]  # the set's elements, one per line
    allow: bool  # False when `sources` lists no client of this family
    sources: tuple[str, ...]  # empty = any source
    resolvers: tuple[str, ...]  # DNS servers the host may query (standalone)


class NftSettings(NamedTuple):
    table: str = catalog.DEFAULT_NAME  # default_settings: the description's name, '-' as '_'
    mode: str = catalog.NETFILTER_MODES[0]
    resolvers: tuple[str, ...] = ()


SETTINGS_SCHEMA: dict[str, Any] = {
    "description": "An nftables file (nft -f) with interval sets of the merged prefixes.",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "table": {
            "$ref": "#/$defs/netfilterName",
            "description": "The inet table of acrrules. Default: the description's name, '-' written '_'.",
        },
        "mode": MODE_SCHEMA,
        "resolvers": RESOLVERS_SCHEMA,
    },
}


class NftablesTarget(Target):
    id = "nftables"
    files = (("acrrules.nft", "acrrules.nft.j2"),)
    needs_service_tags = True
    settings_schema = SETTINGS_SCHEMA
    Settings = NftSettings
    address_settings = ("resolvers",)

    def default_settings(self, plan: RulePlan) -> dict[str, Any]:
        return {"table": nft_name(plan.description.name)}

    def object_names(self, plan: RulePlan) -> tuple[tuple[str, Any], ...]:
        s = self.settings(plan)
        return (("table", f"inet {s.table}"), ("sets", (SET_V4, SET_V6)), ("chain", ALLOW_CHAIN), ("mode", s.mode))

    def check(self, plan: RulePlan) -> list[LimitProblem]:
        desc = plan.description
        s = self.settings(plan)
        table = s.table
        given = "table" in desc.target_data.get(self.id, {})
        where: tuple[str, ...] = ("targets", "nftables", "table") if given else ("name",)
        what = (
            f"targets.nftables.table: {table!r}"
            if given
            else f"name: {desc.name!r} would name the nft table {table!r}, and {table!r}"
        )
        fix = (
            f"choose another name, such as 'acr_{table}'"
            if given
            else f"choose another name, or set targets.nftables.table (such as 'acr_{table}')"
        )
        if table in catalog.NFT_KEYWORDS:
            keyword = (
                f"targets.nftables.table: {table!r} is an nft keyword, which nft does not accept as a table name"
                if given
                else f"name: {desc.name!r} would name the nft table {table!r}, an nft keyword that nft does not "
                "accept as a table name"
            )
            return [LimitProblem(where, f"{keyword}: {fix}")]
        if table in catalog.NFT_TOOL_TABLES:
            return [
                LimitProblem(
                    where,
                    f"{what} is the nft table of a firewall daemon (firewalld, OpenWrt fw4, LXD, Incus, netavark, "
                    f"libvirt, CrowdSec), which rebuilds it on its own reload and drops acrrules' objects: {fix}",
                )
            ]
        if table in catalog.NFT_HOST_TABLES and s.mode == catalog.NETFILTER_MODES[1]:
            return [
                LimitProblem(
                    where,
                    f"{what} is a table of the host's own firewall (iptables-nft's and the distributions' "
                    f"`filter`, `nat`, ...), but a standalone egress policy needs a table of its own: {fix} "
                    "(or use mode include to add acrrules' sets and chain to the host's table)",
                )
            ]
        return []

    def warnings(self, plan: RulePlan) -> list[LimitProblem]:
        return no_resolvers_warning(self.id, plan, self.settings(plan))

    def context(self, plan: RulePlan) -> dict[str, Any]:
        s = self.settings(plan)
        families = []
        for version, match, set_name, set_type in ((4, "ip", SET_V4, "ipv4_addr"), (6, "ip6", SET_V6, "ipv6_addr")):
            prefixes = family_prefixes(plan, version)
            allow, sources = sources_of(plan, version)
            families.append(
                NftFamily(
                    version=version,
                    match=match,
                    set_name=set_name,
                    set_type=set_type,
                    prefixes=prefixes,
                    allow=allow,
                    sources=sources,
                    resolvers=by_version(s.resolvers, version),
                )
            )
        return {
            "table": s.table,
            "standalone": s.mode == catalog.NETFILTER_MODES[1],
            "families": families,
            "allow_chain": ALLOW_CHAIN,
            "egress_chain": EGRESS_CHAIN,
            "dns_port": catalog.DNS_PORT,
            "icmpv6_types": catalog.ICMPV6_LINK_TYPES,
            "tags": tag_lines(plan),
        }
