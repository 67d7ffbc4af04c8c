"""iptables: `ipset.rules` (ipset restore), `iptables.rules` and `ip6tables.rules`
(iptables-restore / ip6tables-restore).

The prefixes live in two hash:net ipsets, `<CHAIN>_v4` (family inet) and
`<CHAIN>_v6` (family inet6).  A reload creates them if missing (-exist), fills
a temporary set, swaps it in and destroys it: the live set is never empty and
the iptables rules that reference it never break.  The create parameters are
constants, because `create -exist` fails when an existing set differs.

- include mode: `iptables-restore --noflush` with `:<CHAIN> - [0:0]`, which
  creates the chain or empties it if present (verified on iptables 1.8.9
  nf_tables), then appends our rules: nothing else in the table is touched.
- standalone mode: `iptables-restore --noflush` too.  Without --noflush,
  iptables-restore empties the whole filter table before it reads the file
  (the host's INPUT and FORWARD rules and chains included), whatever the file
  says; with it, only what the file names changes.  The file sets OUTPUT's
  policy to DROP, empties OUTPUT (`-F OUTPUT`) and our chain, and fills them:
  INPUT and FORWARD keep their policies and rules, the host's chains stay.
  Standalone owns OUTPUT; without `resolvers` it drops every DNS query, a
  located warning (`warnings`).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from .. import catalog
from ..model import iptables_name
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

# ipset's own defaults; never derived from the prefix count, so that `create -exist`
# on reload always matches the live set (the kernel grows the hash by itself).
IPSET_HASHSIZE = 1024
IPSET_MAXELEM = 65536


class IpsetFamily(NamedTuple):
    version: int
    family: str  # ipset family: inet | inet6
    name: str
    temporary: str
    prefixes: tuple[Prefix, ...]


class IptRules(NamedTuple):
    """One rules file (iptables.rules or ip6tables.rules)."""

    version: int
    set_name: str
    allow: bool  # False when `sources` lists no client of this family
    sources: tuple[str, ...]  # one rule per source; empty = one rule for any source
    resolvers: tuple[str, ...]
    file_name: str
    restore_command: str  # iptables-restore | ip6tables-restore


def set_names(chain: str, version: int) -> tuple[str, str]:
    """(live set, temporary set) of one family; the schema keeps `chain` short enough for ipset's 31 characters."""
    live = f"{chain}_v{version}"
    return live, f"{live}_tmp"


class IptSettings(NamedTuple):
    chain: str = "ACRRULES"  # default_settings: the description's name upper-cased, '-' as '_'
    mode: str = catalog.NETFILTER_MODES[0]
    resolvers: tuple[str, ...] = ()


SETTINGS_SCHEMA: dict[str, Any] = {
    "description": "ipset and iptables-restore files with hash:net sets of the merged prefixes.",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "chain": {
            "type": "string",
            "pattern": "^[A-Za-z][A-Za-z0-9_]{0,19}$",
            "x-message": "must be a letter then at most 19 letters, digits or '_' (iptables allows 28 "
            "characters; acrrules adds suffixes to its set names)",
            "description": "The chain of acrrules (and its ipsets' prefix). Default: the description's name "
            "upper-cased, '-' written '_'.",
        },
        "mode": MODE_SCHEMA,
        "resolvers": RESOLVERS_SCHEMA,
    },
}


class IptablesTarget(Target):
    id = "iptables"
    files = (
        ("ipset.rules", "ipset.rules.j2"),
        ("iptables.rules", "iptables.rules.j2"),
        ("ip6tables.rules", "ip6tables.rules.j2"),
    )
    needs_service_tags = True
    settings_schema = SETTINGS_SCHEMA
    Settings = IptSettings
    address_settings = ("resolvers",)

    def default_settings(self, plan: RulePlan) -> dict[str, Any]:
        return {"chain": iptables_name(plan.description.name)}

    def object_names(self, plan: RulePlan) -> tuple[tuple[str, Any], ...]:
        s = self.settings(plan)
        return (("chain", s.chain), ("ipsets", (set_names(s.chain, 4)[0], set_names(s.chain, 6)[0])), ("mode", s.mode))

    def check(self, plan: RulePlan) -> list[LimitProblem]:
        problems = []
        desc = plan.description
        chain = self.settings(plan).chain
        if chain in catalog.IPTABLES_RESERVED:
            if "chain" in desc.target_data.get(self.id, {}):
                problems.append(
                    LimitProblem(
                        ("targets", "iptables", "chain"),
                        (
                            f"targets.iptables.chain: {chain!r} is a built-in chain, verdict or target of iptables, so "
                            "it cannot name the chain of acrrules: choose another name (the default is the "
                            "description's name, upper-cased)"
                        ),
                    )
                )
            else:
                problems.append(
                    LimitProblem(
                        ("name",),
                        (
                            f"name: {desc.name!r} would name the iptables chain {chain!r}, a built-in chain, verdict or "
                            "target of iptables: choose another name, or set targets.iptables.chain"
                        ),
                    )
                )
        for version in (4, 6) if plan.prefixes is not None else ():  # validate runs without prefixes
            n = len(family_prefixes(plan, version))
            if n > IPSET_MAXELEM:
                problems.append(
                    LimitProblem(
                        ("registries",),
                        (
                            f"iptables: the service tags need {n} IPv{version} prefixes, but an ipset of acrrules holds "
                            f"at most {IPSET_MAXELEM}: split the description or use the nftables target"
                        ),
                    )
                )
        return problems

    def warnings(self, plan: RulePlan) -> list[LimitProblem]:
        return no_resolvers_warning(self.id, plan, self.settings(plan))

    def context(self, plan: RulePlan) -> dict[str, Any]:
        s = self.settings(plan)
        chain = s.chain
        sets, rules = {}, {}
        for version, family in ((4, "inet"), (6, "inet6")):
            live, temporary = set_names(chain, version)
            sets[version] = IpsetFamily(version, family, live, temporary, family_prefixes(plan, version))
            allow, sources = sources_of(plan, version)
            rules[version] = IptRules(
                version,
                live,
                allow,
                sources,
                by_version(s.resolvers, version),
                file_name=self.files[1 if version == 4 else 2][0],
                restore_command="iptables-restore" if version == 4 else "ip6tables-restore",
            )
        return {
            "chain": chain,
            "standalone": s.mode == catalog.NETFILTER_MODES[1],
            "ipset_file": self.files[0][0],
            "sets": [sets[4], sets[6]],
            "v4": rules[4],
            "v6": rules[6],
            "hashsize": IPSET_HASHSIZE,
            "maxelem": IPSET_MAXELEM,
            "dns_port": catalog.DNS_PORT,
            "icmpv6_types": catalog.ICMPV6_LINK_TYPES,
            "tags": tag_lines(plan),
        }
