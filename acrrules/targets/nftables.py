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

"""

from __future__ import annotations

from typing import Any, NamedTuple

from .. import catalog
from ..model import nft_name
from ..plan import Prefix, RulePlan
from ..render import LimitProblem, Target
from .netfilter import MODE_SCHEMA, RESOLVERS_SCHEMA, by_version, chunks, family_prefixes, sources_of, tag_lines

ELEMENTS_PER_LINE = {4: 8, 6: 4}  # keeps long element lists readable; nft accepts any layout

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
    element_lines: tuple[tuple[Prefix, ...], ...]  # the set's prefixes, chunked for layout
    prefix_count: int
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
        table = self.settings(plan).table
        if table not in catalog.NFT_KEYWORDS:
            return []
        if "table" in desc.target_data.get(self.id, {}):
            return [
                LimitProblem(
                    ("targets", "nftables", "table"),
                    (
                        f"targets.nftables.table: {table!r} is an nft keyword, which nft does not accept as a table "
                        f"name: choose another name, such as 'acr_{table}'"
                    ),
                )
            ]
        return [
            LimitProblem(
                ("name",),
                (
                    f"name: {desc.name!r} would name the nft table {table!r}, an nft keyword that nft does not accept "
                    f"as a table name: choose another name, or set targets.nftables.table (such as 'acr_{table}')"
                ),
            )
        ]

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
                    element_lines=chunks(prefixes, ELEMENTS_PER_LINE[version]),
                    prefix_count=len(prefixes),
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
