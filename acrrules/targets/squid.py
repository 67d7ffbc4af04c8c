"""squid: an allowlist for a Squid forward proxy, and the NO_PROXY value for private-link registries.

`acrrules-squid.conf` is meant for `include` in squid.conf, before its `http_access deny all`.  It
defines ACLs of its own, named `<acl_prefix>_*` (default: the description's `name`), and one line,
`http_access allow <p>_connect <p>_port [<p>_src] <p>_dst`: CONNECT, to TCP 443, from `sources`, to the
endpoints.  It defines its own port and method ACLs instead of relying on the `SSL_ports` and `CONNECT`
of the host's squid.conf, which admins extend (SSL_ports often holds 8443 too).  It denies nothing:
what it does not allow falls through to the host's rules that follow the include.

dstdomain entries: every endpoint FQDN, a wildcard `*.x` written `.x` (Squid: x and every name under
it).  An entry another entry covers is left out: Squid 5.7 warns and drops `a.x` after `.x`, and refuses
to start on `x` next to `.x` or on `a.x` before `.x`.  `src` entries: `sources` without the networks
another one covers (Squid warns and drops those too), `0.0.0.0/0` as its two halves (Squid reads it as
`all`, IPv6 clients included); `["*"]` means no src ACL at all.

`no_proxy.txt` is the comma-separated NO_PROXY value for clients (Docker, containerd, IoT Edge) that
reach private-link registries directly: the login, data and regional FQDNs of every registry with
`private_link: true`, nothing else (never MCR, never the storage wildcard, never the bare login suffix,
which as a NO_PROXY entry would send every registry of the cloud around the proxy).  It is the value
only, with no comment line (see docs/targets.md: which plain files carry a header).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any, ClassVar, NamedTuple

from .. import catalog
from ..escape import EscapeError, squid_acl_name
from ..plan import RulePlan
from ..render import LimitProblem, Target, unwritable_registry_names

# The endpoint kinds a private-link registry's clients reach over its private endpoint.
PRIVATE_LINK_KINDS = frozenset({"login", "data", "regional"})
ACL_SUFFIXES = ("dst", "src", "port", "connect")
ACL_PREFIX_PATTERN = r"^[A-Za-z][A-Za-z0-9_-]{0,31}$"
# Squid compares every client address as IPv6, an IPv4 client as its IPv4-mapped form: an IPv6 src entry
# that reaches into this network matches IPv4 clients too (`src ::/50` lets 127.0.0.1 through).
IPV4_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")
# Linux takes at most MAX_ARG_STRLEN (32 pages) for one environment string such as NO_PROXY=...: a longer
# one makes every exec that passes the environment fail with E2BIG.
ENV_STRING_MAX = 131072


class SquidSettings(NamedTuple):
    acl_prefix: str = catalog.DEFAULT_NAME  # default_settings: the description's name


class AclNames(NamedTuple):
    dst: str
    src: str
    port: str
    connect: str


def acl_names(prefix: str) -> AclNames:
    return AclNames(*(f"{prefix}_{suffix}" for suffix in ACL_SUFFIXES))


def dstdomains(fqdns: Iterable[str]) -> tuple[str, ...]:
    """The dstdomain entries for these FQDNs: `*.x` as `.x`, none that another covers, sorted."""
    entries = {("." + f[2:] if f.startswith("*.") else f).lower() for f in fqdns}

    def covered(entry: str) -> bool:
        labels = entry.lstrip(".").split(".")
        wildcards = ("." + ".".join(labels[i:]) for i in range(len(labels)))
        return any(w != entry and w in entries for w in wildcards)

    return tuple(sorted(e for e in entries if not covered(e)))


def src_entries(sources: Iterable[str]) -> tuple[str, ...]:
    """`sources` for a src ACL: none for ["*"]; else without the networks another one covers,
    IPv4 then IPv6, by address (hosts written as addresses, networks as CIDRs)."""
    sources = tuple(sources)
    if sources == ("*",):
        return ()
    nets = sorted(
        ((ipaddress.ip_network(s, strict=True), "/" in s) for s in sources),
        key=lambda n: (n[0].version, int(n[0].network_address), n[0].prefixlen),
    )
    kept: list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, bool]] = []
    for net, is_cidr in nets:  # by (version, address, length): only the last kept one can cover the next
        last = kept[-1][0] if kept else None
        if last is not None and last.version == net.version and net.subnet_of(last):  # type: ignore[arg-type]
            continue
        kept.append((net, is_cidr))
    out: list[str] = []
    for net, is_cidr in kept:
        if net == EVERY_IPV4:
            # Squid reads `src 0.0.0.0/0` as `all` ("needs to be replaced by the term 'all'"), which
            # lets IPv6 clients through too: the two halves mean every IPv4 client and nothing more.
            out += ["0.0.0.0/1", "128.0.0.0/1"]
        else:
            out.append(str(net) if is_cidr else str(net.network_address))
    return tuple(out)


EVERY_IPV4 = ipaddress.IPv4Network("0.0.0.0/0")


def no_proxy_hosts(plan: RulePlan) -> tuple[str, ...]:
    """The login, data and regional FQDNs of the private-link registries, sorted."""
    private = {r.name for r in plan.description.registries if r.private_link}
    return tuple(
        sorted({e.fqdn.lower() for e in plan.endpoints if e.registry in private and e.kind in PRIVATE_LINK_KINDS})
    )


class SquidTarget(Target):
    id = "squid"
    files = (("acrrules-squid.conf", "acrrules-squid.conf.j2"), ("no_proxy.txt", "no_proxy.txt.j2"))
    plain_files = ("no_proxy.txt",)  # the value of an environment variable: no room for a comment
    settings_schema: ClassVar[dict[str, Any]] = {
        "description": "Squid forward proxy: acrrules-squid.conf (ACLs and one http_access line, for `include` "
        "in squid.conf) and no_proxy.txt (the NO_PROXY value for private-link registries).",
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "acl_prefix": {
                "description": "Prefix of the ACL names: <prefix>_dst, <prefix>_src, <prefix>_port, "
                "<prefix>_connect. Default: the description's name. Squid compares ACL names "
                "ignoring case: two rule sets in one squid need prefixes that differ in more "
                "than case.",
                "type": "string",
                "pattern": ACL_PREFIX_PATTERN,
                "x-message": "must be a letter followed by at most 31 letters, digits, '_' or '-' (squid ACL names)",
            },
        },
    }
    Settings = SquidSettings

    def object_names(self, plan: RulePlan) -> tuple[tuple[str, Any], ...]:
        return (("acls", tuple(acl_names(self.settings(plan).acl_prefix))),)

    def default_settings(self, plan: RulePlan) -> dict[str, Any]:
        return {"acl_prefix": plan.description.name}

    def check(self, plan: RulePlan) -> list[LimitProblem]:
        """What squid.conf and NO_PROXY cannot hold: checked here for descriptions built through the
        API, which are not validated, and for IPv6 sources squid would also match IPv4 clients with."""
        problems = []
        prefix = self.settings(plan).acl_prefix
        try:
            for name in acl_names(prefix):
                squid_acl_name(name)
        except EscapeError:
            problems.append(
                LimitProblem(
                    ("targets", self.id, "acl_prefix"),
                    (
                        f"targets.squid.acl_prefix: {prefix!r} cannot name squid ACLs: use a letter followed by at most "
                        "31 letters, digits, '_' or '-'"
                    ),
                )
            )
        for i, source in enumerate(plan.description.sources):
            try:
                net = ipaddress.ip_network(source, strict=False) if source != "*" else None
            except ValueError:
                continue  # not an address at all (the API does not validate): ip_literal refuses it
            if isinstance(net, ipaddress.IPv6Network) and net.overlaps(IPV4_MAPPED):
                problems.append(
                    LimitProblem(
                        ("sources", i),
                        (
                            f"squid: {source} reaches into {IPV4_MAPPED}, the IPv4-mapped addresses, and squid compares "
                            "IPv4 clients in that form, so this entry would also let IPv4 clients through: give a "
                            "narrower IPv6 prefix, write IPv4 clients as IPv4, or leave squid out of `outputs:`"
                        ),
                    )
                )
        problems += unwritable_registry_names(plan, "squid.conf or NO_PROXY")
        hosts = no_proxy_hosts(plan)
        size = len("NO_PROXY=") + sum(len(h) + 1 for h in hosts)  # the commas and the final NUL
        if size > ENV_STRING_MAX:
            problems.append(
                LimitProblem(
                    ("registries",),
                    (
                        f"squid: no_proxy.txt would hold {len(hosts)} private-link host names, {size} bytes as NO_PROXY, "
                        f"past Linux's {ENV_STRING_MAX} bytes for one environment variable: split the description, or "
                        "leave squid out of `outputs:`"
                    ),
                )
            )
        return problems

    def context(self, plan: RulePlan) -> dict[str, Any]:
        s = self.settings(plan)
        return {
            "acl": acl_names(s.acl_prefix),
            "domains": dstdomains(e.fqdn for e in plan.endpoints),
            "sources": src_entries(plan.description.sources),
            "no_proxy": no_proxy_hosts(plan),
        }
