"""`acrrules probe`: the live path from this machine to every endpoint of a description (spec §9).

Per endpoint, in hop order: DNS (as the system resolves it: the hosts file and DNS in the order of
nsswitch.conf's `hosts:` line; DNS is A/AAAA with the CNAME chain through dnspython and resolv.conf;
--nameserver asks one server), then for every address a client may use (at most MAX_ADDRESSES): where
it lies (with a Service Tags file: which tag holds it and
whether the description's rendered tags include it), TCP 443 (directly, or a CONNECT through
HTTPS_PROXY unless NO_PROXY covers the name, as curl decides), TLS (SNI, the certificate covers the
name and chains to the trust store; an issuer other than the registry's is TLS interception), and
HTTP (a login server answers `/v2/` like a registry; MCR, and a registry with `--image` and
credentials, serve a manifest and redirect a blob to a data endpoint, which is then fetched).

Endpoints are probed in parallel; every network wait is bounded by the per-hop timeout and by what
is left of the overall deadline, and a watchdog ends a hop whose peer trickles bytes.  The verdict of
an endpoint is its first failing hop on any of its addresses; HTTP goes over the first address whose
TCP and TLS work, as a client falls back to it.  Strings from the network are cut (MAX_TEXT).
Nothing here prints: the CLI formats a Report with format_table or format_json.
"""

from __future__ import annotations

import base64
import concurrent.futures
import contextlib
import dataclasses
import http.client
import ipaddress
import json
import re
import socket
import ssl
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from . import __version__, catalog, pipeline, servicetags
from . import plan as planning
from .errors import UsageError
from .escape import comment as printable
from .escape import is_host_name, terminal
from .model import Description
from .plan import Endpoint

HOPS = ("dns", "tag", "tcp", "tls", "http")
WORKING, FAILED, NOT_PROBED = "working", "failed", "not probed"
DEFAULT_TIMEOUT = 5.0
DEFAULT_DEADLINE = 30.0
# An MCR image every cloud's MCR serves anonymously: the manifest and blob requests that prove the
# data endpoint (the blob redirect) works.
MCR_PROBE_IMAGE = ("mcr/hello-world", "latest")
# Issuers of the certificates of Azure's registry, storage and Front Door endpoints. Without
# --ca-bundle, a chain that the system trusts but that another organisation issued is a
# TLS-inspecting proxy (its own CA installed on the client).
REGISTRY_ISSUERS = ("Microsoft Corporation", "DigiCert Inc", "DigiCert, Inc.")
ENV_USERNAME, ENV_PASSWORD, ENV_TOKEN = "ACRRULES_PROBE_USERNAME", "ACRRULES_PROBE_PASSWORD", "ACRRULES_PROBE_TOKEN"
CREDENTIAL_VARIABLES = (ENV_USERNAME, ENV_PASSWORD, ENV_TOKEN)
TOKEN_USERNAME = (
    "00000000-0000-0000-0000-000000000000"  # ACR's user name for a refresh token (az acr login --expose-token)
)
MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)
MAX_BODY = 1 << 20
_REGISTRY_KINDS = ("login", "mcr")
# The system resolver's files, as glibc, musl and Go (docker, containerd) read them.
HOSTS_PATH, NSSWITCH_PATH = "/etc/hosts", "/etc/nsswitch.conf"
MAX_HOSTS_BYTES = 1 << 20  # a hosts file is read up to this size; lines past it are not seen
# A client may use any address a name resolves to (and falls back between them): TCP and TLS are
# probed on each, up to this many per name; the rest are listed as not probed.
MAX_ADDRESSES = 8
MAX_TEXT = 160  # a string from the network (status line, header, issuer) is cut to this length
MAX_CONNECT_HEAD = 16384  # a proxy's answer to CONNECT: its header ends within this many bytes
_DIGEST = re.compile(r"[a-z0-9]+(?:[+._-][a-z0-9]+)*:[A-Za-z0-9=_-]{32,256}")


# ---- inputs ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Image:
    registry: str | None  # the login server named in --image, None: the description's first registry
    repository: str
    reference: str  # a tag or a digest


@dataclass(frozen=True)
class Options:
    timeout: float = DEFAULT_TIMEOUT
    deadline: float = DEFAULT_DEADLINE
    ca_bundle: str | None = None
    nameservers: tuple[tuple[str, int], ...] = ()  # empty: the system resolver (nsswitch, hosts, resolv.conf)
    hosts_path: str = HOSTS_PATH
    nsswitch_path: str = NSSWITCH_PATH
    data_hosts: tuple[str, ...] = ()
    image: Image | None = None
    credentials: tuple[str, str] | None = None
    env: Mapping[str, str] = field(default_factory=dict)  # HTTPS_PROXY, NO_PROXY, ...


_CREDENTIAL_LIKE = (
    (re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/@\s]*:[^/@\s]*@"), "a URL with a user name and password"),
    (re.compile(r"^[^/@\s:]+:[^/@\s]+@"), "user:password@"),
    (re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"), "a token (JWT)"),
    (re.compile(r"(?i)(password|passwd|secret|token)="), "a password or token assignment"),
)


def check_not_credential(option: str, value: str) -> None:
    """Credentials come from the environment only: an argument that carries one is refused."""
    for pattern, what in _CREDENTIAL_LIKE:
        if pattern.search(value):
            raise UsageError(
                f"{option} looks like it holds a credential ({what}): credentials are read only from the "
                f"environment ({ENV_USERNAME} and {ENV_PASSWORD}, or {ENV_TOKEN}), never from arguments, "
                "which other users see in the process list and shell history"
            )


def parse_image(value: str) -> Image:
    check_not_credential("--image", value)
    first, slash, rest = value.partition("/")
    registry = None
    if slash and ("." in first or ":" in first):
        registry, value = first.lower(), rest
    if "@" in value:
        repository, _, reference = value.partition("@")
    else:
        repository, colon, reference = value.rpartition(":")
        if not colon or "/" in reference:
            repository, reference = "", ""
    if not repository or not reference or not re.fullmatch(r"[a-z0-9]+([._/-][a-z0-9]+)*", repository):
        raise UsageError(
            f"--image {value!r} is not REPO:TAG (or REPO@DIGEST, optionally LOGIN-SERVER/REPO:TAG): "
            "e.g. --image app/web:1.4"
        )
    return Image(registry, repository, reference)


def parse_nameserver(value: str) -> tuple[str, int]:
    host, port = value, 53
    m = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\](?::([0-9]+))?|([0-9.]+)(?::([0-9]+))?|([0-9A-Fa-f:]+)", value)
    if m:
        host = m.group(1) or m.group(3) or m.group(5)
        port = int(m.group(2) or m.group(4) or 53)
    try:
        ipaddress.ip_address(host)
        if not 0 < port < 65536:
            raise ValueError
    except ValueError:
        raise UsageError(
            f"--nameserver {value!r} is not ADDRESS[:PORT]: e.g. 10.0.0.53, 10.0.0.53:5353 or [fd00::53]:53"
        ) from None
    return host, port


def credentials_from_env(env: Mapping[str, str]) -> tuple[str, str] | None:
    token = env.get(ENV_TOKEN)
    if token:
        return TOKEN_USERNAME, token
    user, password = env.get(ENV_USERNAME), env.get(ENV_PASSWORD)
    if user and password:
        return user, password
    if user or password:
        missing = ENV_PASSWORD if user else ENV_USERNAME
        raise UsageError(f"{missing} is not set: give both {ENV_USERNAME} and {ENV_PASSWORD}, or {ENV_TOKEN}")
    return None


@dataclass(frozen=True)
class Inputs:
    description: Description
    endpoints: tuple[Endpoint, ...]
    locator: Locator | None
    service_tags_path: str | None


def load_inputs(spec: str, service_tags: str | None) -> Inputs:
    """The description, its endpoints and, with a Service Tags file (or the newest in a directory),
    a locator for the tags its rules render. Bad input raises InputError/UsageError (exit 2)."""
    from .project import service_tags_file

    tags_file = None
    service_tags = service_tags_file(service_tags, spec)  # a directory: the newest file of the spec's cloud
    if service_tags is not None:
        tags_file = servicetags.load(service_tags)
    desc = pipeline.load_description(spec, tags_file).description
    locator = None
    if tags_file is not None:
        servicetags.check_cloud(tags_file, desc.cloud_info, desc.source_name)
        locator = Locator(tags_file, [t.tag for t in planning.service_tags(desc, tags_file)])
    return Inputs(desc, planning.endpoints(desc), locator, service_tags)


# ---- where an address lies --------------------------------------------------------------------------


class Locator:
    """Which tag of a Service Tags file holds an address, preferring the tags the rules render."""

    def __init__(self, tags_file: servicetags.ServiceTagsFile, rendered: Sequence[str]):
        self.file = tags_file
        self.rendered = tuple(rendered)
        self._rendered = self._index({name: tags_file.tag(name) for name in self.rendered})
        self._all: dict[tuple[int, int], dict[int, list[str]]] | None = None
        self._lock = threading.Lock()

    @staticmethod
    def _index(tags: Mapping[str, servicetags.ServiceTag]) -> dict[tuple[int, int], dict[int, list[str]]]:
        index: dict[tuple[int, int], dict[int, list[str]]] = {}
        for name, tag in tags.items():
            for version, blocks in ((4, tag.v4_blocks), (6, tag.v6_blocks)):
                for value, plen in blocks:
                    index.setdefault((version, plen), {}).setdefault(value, []).append(name)
        return index

    def _every_tag(self) -> dict[tuple[int, int], dict[int, list[str]]]:
        with self._lock:
            if self._all is None:
                index: dict[tuple[int, int], dict[int, list[str]]] = {}
                for name, entry in self.file.entries.items():
                    props = entry.get("properties")
                    prefixes = props.get("addressPrefixes") if isinstance(props, dict) else None
                    for p in prefixes if isinstance(prefixes, list) else ():
                        try:
                            version, value, plen = servicetags.parse_prefix(str(p))
                        except ValueError:
                            continue  # a malformed tag the rules do not use says nothing here
                        index.setdefault((version, plen), {}).setdefault(value, []).append(name)
                self._all = index
            return self._all

    @staticmethod
    def _holders(index: Mapping[tuple[int, int], Mapping[int, list[str]]], address: str) -> list[tuple[int, str]]:
        ip = ipaddress.ip_address(address)
        bits = 32 if ip.version == 4 else 128
        n = int(ip)
        out: list[tuple[int, str]] = []
        for plen in range(bits, -1, -1):
            names = index.get((ip.version, plen), {}).get(n & ~((1 << (bits - plen)) - 1) & ((1 << bits) - 1))
            out.extend((plen, name) for name in names or ())
        return out

    def locate(self, address: str) -> tuple[str | None, bool]:
        """(the tag that holds the address, whether the rendered rules include it)."""
        inside = self._holders(self._rendered, address)
        if inside:
            return inside[0][1], True
        holders = self._holders(self._every_tag(), address)
        if not holders:
            return None, False
        # The most specific: the longest prefix, then a regional tag, then anything but the AzureCloud catch-all.
        best = min(holders, key=lambda h: (-h[0], "." not in h[1], h[1].startswith("AzureCloud"), h[1]))
        return best[1], False


# ---- proxies, as curl decides ------------------------------------------------------------------------


def _env(env: Mapping[str, str], name: str) -> str | None:
    """curl reads the lower-case variable first, then the upper-case one."""
    value = env.get(name.lower())
    if value is None:
        value = env.get(name.upper())
    return value or None


def no_proxy_covers(host: str, no_proxy: str | None) -> bool:
    """Whether NO_PROXY covers `host` as curl decides: comma (or space) separated entries; `*` alone
    covers everything; a name covers itself and every name under it, a leading dot ignored; an IP
    address or CIDR covers the addresses in it (when the host is an address)."""
    if not no_proxy:
        return False
    host = host.strip("[]").rstrip(".").lower()
    try:
        host_ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host)
    except ValueError:
        host_ip = None
    for raw in re.split(r"[,\s]+", no_proxy.strip()):
        entry = raw.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return True
        if host_ip is not None:
            try:
                if host_ip in ipaddress.ip_network(entry.strip("[]"), strict=False):
                    return True
            except ValueError:
                pass
            continue
        entry = entry.lstrip(".").rstrip(".")
        if entry and (host == entry or host.endswith("." + entry)):
            return True
    return False


@dataclass(frozen=True)
class Proxy:
    host: str
    port: int
    authorization: str | None  # Proxy-Authorization value, from the proxy URL's user info

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def proxy_for(host: str, env: Mapping[str, str]) -> Proxy | None:
    """The HTTPS proxy curl would use for https://host, or None (direct)."""
    url = _env(env, "https_proxy") or _env(env, "all_proxy")
    if not url or no_proxy_covers(host, _env(env, "no_proxy")):
        return None
    if "://" not in url:
        url = "http://" + url
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() != "http" or not parts.hostname:
        raise UsageError(
            f"HTTPS_PROXY: {parts.scheme}:// proxies are not supported by the probe: give an http:// proxy URL"
        )
    auth = None
    if parts.username is not None:
        user = urllib.parse.unquote(parts.username)
        password = urllib.parse.unquote(parts.password or "")
        auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    return Proxy(parts.hostname, parts.port or 80, auth)


# ---- results ----------------------------------------------------------------------------------------


@dataclass
class Hop:
    status: str = "skip"  # ok | fail | skip (not reached, or not part of this endpoint's path)
    detail: str = "-"


PATH_HOPS = ("tag", "tcp", "tls", "http")


@dataclass
class AddressPath:
    """One address of a name (None: through the proxy, which resolves it): where it lies, TCP and
    TLS to it, and HTTP on the one address the registry conversation used."""

    address: str | None
    tag: str | None = None
    in_rules: bool | None = None
    hops: dict[str, Hop] = field(default_factory=lambda: {h: Hop() for h in PATH_HOPS})
    problem: str | None = None
    cause: str | None = None
    fix: str | None = None

    @property
    def failed_hop(self) -> str | None:
        return next((h for h in PATH_HOPS if self.hops[h].status == "fail"), None)

    @property
    def failed(self) -> bool:
        return self.failed_hop is not None or self.problem == "deadline"

    def fail(self, f: HopFailure) -> None:
        """Note a failing hop; the earliest failing hop's problem, cause and fix are the path's."""
        before = self.failed_hop
        self.hops[f.hop] = Hop("fail", f.detail)
        if self.problem is None or before is None or HOPS.index(f.hop) < HOPS.index(before):
            self.problem, self.cause, self.fix = f.problem, f.cause, f.fix

    def as_json(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "tag": self.tag,
            "inRules": self.in_rules,
            "hops": {h: {"status": self.hops[h].status, "detail": self.hops[h].detail} for h in PATH_HOPS},
            "verdict": FAILED if self.failed else WORKING,
            "failedHop": self.failed_hop,
            "problem": self.problem,
        }


@dataclass
class Result:
    endpoint: Endpoint
    name: str | None  # the name probed (a wildcard's concrete name); None: not probed
    private_link: bool = False
    cname: list[str] = field(default_factory=list)
    source: str | None = None  # where the addresses came from: "hosts" (file) or "dns"; None: the proxy's
    addresses: list[str] = field(default_factory=list)
    paths: list[AddressPath] = field(default_factory=list)  # one per probed address
    unprobed: list[str] = field(default_factory=list)  # addresses past MAX_ADDRESSES
    unused: list[str] = field(default_factory=list)  # IPv6 addresses this host has no route to
    address: str | None = None  # the address the verdict is about: a failing one, else the one HTTP used
    http_address: str | None = None  # the path the registry conversation used (None: the proxy's, or none)
    tag: str | None = None
    in_rules: bool | None = None
    proxy: str | None = None
    hops: dict[str, Hop] = field(default_factory=lambda: {h: Hop() for h in HOPS})
    problem: str | None = None
    cause: str | None = None
    fix: str | None = None
    redirects: list[str] = field(default_factory=list)  # blob redirect URLs this endpoint answered with

    @property
    def failed_hop(self) -> str | None:
        return next((h for h in HOPS if self.hops[h].status == "fail"), None)

    @property
    def verdict(self) -> str:
        if self.failed_hop is not None or self.problem in ("deadline", "probe-error"):
            return FAILED
        if self.name is None:
            return NOT_PROBED
        return WORKING

    def as_json(self) -> dict[str, Any]:
        return {
            "fqdn": self.endpoint.fqdn,
            "kind": self.endpoint.kind,
            "registry": self.endpoint.registry,
            "region": self.endpoint.region,
            "probedName": self.name,
            "privateLink": self.private_link,
            "cname": self.cname,
            "dnsSource": self.source,
            "addresses": self.addresses,
            "address": self.address,
            "paths": [p.as_json() for p in self.paths],
            "failedAddresses": [p.address for p in self.paths if p.failed and p.address is not None],
            "unprobedAddresses": self.unprobed,
            "unusedAddresses": self.unused,
            "proxy": self.proxy,
            "tag": self.tag,
            "inRules": self.in_rules,
            "hops": {h: {"status": self.hops[h].status, "detail": self.hops[h].detail} for h in HOPS},
            "verdict": self.verdict,
            "failedHop": self.failed_hop,
            "problem": self.problem,
            "cause": self.cause,
            "fix": self.fix,
        }


@dataclass
class Report:
    spec: str
    service_tags: str | None
    results: list[Result]
    elapsed: float
    timeout: float
    deadline: float

    @property
    def exit_code(self) -> int:
        return 1 if any(r.verdict == FAILED for r in self.results) else 0

    def counts(self) -> dict[str, int]:
        return {v: sum(r.verdict == v for r in self.results) for v in (WORKING, FAILED, NOT_PROBED)}


class HopFailure(Exception):
    def __init__(self, hop: str, problem: str, detail: str, cause: str, fix: str):
        super().__init__(f"{hop}: {problem}")
        self.hop, self.problem, self.detail, self.cause, self.fix = hop, problem, detail, cause, fix


class DeadlineReached(Exception):
    pass


class Budget:
    """The per-hop timeout, cut to what is left of the overall deadline."""

    def __init__(self, timeout: float, deadline: float):
        self.timeout = timeout
        self.end = time.monotonic() + deadline

    def remaining(self) -> float:
        return self.end - time.monotonic()

    def hop(self) -> float:
        left = self.remaining()
        if left <= 0.01:
            raise DeadlineReached
        return min(self.timeout, left)


# ---- the hops ---------------------------------------------------------------------------------------


def _zone(name: str) -> str:
    return name.split(".", 1)[1] if "." in name else name


def resolve(name: str, options: Options, budget: Budget) -> tuple[list[str], list[str]]:
    """(CNAME chain from `name` to the canonical name, addresses: A first, then AAAA)."""
    import dns.exception
    import dns.nameserver
    import dns.resolver

    if options.nameservers:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [dns.nameserver.Do53Nameserver(h, p) for h, p in options.nameservers]
    else:
        try:
            resolver = dns.resolver.Resolver()  # the system's /etc/resolv.conf
        except dns.resolver.NoResolverConfiguration:
            raise HopFailure(
                "dns",
                "no-resolver",
                "no resolver",
                "this machine has no DNS resolver configured (/etc/resolv.conf has no nameserver)",
                "configure a resolver, or name one with --nameserver ADDRESS",
            ) from None
    chain: list[str] = [name]
    addresses: list[str] = []
    for rdtype in ("A", "AAAA"):
        t = budget.hop()
        resolver.timeout = resolver.lifetime = t
        try:
            answer = resolver.resolve(name, rdtype, search=False, raise_on_no_answer=False)
        except dns.resolver.NXDOMAIN:
            raise HopFailure(
                "dns",
                "nxdomain",
                "NXDOMAIN",
                f"no DNS server knows {name}",
                f"check the name in the description; a private DNS zone or conditional forwarder for {_zone(name)} "
                "must answer it on this client's resolver",
            ) from None
        except dns.exception.Timeout:
            raise HopFailure(
                "dns",
                "timeout",
                "timeout",
                f"the resolver did not answer within {t:g} s",
                "check that this client reaches its DNS resolver (UDP and TCP 53 in the firewall rules)",
            ) from None
        except (dns.resolver.NoNameservers, dns.resolver.NoAnswer, dns.exception.DNSException) as e:
            raise HopFailure(
                "dns",
                "dns-error",
                "error",
                f"the resolver failed: {e}",
                "check the client's DNS resolver and its forwarding",
            ) from None
        if rdtype == "A":
            chain += [str(rrset[0].target).rstrip(".") for rrset in answer.chaining_result.cnames if len(rrset)]
        if answer.rrset is not None:
            addresses += sorted((str(r.address) for r in answer.rrset), key=_address_key)
    if not addresses:
        raise HopFailure(
            "dns",
            "no-address",
            "no address",
            f"{name} has no A or AAAA record",
            f"add the record to the DNS zone that answers {_zone(chain[-1])}",
        )
    return chain, addresses


def lookup_order(nsswitch_path: str = NSSWITCH_PATH) -> tuple[str, ...]:
    """The sources the system resolver asks for a host name, in order: "files" (the hosts file) and
    "dns", from the `hosts:` line of nsswitch.conf.  `resolve` (systemd-resolved, which reads the
    hosts file, then DNS) counts as both; other sources (myhostname, mdns*, mymachines) answer no
    registry name and are skipped; action items such as [NOTFOUND=return] are ignored.  Without the
    file or a `hosts:` line naming files or dns: files, then dns, as Go's resolver (docker,
    containerd) and musl decide."""
    order: list[str] = []
    try:
        with open(nsswitch_path, "rb") as f:
            text = f.read(MAX_HOSTS_BYTES).decode("utf-8", "replace")
    except OSError:
        text = ""
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split()
        if fields and fields[0] == "hosts:":
            for source in re.sub(r"\[[^\]]*\]", " ", " ".join(fields[1:])).split():
                for s in {"files": ("files",), "dns": ("dns",), "resolve": ("files", "dns")}.get(source, ()):
                    if s not in order:
                        order.append(s)
    return tuple(order) or ("files", "dns")


def hosts_lookup(name: str, hosts_path: str = HOSTS_PATH) -> tuple[str, list[str]]:
    """(canonical name, addresses) of `name` in a hosts file, as glibc's getaddrinfo reads it: each
    line `ADDRESS NAME [ALIAS...]`, `#` to the end of a line a comment; names compared without case
    and a trailing dot; the addresses of every line that names it, in file order (the canonical name
    is the first name of the first such line).  A line whose address does not parse, or carries a
    zone (fe80::1%eth0), is skipped.  At most MAX_HOSTS_BYTES of the file are read."""
    want = name.rstrip(".").lower()
    canonical, addresses = name, list[str]()
    try:
        with open(hosts_path, "rb") as f:
            text = f.read(MAX_HOSTS_BYTES).decode("utf-8", "replace")
    except OSError:
        return canonical, []
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split()
        if len(fields) < 2 or want not in (n.rstrip(".").lower() for n in fields[1:]):
            continue
        try:
            if "%" in fields[0]:
                continue
            address = str(ipaddress.ip_address(fields[0]))
        except ValueError:
            continue
        if not addresses:
            canonical = fields[1].rstrip(".").lower()
        if address not in addresses:
            addresses.append(address)
    return canonical, addresses


def lookup(name: str, options: Options, budget: Budget) -> tuple[list[str], list[str], str]:
    """(CNAME chain, addresses, source) as this machine's clients resolve `name`: with --nameserver,
    that DNS server; else the system resolver's sources in nsswitch order, the hosts file before DNS
    where `files` comes first (source "hosts"; its chain is the name and the canonical name of its
    line).  A source that does not know the name passes it to the next, as glibc does."""
    if options.nameservers:
        return (*resolve(name, options, budget), "dns")
    failure: HopFailure | None = None
    for source in lookup_order(options.nsswitch_path):
        if source == "files":
            canonical, addresses = hosts_lookup(name, options.hosts_path)
            if addresses:
                return [name, *([canonical] if canonical != name.lower() else [])], addresses, "hosts"
        else:
            try:
                return (*resolve(name, options, budget), "dns")
            except HopFailure as f:
                failure = failure or f
    if failure is not None:
        raise failure
    raise HopFailure(
        "dns",
        "nxdomain",
        "not in hosts",
        f"{name} is not in {options.hosts_path}, and the hosts: line of {options.nsswitch_path} asks no DNS",
        f"add dns to the hosts: line of {options.nsswitch_path}, or pin {name} in {options.hosts_path}",
    )


def _routable(address: str) -> bool:
    """Whether this host has a route to `address`: connecting a UDP socket looks one up and sends
    nothing.  An IPv6 address without one is not used by a client (getaddrinfo's AI_ADDRCONFIG,
    Happy Eyeballs), so it is listed, not probed."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            s.connect((address, catalog.PORT))
        return True
    except OSError:
        return False


def _address_key(a: str) -> tuple[int, int]:
    ip = ipaddress.ip_address(a)
    return ip.version, int(ip)


def _tls_context(options: Options) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=options.ca_bundle) if options.ca_bundle else ssl.create_default_context()
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def check_ca_bundle(path: str) -> None:
    """--ca-bundle must be a PEM file of CA certificates that OpenSSL reads."""
    try:
        ctx = ssl.create_default_context(cafile=path)
    except (OSError, ssl.SSLError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise UsageError(
            f"--ca-bundle {printable(path)}: {printable(reason)}: give a PEM file of the CAs to trust"
        ) from None
    if not ctx.get_ca_certs():
        raise UsageError(f"--ca-bundle {printable(path)}: holds no CA certificate: give a PEM file of the CAs to trust")


def _clip(text: object, limit: int = MAX_TEXT) -> str:
    """A string from the network, cut to `limit` characters (the table escapes it, JSON encodes it)."""
    s = str(text)
    return s if len(s) <= limit else s[: limit - 3] + "..."


class _Watchdog:
    """Shuts a socket down when a hop outlasts its time.  A socket timeout bounds each read, not a
    peer that trickles a byte at a time or streams `100 Continue` forever; this bounds the hop."""

    def __init__(self, sock: socket.socket, seconds: float):
        self.sock = sock
        self.fired = False
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True

    def _fire(self) -> None:
        self.fired = True
        with contextlib.suppress(OSError):
            socket.socket.shutdown(self.sock, socket.SHUT_RDWR)  # the descriptor, under any TLS layer

    def __enter__(self) -> _Watchdog:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()


def _recv_headers(sock: socket.socket) -> tuple[bytes, bytes]:
    """(a proxy's answer to CONNECT up to its blank line, any bytes after it), reading at most
    MAX_CONNECT_HEAD bytes; without a blank line in them the first part is all that came."""
    buf = b""
    while b"\r\n\r\n" not in buf and len(buf) < MAX_CONNECT_HEAD:
        chunk = sock.recv(4096)
        if not chunk:
            break
        buf += chunk
    head, sep, rest = buf.partition(b"\r\n\r\n")
    return (head + sep, rest) if sep else (buf, b"")


def _der_issuer(der: bytes) -> str:
    """The issuer of a DER certificate as 'CN, O' (enough to name an intercepting CA)."""

    def item(b: bytes, i: int) -> tuple[int, int, int]:  # tag, start of content, end
        tag, n = b[i], b[i + 1]
        i += 2
        if n & 0x80:
            k = n & 0x7F
            n = int.from_bytes(b[i : i + k], "big")
            i += k
        return tag, i, i + n

    try:
        _, c, _ = item(der, 0)  # Certificate
        _, t, _ = item(der, c)  # TBSCertificate
        tag, s, e = item(der, t)
        if tag == 0xA0:  # [0] version
            tag, s, e = item(der, e)
        _, s, e = item(der, e)  # signature algorithm
        _, s, end = item(der, e)  # issuer Name
        names: dict[bytes, str] = {}
        while s < end:
            _, rs, re_ = item(der, s)  # SET
            _, as_, _ = item(der, rs)  # SEQUENCE
            _, os_, oe = item(der, as_)  # OID
            _, vs, ve = item(der, oe)  # value
            names.setdefault(der[os_:oe], der[vs:ve].decode("utf-8", "replace"))
            s = re_
        parts = [names[oid] for oid in (b"\x55\x04\x03", b"\x55\x04\x0a", b"\x55\x04\x0b") if oid in names]
        return ", ".join(parts) or "an unnamed issuer"
    except (IndexError, ValueError):
        return "an unreadable issuer"


def _issuer_of(cert: Mapping[str, Any]) -> tuple[str, str]:
    """(organisation, 'CN, O') of a verified certificate's issuer."""
    fields: dict[str, str] = {}
    for rdn in cert.get("issuer", ()):
        for k, v in rdn:
            fields.setdefault(k, v)
    org = fields.get("organizationName", "")
    text = ", ".join(fields[k] for k in ("commonName", "organizationName") if k in fields)
    return org, text or "an unnamed issuer"


class Prober:
    def __init__(self, inputs: Inputs, options: Options, budget: Budget):
        self.inputs = inputs
        self.options = options
        self.budget = budget
        self.ctx = _tls_context(options)
        self.private_link = {r.name for r in inputs.description.registries if r.private_link}

    # -- connections --

    def _tcp(self, result: Result, path: AddressPath, name: str) -> socket.socket:
        proxy = proxy_for(name, self.options.env)
        t = self.budget.hop()
        if proxy is None:
            assert path.address is not None
            target = (path.address, catalog.PORT)
            try:
                return socket.create_connection(target, timeout=t)
            except TimeoutError:
                raise HopFailure(
                    "tcp",
                    "tcp-timeout",
                    "timeout",
                    f"no answer from {path.address} port {catalog.PORT} within {t:g} s: a firewall drops the packets",
                    self._tcp_fix(result, path),
                ) from None
            except OSError as e:
                what = "refused" if isinstance(e, ConnectionRefusedError) else (e.strerror or str(e))
                raise HopFailure(
                    "tcp",
                    "tcp-refused" if isinstance(e, ConnectionRefusedError) else "tcp-error",
                    what.lower(),
                    f"connecting to {path.address} port {catalog.PORT} failed: {what}",
                    self._tcp_fix(result, path),
                ) from None
        try:
            sock = socket.create_connection((proxy.host, proxy.port), timeout=t)
        except OSError as e:
            raise HopFailure(
                "tcp",
                "proxy-unreachable",
                "proxy down",
                f"the proxy {proxy} (HTTPS_PROXY) does not accept connections: {e.strerror or e}",
                "check HTTPS_PROXY, or that the proxy runs and this client may reach it",
            ) from None
        t = self.budget.hop()
        try:
            sock.settimeout(t)
            request = f"CONNECT {name}:{catalog.PORT} HTTP/1.1\r\nHost: {name}:{catalog.PORT}\r\n"
            if proxy.authorization:
                request += f"Proxy-Authorization: {proxy.authorization}\r\n"
            with _Watchdog(sock, t) as watchdog:
                sock.sendall((request + "\r\n").encode("ascii"))
                raw_head, extra = _recv_headers(sock)
            if watchdog.fired:
                raise TimeoutError(f"no complete answer within {t:g} s")
            head = raw_head.decode("latin-1")
        except (TimeoutError, OSError) as e:
            sock.close()
            raise HopFailure(
                "tcp",
                "proxy-timeout",
                "CONNECT timeout",
                f"the proxy {proxy} did not answer CONNECT {name}:{catalog.PORT}: {_clip(e)}",
                "check the proxy's upstream connectivity to this endpoint",
            ) from None
        status_line = _clip(head.split("\r\n", 1)[0].strip(), 80)
        m = re.match(r"HTTP/1\.[01] ([0-9]{3})(?: |\r|$)", head)
        if m and m.group(1) == "200" and (extra or not head.endswith("\r\n\r\n")):
            sock.close()
            what = (
                f"{len(extra)} bytes after its answer, before the TLS handshake began"
                if extra
                else f"an answer whose header does not end within {MAX_CONNECT_HEAD} bytes"
            )
            raise HopFailure(
                "tcp",
                "proxy-garbage",
                "CONNECT garbage",
                f"the proxy {proxy} answered CONNECT {name}:{catalog.PORT} with {status_line!r} and then {what}: "
                "not a tunnel a client can use",
                "check what listens at HTTPS_PROXY: it must be an HTTP proxy that tunnels CONNECT",
            )
        if not m or m.group(1) != "200":
            sock.close()
            code = m.group(1) if m else "no answer" if not head.strip() else "garbage"
            error = re.search(r"(?im)^X-Squid-Error:\s*(.+)$", head)
            raise HopFailure(
                "tcp",
                "proxy-refused" if m or not head.strip() else "proxy-garbage",
                f"CONNECT {code}",
                f"the proxy {proxy} refused CONNECT {name}:{catalog.PORT} ({status_line or 'no answer'}"
                + (f"; {_clip(error.group(1).strip(), 80)}" if error else "")
                + ")",
                f"allow {self._allow_name(result)} in the proxy (e.g. the rendered acrrules-squid.conf), "
                "or add it to NO_PROXY if this client reaches it directly",
            )
        return sock

    def _allow_name(self, result: Result) -> str:
        fqdn = result.endpoint.fqdn
        return f"{fqdn} ({result.name})" if fqdn != result.name else fqdn

    def _tcp_fix(self, result: Result, path: AddressPath) -> str:
        tag = f" ({path.tag})" if path.tag else ""
        others = (
            "; the name's other addresses may pass: --service-tags shows which tag holds this one"
            if len(result.paths) > 1 and path.tag is None
            else ""
        )
        return (
            f"allow TCP {catalog.PORT} to {path.address}{tag} in the firewall, NSG or host rules: re-render them from "
            f"a description that lists this endpoint ({result.endpoint.kind}"
            + (f", region {result.endpoint.region}" if result.endpoint.region else "")
            + ") and deploy them"
            + others
        )

    def _tls(self, result: Result, path: AddressPath, raw: socket.socket, name: str) -> ssl.SSLSocket:
        t = self.budget.hop()
        raw.settimeout(t)
        at = f" at {path.address}" if path.address and len(result.paths) > 1 else ""
        try:
            with _Watchdog(raw, t) as watchdog:
                try:
                    sock = self.ctx.wrap_socket(raw, server_hostname=name)
                except (ssl.SSLError, OSError):
                    if watchdog.fired:
                        raise TimeoutError from None
                    raise
        except ssl.SSLCertVerificationError as e:
            raw.close()
            if e.verify_code == 62:  # X509_V_ERR_HOSTNAME_MISMATCH
                raise HopFailure(
                    "tls",
                    "tls-name-mismatch",
                    "wrong name",
                    f"the certificate{at} does not cover {name}: {_clip(e.verify_message)}",
                    "something other than the registry answers on this address: check DNS and any proxy in the path",
                ) from None
            issuer = self._unverified_issuer(result, path, name)
            trust = f"--ca-bundle {self.options.ca_bundle}" if self.options.ca_bundle else "the system trust store"
            raise HopFailure(
                "tls",
                "tls-interception",
                "intercepted",
                f"TLS interception{at}: the certificate for {name} is issued by {issuer}, which {trust} does not "
                f"trust ({_clip(e.verify_message)})",
                f"exempt {result.endpoint.fqdn} from TLS inspection in the proxy or firewall, or, if this CA is "
                "yours, trust it on every client (and in the container runtime)",
            ) from None
        except (TimeoutError, ssl.SSLError, OSError) as e:
            raw.close()
            timeout = isinstance(e, TimeoutError)
            raise HopFailure(
                "tls",
                "tls-timeout" if timeout else "tls-error",
                "timeout" if timeout else "error",
                f"the TLS handshake with {name}{at} " + ("got no answer in time" if timeout else f"failed: {_clip(e)}"),
                "a device in the path accepts the connection but does not pass TLS through: "
                "check the firewall's or proxy's TLS policy for this name",
            ) from None
        if not self.options.ca_bundle:
            org, text = _issuer_of(sock.getpeercert() or {})
            if org not in REGISTRY_ISSUERS:
                sock.close()
                raise HopFailure(
                    "tls",
                    "tls-interception",
                    "intercepted",
                    f"TLS interception{at}: the certificate for {name} is issued by {_clip(text)}, not by the "
                    f"registry's issuers ({', '.join(REGISTRY_ISSUERS)}); the client trusts it, but a runtime that "
                    "does not will fail",
                    f"exempt {result.endpoint.fqdn} from TLS inspection in the proxy, or give --ca-bundle with the CAs you expect",
                )
        return sock

    def _unverified_issuer(self, result: Result, path: AddressPath, name: str) -> str:
        """The issuer of the certificate the path presents, from a second, unverified handshake."""
        try:
            raw = self._tcp(result, path, name)
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            t = self.budget.hop()
            raw.settimeout(t)
            with _Watchdog(raw, t), ctx.wrap_socket(raw, server_hostname=name) as sock:
                der = sock.getpeercert(binary_form=True)
            return _clip(_der_issuer(der)) if der else "an unknown issuer"
        except (HopFailure, DeadlineReached, OSError):
            return "an unknown issuer"

    def connect(self, result: Result, path: AddressPath, name: str, record: bool) -> ssl.SSLSocket:
        """A TLS connection to `name` on one address (or through the proxy); with `record`, the path's
        hops are noted."""
        raw = self._tcp(result, path, name)
        if record:
            path.hops["tcp"] = Hop("ok", "CONNECT 200" if result.proxy else "ok")
        sock = self._tls(result, path, raw, name)
        if record:
            _, text = _issuer_of(sock.getpeercert() or {})
            path.hops["tls"] = Hop("ok", _clip(text))
        return sock

    def request(
        self, result: Result, name: str, target: str, headers: Mapping[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        """GET `target` on the address the registry conversation uses; headers, body and time bounded."""
        sock = self.connect(result, self._http_path(result), name, record=False)
        conn = http.client.HTTPConnection(name, catalog.PORT)
        conn.sock = sock
        t = self.budget.hop()
        try:
            sock.settimeout(t)
            with _Watchdog(sock, t) as watchdog:
                try:
                    conn.request(
                        "GET",
                        target,
                        headers={
                            "Host": name,
                            "User-Agent": f"acrrules-probe/{__version__}",
                            "Connection": "close",
                            **(headers or {}),
                        },
                    )
                    resp = conn.getresponse()
                    body = resp.read(MAX_BODY)
                    got = resp.status, {k.lower(): v for k, v in resp.getheaders()}, body
                except (OSError, http.client.HTTPException, ValueError):
                    if watchdog.fired:
                        raise TimeoutError from None
                    raise
            if watchdog.fired:
                raise TimeoutError
            return got
        except (TimeoutError, OSError, http.client.HTTPException, ValueError) as e:
            timeout = isinstance(e, TimeoutError)
            raise HopFailure(
                "http",
                "http-timeout" if timeout else "http-error",
                "timeout" if timeout else "error",
                f"GET https://{name}{_clip(target.split('?', maxsplit=1)[0], 80)} "
                + (f"got no complete answer within {t:g} s" if timeout else f"failed: {_clip(e)}"),
                "something in the path accepts TLS but does not answer HTTP: check the proxy or firewall",
            ) from None
        finally:
            conn.close()

    # -- one endpoint --

    def probe(self, endpoint: Endpoint, name: str | None, url: str | None = None) -> Result:
        result = Result(endpoint, name, private_link=bool(endpoint.registry and endpoint.registry in self.private_link))
        if name is None:
            result.cause = "a wildcard: no concrete name under it is known"
            result.fix = (
                "give --data-host NAME (e.g. the storage account the registry redirects to), "
                "or --image REPO:TAG with credentials so the registry's redirect names one"
            )
            return result
        try:
            self._dns_and_tag(result, name)
            if self._connect_every_address(result, name):
                try:
                    if endpoint.kind in _REGISTRY_KINDS:
                        self._registry(result, name)
                    elif url is not None:
                        self._blob(result, name, url)
                finally:
                    self._http_path(result).hops["http"] = result.hops["http"]
        except HopFailure as f:
            result.hops[f.hop] = Hop("fail", f.detail)
            if f.hop == "http":
                self._http_path(result).hops["http"] = result.hops["http"]
            # Not AddressPath.fail's rule: a problem _sum_up already took from a failing address stays,
            # even a deadline, or a TLS failure when the reconnect for HTTP then fails at TCP.
            if result.problem is None:
                result.problem, result.cause, result.fix = f.problem, f.cause, f.fix
        except DeadlineReached:
            result.problem = "deadline"
            result.cause = (
                f"the overall deadline ({self.options.deadline:g} s) was reached before this endpoint finished"
            )
            result.fix = "raise --deadline, or look at the hops that time out"
        return result

    def _dns_and_tag(self, result: Result, name: str) -> None:
        """DNS (or the proxy, which resolves the name itself), then one path per address a client
        may use, each located in the Service Tags file."""
        proxy = proxy_for(name, self.options.env)
        if proxy is not None:
            result.proxy = str(proxy)
            result.hops["dns"] = Hop("skip", "by proxy")
            result.paths = [AddressPath(None)]
            result.paths[0].hops["tag"] = Hop("skip", "by proxy")
            return
        result.cname, addresses, result.source = lookup(name, self.options, self.budget)
        result.cname = [_clip(n, 253) for n in result.cname]
        result.addresses = addresses
        result.unused = [a for a in addresses if ":" in a and not _routable(a)]
        usable = [a for a in addresses if a not in result.unused] or addresses
        result.unprobed = usable[MAX_ADDRESSES:]
        result.paths = [AddressPath(a) for a in usable[:MAX_ADDRESSES]]
        result.address = result.paths[0].address
        pinned = result.source == "hosts"
        public = [a for a in addresses if ipaddress.ip_address(a).is_global]
        link = next((n for n in result.cname if ".privatelink." in n), None)
        if (result.private_link or link) and public:
            via = f" (via {link})" if link else ""
            where = f"the {self.options.hosts_path} entry" if pinned else "the private DNS zone"
            raise HopFailure(
                "dns",
                "public-address-for-private-link",
                "public",
                f"{name} is a private-link name but resolves to the public address {public[0]}{via}"
                + (f" from {self.options.hosts_path}" if pinned else "")
                + f": {where} is missing or wrong on this client",
                f"pin {name} to its private endpoint's address in {self.options.hosts_path}"
                if pinned
                else f"link the private DNS zone privatelink.{self.inputs.description.cloud_info.login_suffix} to "
                "the client's virtual network, or forward it from the on-premises DNS to Azure DNS (168.63.129.16)",
            )
        chain = " > ".join(result.cname[1:]) if len(result.cname) > 1 else "ok"
        result.hops["dns"] = Hop("ok", f"hosts file{': ' + chain if chain != 'ok' else ''}" if pinned else chain)
        locator = self.inputs.locator
        for path in result.paths:
            if locator is None or result.private_link:
                path.hops["tag"] = Hop("skip", "private link" if result.private_link else "-")
                continue
            assert path.address is not None
            path.tag, path.in_rules = locator.locate(path.address)
            if path.in_rules:
                path.hops["tag"] = Hop("ok", path.tag or "-")
                continue
            a, tag = path.address, path.tag
            held = f"tag {tag}, which the rules do not include" if tag else "no tag of the Service Tags file"
            pin = f" (pinned in {self.options.hosts_path})" if pinned else ""
            path.fail(
                HopFailure(
                    "tag",
                    "outside-rules",
                    f"outside ({tag or 'no tag'})",
                    f"{name} resolves to {a}{pin}, held by {held}: the NSG, nftables, iptables and Calico rules "
                    "rendered from this description block it",
                    f"if {a} is right, the description lacks the region or option behind {tag}; re-render with a "
                    "current Service Tags file and deploy"
                    if tag
                    else f"check {self.options.hosts_path if pinned else 'DNS'} for {name}; "
                    f"if {a} is right, use a newer Service Tags file",
                )
            )
        self._sum_up(result)

    def _http_path(self, result: Result) -> AddressPath:
        return next((p for p in result.paths if p.address == result.http_address), result.paths[0])

    def _connect_every_address(self, result: Result, name: str) -> bool:
        """TCP and TLS on every path, in parallel; HTTP then goes over the first that works (a client
        falls back to it: True), and the name fails when any path does."""

        def one(path: AddressPath) -> None:
            try:
                self.connect(result, path, name, record=True).close()
            except HopFailure as f:
                path.fail(f)
            except DeadlineReached:
                path.problem = "deadline"

        if len(result.paths) == 1:
            one(result.paths[0])
        else:
            threads = [(threading.Thread(target=one, args=(p,), daemon=True), p) for p in result.paths]
            for th, _ in threads:
                th.start()
            end = time.monotonic() + max(0.0, self.budget.remaining()) + 0.5
            for th, path in threads:
                th.join(max(0.0, end - time.monotonic()))
                if th.is_alive():  # past the deadline: this address is not known to work
                    path.problem = "deadline"
        working = next((p for p in result.paths if p.hops["tls"].status == "ok"), None)
        result.http_address = working.address if working else None
        self._sum_up(result)
        if working is None and any(p.problem == "deadline" for p in result.paths):
            raise DeadlineReached
        return working is not None

    def _sum_up(self, result: Result) -> None:
        """The name's tag, TCP and TLS hops from its paths: the first failing path (by hop, then
        address order) gives the verdict, its address and cause."""
        failing = [p for p in result.paths if p.failed]
        for hop in ("tag", "tcp", "tls"):
            bad = next((p for p in result.paths if p.hops[hop].status == "fail"), None)
            if bad is not None:
                several = len(result.paths) > 1 and bad.address is not None
                result.hops[hop] = Hop("fail", bad.hops[hop].detail + (f" ({bad.address})" if several else ""))
            else:
                result.hops[hop] = self._http_path(result).hops[hop]
        first = min(failing, key=lambda p: HOPS.index(p.failed_hop or "http"), default=None)
        shown = first or self._http_path(result)
        result.address, result.tag, result.in_rules = shown.address, shown.tag, shown.in_rules
        if first is not None:
            result.problem, result.cause, result.fix = first.problem, first.cause, first.fix
            if first.problem == "deadline":
                result.cause = (
                    f"the overall deadline ({self.options.deadline:g} s) was reached before {first.address} answered"
                )
                result.fix = "raise --deadline, or look at the hops that time out"

    # -- registry conversations --

    def _registry(self, result: Result, name: str) -> None:
        status, headers, body = self.request(result, name, "/v2/")
        api = headers.get("docker-distribution-api-version", "")
        challenge = headers.get("www-authenticate", "")
        realm = _bearer(challenge)
        if status == 401 and realm is not None:
            realm_host = (urllib.parse.urlsplit(realm.get("realm", "")).hostname or "").lower()
            if result.endpoint.kind == "login" and realm_host != name.lower():
                raise HopFailure(
                    "http",
                    "wrong-registry",
                    "other realm",
                    f"/v2/ asks for a token from {_clip(realm_host, 80) or 'no realm'}, not from {name}: "
                    "another service answers",
                    "check DNS and any proxy in the path for this name",
                )
            detail = "401 Bearer"
        elif status == 200 and api.startswith("registry/2"):
            detail = "200 registry"
        else:
            kind = _clip(headers.get("content-type", "no content type").split(";")[0].strip(), 60)
            title = _title(body)
            shown = f' "{title}"' if title else ""
            raise HopFailure(
                "http",
                "not-a-registry",
                "block page" if status == 200 else f"{status}",
                f"GET /v2/ answered {status} {kind}{shown} without a registry's Bearer challenge: "
                "a proxy or firewall block page, not the registry",
                f"allow {name} in the proxy or web filter that answers instead of the registry",
            )
        result.hops["http"] = Hop("ok", detail)
        image = self._image_for(result)
        if image is None:
            return
        repository, reference, creds = image
        token = self._token(result, name, realm, repository, creds) if realm is not None else None
        auth = {"Authorization": f"Bearer {token}"} if token else {}
        digest = self._manifest(result, name, repository, reference, auth)
        status, headers, _ = self.request(result, name, f"/v2/{repository}/blobs/{digest}", auth)
        if status in (301, 302, 303, 307, 308) and "location" in headers:
            location = _checked_redirect(name, headers["location"])
            result.redirects.append(location)
            host = urllib.parse.urlsplit(location).hostname or "?"
            result.hops["http"] = Hop("ok", f"{detail}; manifest; blob {status} > {host}")
        elif status == 200:
            result.hops["http"] = Hop("ok", f"{detail}; manifest; blob 200")
        else:
            raise HopFailure(
                "http",
                "blob-error",
                f"blob {status}",
                f"the blob request for {repository} answered {status}",
                "check the image and the credentials' pull permission",
            )

    def _image_for(self, result: Result) -> tuple[str, str, tuple[str, str] | None] | None:
        if result.endpoint.kind == "mcr":
            return MCR_PROBE_IMAGE[0], MCR_PROBE_IMAGE[1], None
        image = self.options.image
        if image is None:
            return None
        first = self.inputs.description.registries[0].name
        wanted = image.registry or next(
            e.fqdn for e in self.inputs.endpoints if e.kind == "login" and e.registry == first
        )
        if wanted != result.endpoint.fqdn:
            return None
        return image.repository, image.reference, self.options.credentials

    def _token(
        self, result: Result, name: str, challenge: dict[str, str], repository: str, creds: tuple[str, str] | None
    ) -> str | None:
        realm = urllib.parse.urlsplit(challenge.get("realm", ""))
        if realm.scheme != "https" or (realm.hostname or "").lower() != name.lower():
            return None  # a token service elsewhere is not on the probed path
        query = urllib.parse.urlencode(
            {"service": challenge.get("service", name), "scope": f"repository:{repository}:pull"}
        )
        headers = {}
        if creds is not None:
            headers["Authorization"] = "Basic " + base64.b64encode(f"{creds[0]}:{creds[1]}".encode()).decode()
        status, _, body = self.request(result, name, f"{realm.path or '/'}?{query}", headers)
        token = _json_object(body)
        value = token.get("access_token") or token.get("token") if token is not None else None
        if status != 200 or not isinstance(value, str):
            raise HopFailure(
                "http",
                "token-refused",
                f"token {status}",
                f"the registry's token service answered {status}"
                + (" to the credentials from the environment" if creds else " to an anonymous request"),
                f"check {ENV_USERNAME}/{ENV_PASSWORD} (or {ENV_TOKEN}) and their pull permission on {repository}",
            )
        return value

    def _manifest(self, result: Result, name: str, repository: str, reference: str, auth: Mapping[str, str]) -> str:
        """The digest of a small blob of the image (its config), through an index if need be."""
        for _ in range(2):
            status, _, body = self.request(
                result, name, f"/v2/{repository}/manifests/{reference}", {**auth, "Accept": MANIFEST_TYPES}
            )
            doc = _json_object(body) if status == 200 else None
            if doc is None:
                raise HopFailure(
                    "http",
                    "manifest-error",
                    f"manifest {status}",
                    f"the manifest of {repository}:{reference} answered {status}",
                    "check the image name and tag, and the credentials' pull permission",
                )
            manifests = doc.get("manifests")
            if isinstance(manifests, list) and manifests:
                entries = [m for m in manifests if isinstance(m, dict)]
                linux = [
                    m for m in entries if isinstance(m.get("platform"), dict) and m["platform"].get("os") == "linux"
                ]
                reference = str((linux or entries or [{}])[0].get("digest", ""))
                if not _DIGEST.fullmatch(reference):
                    break
                continue
            config = doc.get("config")
            layers = doc.get("layers")
            blob = config if isinstance(config, dict) else (layers[0] if isinstance(layers, list) and layers else None)
            if isinstance(blob, dict) and isinstance(blob.get("digest"), str) and _DIGEST.fullmatch(blob["digest"]):
                return str(blob["digest"])
            break
        raise HopFailure(
            "http",
            "manifest-error",
            "manifest",
            f"the manifest of {repository} names no blob by a valid digest",
            "check the image",
        )

    def _blob(self, result: Result, name: str, url: str) -> None:
        parts = urllib.parse.urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        status, _, _ = self.request(result, name, target or "/")
        if status not in (200, 206):
            raise HopFailure(
                "http",
                "blob-error",
                f"blob {status}",
                f"the data endpoint answered the registry's blob redirect with {status}",
                "check the proxy or firewall in front of this data endpoint",
            )
        result.hops["http"] = Hop("ok", f"blob {status}")


def _title(body: bytes) -> str | None:
    """The <title> of an HTML page, for naming a block page: looked for in the first 64 KiB, at most
    200 bytes long (an unbounded lazy match over a page of unclosed <title>s takes quadratic time)."""
    m = re.search(rb"(?is)<title>(.{0,200}?)</title>", body[:65536])
    return _clip(m.group(1).decode("utf-8", "replace").strip(), 60) if m else None


def _json_object(body: bytes) -> dict[str, Any] | None:
    """A JSON object from the network, or None (not JSON, not an object, or nested too deep to parse)."""
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        return None
    return doc if isinstance(doc, dict) else None


def _checked_redirect(name: str, location: str) -> str:
    """The absolute URL of a registry's blob redirect, which a client follows on the same terms as the
    registry: https, port 443 (the only port the rules allow), a host name, no user information."""
    url = urllib.parse.urljoin(f"https://{name}/", location.strip())
    parts = urllib.parse.urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = -1
    host = (parts.hostname or "").rstrip(".")
    if parts.scheme.lower() != "https":
        why = f"{parts.scheme or 'no'} scheme, not https: the blob would not travel over TLS on port {catalog.PORT}"
    elif port not in (None, catalog.PORT):
        why = f"port {port if port != -1 else 'invalid'}: the rules allow only {catalog.PORT}"
    elif parts.username is not None or parts.password is not None:
        why = "user information in the URL"
    elif not is_host_name(host):  # what the rendered FQDN lists, squid ACLs and NO_PROXY take
        why = "its host is no DNS name"
    else:
        return url
    raise HopFailure(
        "http",
        "bad-redirect",
        "bad redirect",
        f"the blob request redirects to {_clip(url, 120)!r}: {why}",
        f"something other than the registry answers for {name}: check DNS and any proxy in the path",
    )


def _bearer(challenge: str) -> dict[str, str] | None:
    """The parameters of a `Bearer realm=...` challenge, or None."""
    m = re.match(r"\s*Bearer\s+(.*)", challenge, re.IGNORECASE)
    if not m:
        return None
    params = {k.lower(): v for k, v in re.findall(r'([A-Za-z]+)="([^"]*)"', m.group(1))}
    return params if "realm" in params else None


def _covered(wildcard: str, name: str) -> bool:
    return wildcard.startswith("*.") and name.lower().endswith(wildcard[1:].lower()) and len(name) > len(wildcard) - 1


# ---- the whole probe --------------------------------------------------------------------------------


def check_data_hosts(endpoints: Sequence[Endpoint], hosts: Sequence[str]) -> None:
    wildcards = [e.fqdn for e in endpoints if e.fqdn.startswith("*.")]
    for h in hosts:
        check_not_credential("--data-host", h)
        if not any(_covered(w, h) for w in wildcards):
            which = ", ".join(wildcards) or "none: every endpoint is a concrete name"
            raise UsageError(
                f"--data-host {h!r} is under no wildcard endpoint of the description (its wildcards: {which})"
            )


def run(inputs: Inputs, options: Options, on_progress: Callable[[int, int], None] | None = None) -> Report:
    """Probe every endpoint: first the registries' own conversations (which name the data hosts they
    redirect to), then every other endpoint, each set in parallel, all within the deadline."""
    start = time.monotonic()
    budget = Budget(options.timeout, options.deadline)
    prober = Prober(inputs, options, budget)
    eps = inputs.endpoints
    first = [(e, e.fqdn, None) for e in eps if e.kind in _REGISTRY_KINDS]
    total = len(eps)
    done = [0]
    if on_progress is not None:
        on_progress(0, total)

    def tick() -> None:
        done[0] += 1
        if on_progress is not None:
            on_progress(done[0], total)

    results: dict[tuple[str, str | None], Result] = {}
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=min(32, max(1, total + len(options.data_hosts))))
    try:
        _run_phase(pool, prober, first, results, budget, tick)
        redirects = [u for r in results.values() for u in r.redirects]
        by_host: dict[str, str] = {}
        for u in redirects:
            by_host.setdefault((urllib.parse.urlsplit(u).hostname or "").lower(), u)
        second: list[tuple[Endpoint, str | None, str | None]] = []
        for e in eps:
            if e.kind in _REGISTRY_KINDS:
                continue
            if e.fqdn.startswith("*."):
                names = sorted({h for h in (*by_host, *(d.lower() for d in options.data_hosts)) if _covered(e.fqdn, h)})
                second += [(e, n, by_host.get(n)) for n in names] or [(e, None, None)]
            else:
                second.append((e, e.fqdn, by_host.get(e.fqdn)))
        covered = {n for _, n, _ in second if n} | {e.fqdn for e in eps}
        _run_phase(pool, prober, second, results, budget, tick)
        extra = []
        for host, url in sorted(by_host.items()):
            if host not in covered:
                r = Result(Endpoint(host, "redirect"), host)
                r.hops["http"] = Hop("fail", "unlisted")
                r.problem = "unlisted-redirect"
                r.cause = f"the registry redirects blobs to {host}, which is no endpoint of the description"
                r.fix = "check data_endpoints in the description (storage, dedicated or both) and re-render the rules"
                r.redirects.append(url)
                extra.append(r)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    order = {e: i for i, e in enumerate(eps)}
    ordered = sorted(results.values(), key=lambda r: (order[r.endpoint], r.name or ""))
    return Report(
        inputs.description.source_name,
        inputs.service_tags_path,
        ordered + extra,
        round(time.monotonic() - start, 3),
        options.timeout,
        options.deadline,
    )


def run_all(every: Sequence[Inputs], options: Options, progress: Callable[[], Progress]) -> list[Report]:
    """run() for each description in turn (a project), all within the one --deadline: each gets
    what the ones before it left."""
    start = time.monotonic()
    reports = []
    for inputs in every:
        left = max(options.deadline - (time.monotonic() - start), 0.001)
        with progress() as on_progress:
            reports.append(run(inputs, dataclasses.replace(options, deadline=left), on_progress))
    return reports


def format_json_all(reports: Sequence[Report]) -> str:
    """--format json of a project: one object per description, in a list."""
    return json.dumps([report_json(r) for r in reports], indent=2) + "\n"


def _run_phase(
    pool: concurrent.futures.ThreadPoolExecutor,
    prober: Prober,
    work: Sequence[tuple[Endpoint, str | None, str | None]],
    results: dict[tuple[str, str | None], Result],
    budget: Budget,
    tick: Callable[[], None],
) -> None:
    futures = {pool.submit(prober.probe, e, n, u): (e, n) for e, n, u in work}
    finished, _ = concurrent.futures.wait(futures, timeout=max(0.0, budget.remaining()) + 0.5)
    for fut, (e, n) in futures.items():
        if fut in finished and fut.exception() is not None:
            # An answer no hop foresaw must not end the run with a traceback and no report.
            exc = fut.exception()
            r = Result(e, n)
            r.problem = "probe-error"
            r.cause = f"the probe failed on this endpoint's answers: {type(exc).__name__}: {_clip(exc)}"
            r.fix = "report it as an acrrules bug, with the --format json output"
            results[e.fqdn, n] = r
            tick()
        elif fut in finished:
            results[e.fqdn, n] = fut.result()
            tick()
        else:
            r = Result(e, n)
            r.problem = "deadline"
            r.cause = f"the overall deadline ({prober.options.deadline:g} s) was reached before this endpoint finished"
            r.fix = "raise --deadline, or look at the hops that time out"
            results[e.fqdn, n] = r


# ---- output -----------------------------------------------------------------------------------------


def _short(hop: Hop) -> str:
    return {"ok": "ok", "fail": f"FAIL {hop.detail}"}.get(hop.status, "-" if hop.detail in ("-", "") else hop.detail)


def _verdict_text(r: Result) -> str:
    if r.verdict == WORKING:
        return "working"
    if r.verdict == NOT_PROBED:
        return "not probed"
    if r.problem in ("deadline", "probe-error") and r.failed_hop is None:
        return "FAIL " + ("deadline" if r.problem == "deadline" else "probe error")
    hop = r.failed_hop or "?"
    text = f"FAIL {'CONNECT' if hop == 'tcp' and r.proxy else hop.upper()}"
    failing = [p.address for p in r.paths if p.failed and p.address is not None]
    return text + (f" ({', '.join(failing)})" if len(r.paths) > 1 and failing else "")


def _dns_cell(r: Result) -> str:
    """The DNS column says where a working answer came from when it is the hosts file."""
    return "hosts file" if r.hops["dns"].status == "ok" and r.source == "hosts" else _short(r.hops["dns"])


def _tag_cell(tag: str | None, in_rules: bool | None) -> str:
    return "-" if not tag else tag + (" (not in rules)" if in_rules is False else "")


def format_table(report: Report) -> str:
    """A table for people: every untrusted string (DNS names, addresses, certificate and HTTP details)
    through the terminal escaper; a name with several addresses has a row per address (its TAG, TCP,
    TLS, and HTTP on the address the conversation used) below the name's row; below a failed or
    unprobed name, its cause and fix."""
    head = ("FQDN", "ADDRESS", "TAG", "DNS", "TCP", "TLS", "HTTP", "VERDICT")
    rows: list[tuple[tuple[str, ...], list[str]]] = []
    for r in report.results:
        fqdn = r.endpoint.fqdn if r.name in (None, r.endpoint.fqdn) else f"{r.name} ({r.endpoint.fqdn})"
        notes = []
        if r.verdict != WORKING:
            if r.cname and len(r.cname) > 1:
                notes.append("cname: " + " > ".join(r.cname))
            if r.cause:
                notes.append(f"cause: {r.cause}")
            if r.fix:
                notes.append(f"fix: {r.fix}")
        if r.unprobed:
            notes.append(f"not probed: {len(r.unprobed)} more addresses (at most {MAX_ADDRESSES} per name are)")
        if r.unused:
            notes.append(f"not used: {', '.join(r.unused)} (this host has no IPv6 route to them)")
        if len(r.paths) <= 1:
            address = r.address or (f"via {r.proxy}" if r.proxy else "-")
            hops = (_dns_cell(r), *(_short(r.hops[h]) for h in ("tcp", "tls", "http")))
            cells: tuple[str, ...] = (fqdn, address, _tag_cell(r.tag, r.in_rules), *hops, _verdict_text(r))
            rows.append((tuple(terminal(c) for c in cells), [terminal(n) for n in notes]))
            continue
        for i, p in enumerate(r.paths):
            first = i == 0
            cells = (
                fqdn if first else "",
                p.address or "-",
                _tag_cell(p.tag, p.in_rules),
                _dns_cell(r) if first else "",
                *(_short(p.hops[h]) for h in ("tcp", "tls", "http")),
                _verdict_text(r) if first else "",
            )
            rows.append((tuple(terminal(c) for c in cells), [terminal(n) for n in notes] if p is r.paths[-1] else []))
    widths = [max(len(x) for x in col) for col in zip(head, *(c for c, _ in rows), strict=True)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(head, widths, strict=True)).rstrip()]
    for cells, notes in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip())
        lines += [f"    {n}" for n in notes]
    return "\n".join(lines) + "\n"


def summary(report: Report) -> str:
    c = report.counts()
    return (
        f"{len(report.results)} endpoints: {c[WORKING]} working, {c[FAILED]} failed, {c[NOT_PROBED]} not probed "
        f"({report.elapsed:.1f} s; timeout {report.timeout:g} s per hop, deadline {report.deadline:g} s)"
    )


def report_json(report: Report) -> dict[str, Any]:
    """One object: spec, serviceTags, elapsed (seconds, as measured), timeout, deadline, exitCode,
    counts, and endpoints (one object per probed name; see Result.as_json)."""
    return {
        "spec": report.spec,
        "serviceTags": report.service_tags,
        "elapsed": report.elapsed,
        "timeout": report.timeout,
        "deadline": report.deadline,
        "exitCode": report.exit_code,
        "counts": report.counts(),
        "endpoints": [r.as_json() for r in report.results],
    }


def format_json(report: Report) -> str:
    """report_json as text, ASCII only: every control character of a network string is escaped by
    the JSON encoding."""
    return json.dumps(report_json(report), indent=2) + "\n"


class Progress:
    """A progress line on a terminal, shown once the probe takes longer than a second (a thread
    redraws it until stop())."""

    def __init__(self, stream: IO[str] | None = None, delay: float = 1.0):
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = self.stream.isatty()
        self.delay = delay
        self.done, self.total = 0, 0
        self.shown = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Progress:
        if self.enabled:
            self._thread = threading.Thread(target=self._draw, daemon=True)
            self._thread.start()
        return self

    def __call__(self, done: int, total: int) -> None:
        self.done, self.total = done, total

    def _draw(self) -> None:
        if self._stop.wait(self.delay):
            return
        while True:
            self.stream.write(f"\rprobing: {self.done}/{self.total or '?'} endpoints done")
            self.stream.flush()
            self.shown = True
            if self._stop.wait(0.25):
                return

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.shown:
            self.stream.write("\r\033[K")
            self.stream.flush()
