"""The domain facts, as data, in one place.

Everything acrrules knows about Azure clouds, regions, ACR/MCR endpoints and
platform limits is here; no template and no other module spells any of it.
Sources: Microsoft's ACR firewall-access and MCR documentation, and the real
Service Tags files (ground truth for tag names, see tests/test_catalog.py).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import NamedTuple

PORT = 443  # every ACR and MCR endpoint is HTTPS
DNS_PORT = 53  # standalone host policies let the host query its resolvers
# ICMPv6 the kernel itself must send for IPv6 to work at all (router and neighbour
# discovery, MLDv2 reports for the solicited-node groups): conntrack does not track
# them, so "established,related" never matches them.
ICMPV6_LINK_TYPES = (133, 135, 136, 143)

# Service tag families, in the order rules are emitted.
TAG_ACR = "AzureContainerRegistry"
TAG_STORAGE = "Storage"
TAG_MCR = "MicrosoftContainerRegistry"
TAG_AFD_FIRST_PARTY = "AzureFrontDoor.FirstParty"
TAG_FAMILY_ORDER = (TAG_ACR, TAG_STORAGE, TAG_MCR, TAG_AFD_FIRST_PARTY)

# What each tag carries for ACR clients (rule descriptions).  Every registry's REST API (login
# server and regional endpoints) is behind AzureContainerRegistry.<Region>, and its layer blobs,
# from the storage wildcard or from dedicated data endpoints alike, behind Storage.<Region>.
TAG_PURPOSE = {
    TAG_ACR: "Registry REST API",
    TAG_STORAGE: "Registry layer blobs (Azure Storage)",
    TAG_MCR: "Microsoft Container Registry",
    TAG_AFD_FIRST_PARTY: "Microsoft Container Registry data (Azure Front Door)",
}


class Cloud(NamedTuple):
    name: str  # as written in the description's `cloud:`
    servicetags_cloud: str  # the `cloud` field of its Service Tags file
    login_suffix: str
    storage_wildcard: str
    mcr_fqdns: tuple[str, str]  # (REST, data wildcard)
    mcr_tags: tuple[str, ...]  # MCR service tags that exist in this cloud
    regions: tuple[str, ...]  # service-tag region names; ARM location = lower-cased

    @property
    def locations(self) -> Mapping[str, str]:
        """ARM location name -> service-tag region name (read-only)."""
        return _locations(self.regions)


@functools.cache
def _locations(regions: tuple[str, ...]) -> Mapping[str, str]:
    return MappingProxyType({r.lower(): r for r in regions})


# Regions: every `AzureContainerRegistry.<Region>` tag in the real Service Tags
# files (Public 20250804..20251103, US Gov and China 20251013..20251020).  Azure's
# ARM location name is the region name lower-cased (e.g. FranceCentral ->
# francecentral, EastUSSTG -> eastusstg), which is NOT the `region` field of
# the file (that one says `centralfrance`, `usstagee`).
CLOUDS: dict[str, Cloud] = {
    c.name: c
    for c in (
        Cloud(
            name="AzureCloud",
            servicetags_cloud="Public",
            login_suffix="azurecr.io",
            storage_wildcard="*.blob.core.windows.net",
            mcr_fqdns=("mcr.microsoft.com", "*.data.mcr.microsoft.com"),
            mcr_tags=(TAG_MCR, TAG_AFD_FIRST_PARTY),
            regions=(
                "AustraliaCentral",
                "AustraliaCentral2",
                "AustraliaEast",
                "AustraliaSoutheast",
                "AustriaEast",
                "BelgiumCentral",
                "BrazilSouth",
                "BrazilSoutheast",
                "CanadaCentral",
                "CanadaEast",
                "CentralIndia",
                "CentralUS",
                "CentralUSEUAP",
                "ChileCentral",
                "EastAsia",
                "EastUS",
                "EastUS2",
                "EastUS2EUAP",
                "EastUSSTG",
                "FranceCentral",
                "FranceSouth",
                "GermanyNorth",
                "GermanyWestCentral",
                "IndonesiaCentral",
                "IsraelCentral",
                "IsraelNorthwest",
                "ItalyNorth",
                "JapanEast",
                "JapanWest",
                "JioIndiaCentral",
                "JioIndiaWest",
                "KoreaCentral",
                "KoreaSouth",
                "MalaysiaSouth",
                "MalaysiaWest",
                "MexicoCentral",
                "NewZealandNorth",
                "NorthCentralUS",
                "NorthEurope",
                "NorwayEast",
                "NorwayWest",
                "PolandCentral",
                "QatarCentral",
                "SouthAfricaNorth",
                "SouthAfricaWest",
                "SouthCentralUS",
                "SouthCentralUS2",
                "SouthCentralUSSTG",
                "SouthIndia",
                "SoutheastAsia",
                "SoutheastUS",
                "SoutheastUS3",
                "SpainCentral",
                "SwedenCentral",
                "SwedenSouth",
                "SwitzerlandNorth",
                "SwitzerlandWest",
                "TaiwanNorth",
                "TaiwanNorthwest",
                "UAECentral",
                "UAENorth",
                "UKSouth",
                "UKWest",
                "WestCentralUS",
                "WestEurope",
                "WestIndia",
                "WestUS",
                "WestUS2",
                "WestUS3",
            ),
        ),
        Cloud(
            name="AzureUSGovernment",
            servicetags_cloud="AzureGovernment",
            login_suffix="azurecr.us",
            storage_wildcard="*.blob.core.usgovcloudapi.net",
            mcr_fqdns=("mcr.microsoft.com", "*.data.mcr.microsoft.com"),
            mcr_tags=(TAG_MCR,),  # no AzureFrontDoor.FirstParty tag in this cloud
            regions=("USDoDCentral", "USDoDEast", "USGovArizona", "USGovIowa", "USGovTexas", "USGovVirginia"),
        ),
        Cloud(
            name="AzureChinaCloud",
            servicetags_cloud="China",
            login_suffix="azurecr.cn",
            storage_wildcard="*.blob.core.chinacloudapi.cn",
            mcr_fqdns=("mcr.azure.cn", "*.data.mcr.azure.cn"),
            mcr_tags=(TAG_MCR,),  # no AzureFrontDoor.FirstParty tag in this cloud
            regions=("ChinaEast", "ChinaEast2", "ChinaEast3", "ChinaNorth", "ChinaNorth2", "ChinaNorth3"),
        ),
    )
}
DEFAULT_CLOUD = "AzureCloud"

SKUS = ("Basic", "Standard", "Premium")
PREMIUM_ONLY = ("replicas", "data_endpoints", "regional_endpoints", "private_link")
# Where a registry's layer blobs are pulled from (ACR docs): the storage wildcard, dedicated data
# endpoints, or both during the migration window.  The first is the default.
DATA_STORAGE, DATA_DEDICATED, DATA_BOTH = "storage", "dedicated", "both"
DATA_ENDPOINT_MODES = (DATA_STORAGE, DATA_DEDICATED, DATA_BOTH)
USES_STORAGE_WILDCARD = frozenset({DATA_STORAGE, DATA_BOTH})
USES_DEDICATED_DATA = frozenset({DATA_DEDICATED, DATA_BOTH})

# How the netfilter files meet the host's rules; the first is the default.
NETFILTER_MODES = ("include", "standalone")


# What a region is called in service tag names (`AzureContainerRegistry.<Region>`): every region
# above matches it (tests/test_catalog.py), and a region a Service Tags file adds must too before
# its lower-cased name is taken as a location: it ends up in FQDNs, rule names and file names.
REGION_NAME = re.compile(r"[A-Z][A-Za-z0-9]{1,62}")


def cloud_of_location(location: str) -> str | None:
    """The cloud a location belongs to (for 'that is a US Gov location' hints)."""
    for cloud in CLOUDS.values():
        if location.lower() in cloud.locations:
            return cloud.name
    return None


# The rule set's name (`name:` in a description): the default of every object name acrrules
# creates, so that two descriptions can share an NSG, a firewall policy or a host.
DEFAULT_NAME = "acrrules"


# NSG rule slots.  A rule's priority is `priority + slot(tag)` and depends on nothing else, so
# adding or removing a region, a registry or MCR never renumbers another rule (Azure updates
# rules one at a time: a renumbering deployment collides with live priorities).  acrrules owns
# the block priority .. priority + NSG_BLOCK_SIZE - 1: slot 0 MicrosoftContainerRegistry, slot 1
# AzureFrontDoor.FirstParty, then for region i of the cloud's `regions` (in the order written
# there) AzureContainerRegistry at 2 + 2i and Storage at 3 + 2i.  Hence `regions` above are
# append-only: a new region goes at the end of its cloud's tuple, never in between.
NSG_BLOCK_SIZE = 256
NSG_GLOBAL_SLOTS = {TAG_MCR: 0, TAG_AFD_FIRST_PARTY: 1}
NSG_REGION_FAMILY_SLOTS = {TAG_ACR: 0, TAG_STORAGE: 1}
NSG_FIRST_REGION_SLOT = 2


def nsg_slot(cloud: Cloud, family: str, location: str | None) -> int | None:
    """The tag's fixed offset in the NSG priority block; None for a region the catalog lacks."""
    if location is None:
        return NSG_GLOBAL_SLOTS[family]
    try:
        index = [r.lower() for r in cloud.regions].index(location)
    except ValueError:
        return None
    return NSG_FIRST_REGION_SLOT + len(NSG_REGION_FAMILY_SLOTS) * index + NSG_REGION_FAMILY_SLOTS[family]


# Terraform: every --out DIR is a module of its own with these requirements (versions.tf).
# `required_version` is one that OpenTofu >= 1.6 satisfies too; azurerm 4.x is what the
# arguments are checked against (tf_schema_check.py, azurerm 4.55).
TERRAFORM_REQUIRED_VERSION = ">= 1.3.0"
TERRAFORM_AZURERM_SOURCE = "hashicorp/azurerm"
TERRAFORM_AZURERM_VERSION = "~> 4.0"

# Microsoft publishes a Service Tags file every week; new ranges are used a week after they
# appear. `render` warns when the file it reads is older than this (by the date in its name).
SERVICETAGS_STALE_DAYS = 14

# Where `tags fetch` gets each cloud's file: the download page, whose link to
# ServiceTags_<Cloud>_<YYYYMMDD>.json is taken only on this host, over https.
SERVICETAGS_DOWNLOAD_PAGES = MappingProxyType(
    {
        "AzureCloud": "https://www.microsoft.com/en-us/download/details.aspx?id=56519",
        "AzureUSGovernment": "https://www.microsoft.com/en-us/download/details.aspx?id=57063",
        "AzureChinaCloud": "https://www.microsoft.com/en-us/download/details.aspx?id=57062",
    }
)
SERVICETAGS_DOWNLOAD_HOST = "download.microsoft.com"

# A Service Tags file is untrusted input (a pull request can edit a 4 MB file nobody reads line
# by line), so every file is checked against these bounds wherever it is read (README: "Security
# model: Service Tags files"). Measured on the real files of every cloud, 2025-08 to 2025-11
# (tests/test_hostile_servicetags.py measures them again): widest prefixes IPv4 /14 and IPv6 /39,
# at most 13,155 prefixes in one tag and 95,823 in one file, changeNumbers up to 376.
SERVICETAGS_MIN_PREFIXLEN = MappingProxyType({4: 12, 6: 32})  # a wider prefix is refused
# 16 times the Public file (4 MB): a larger one is refused before JSON parsing, and not downloaded.
SERVICETAGS_MAX_BYTES = 64 * 1024 * 1024
SERVICETAGS_MAX_PREFIXES_PER_TAG = 100_000
SERVICETAGS_MAX_PREFIXES_PER_FILE = 1_000_000
SERVICETAGS_MAX_CHANGE_NUMBER = 2**31 - 1
SERVICETAGS_FUTURE_SKEW_DAYS = 1  # a file dated later than today plus this is refused
# `tags diff` and `report --since` warn when a tag's address count (per family, merged) grows by
# more than this factor from one file to the next; the real consecutive weeks grow by 4.4 at most.
SERVICETAGS_WIDENING_FACTOR = 8
# Special-purpose address space (RFC 6890 and its IANA registries) that a Service Tags file never
# lists: private, shared, loopback, link-local, multicast, reserved, IPv4-embedding IPv6 ranges.
# A prefix that overlaps one is refused. The documentation ranges (RFC 5737: 192.0.2.0/24,
# 198.51.100.0/24, 203.0.113.0/24; RFC 3849: 2001:db8::/32) stay allowed: they route nowhere,
# and tests load them into a kernel.
SERVICETAGS_SPECIAL_RANGES = MappingProxyType(
    {
        "0.0.0.0/8": "'this network' and the unspecified address (RFC 791)",
        "10.0.0.0/8": "private (RFC 1918)",
        "100.64.0.0/10": "shared address space, carrier-grade NAT (RFC 6598)",
        "127.0.0.0/8": "loopback (RFC 1122)",
        "169.254.0.0/16": "link-local (RFC 3927)",
        "172.16.0.0/12": "private (RFC 1918)",
        "192.0.0.0/24": "IETF protocol assignments (RFC 6890)",
        "192.88.99.0/24": "6to4 relay anycast (RFC 7526)",
        "192.168.0.0/16": "private (RFC 1918)",
        "198.18.0.0/15": "benchmarking (RFC 2544)",
        "224.0.0.0/4": "multicast (RFC 5771)",
        "240.0.0.0/4": "reserved and limited broadcast (RFC 1112, RFC 919)",
        "::/8": "unspecified, loopback, IPv4-mapped, IPv4-translated and NAT64 addresses (RFC 4291, RFC 6052)",
        "100::/64": "discard-only (RFC 6666)",
        "2001::/23": "IETF protocol assignments: Teredo, benchmarking, ORCHID (RFC 2928, RFC 4380)",
        "2002::/16": "6to4, which embeds any IPv4 address (RFC 3056)",
        "5f00::/16": "SRv6 segment identifiers (RFC 9602)",
        "fc00::/7": "unique local (RFC 4193)",
        "fe80::/10": "link-local (RFC 4291)",
        "fec0::/10": "site-local, deprecated (RFC 3879)",
        "ff00::/8": "multicast (RFC 4291)",
    }
)


# Platform limits, checked before anything is written.
NSG_PRIORITY_MIN = 100
NSG_PRIORITY_MAX = 4096
NSG_NAME_MAX = 80
NSG_DESCRIPTION_MAX = 140
FIREWALL_PRIORITY_MIN = 100
FIREWALL_PRIORITY_MAX = 65000
FIREWALL_RCG_MAX_BYTES = 2 * 1024 * 1024  # rule collection group size (policies since July 2022)
FIREWALL_MAX_RCGS = 90  # rule collection groups per policy
FIREWALL_MAX_NETWORK_UNIQUE = 20000  # unique sources + destinations in network rules
FIREWALL_SUPPORTS_IPV6 = False  # Azure Firewall rules take IPv4 sources only (known limitation)


# Netfilter names acrrules must not use for its own objects.
# Words nft's parser takes as keywords where acrrules writes a table name, so the file would not
# load, and nft 1.0.6 has no quoting for table names: validation rejects them as names (nft_ident
# cannot, templates also print keywords such as `ip` with it).  Found by rendering the nftables
# target with every word of nft(8) and libnftables as the table name and loading it (`nft -c -f`);
# nft keywords are case-sensitive, so "Filter" or "ACCEPT" are fine.
NFT_KEYWORDS = frozenset(
    """
    accept add ah all and arp bridge cgroup chain comment comp constant continue counter cpu create
    ct day dccp define delete describe device devices dnat drop dst dup dynamic ecn element elements
    esp ether exists expires exthdr fib flags flow flowtable flush frag fwd get goto handle hbh hook
    hour ibriport ibrname icmp icmpv6 igmp iif iifgroup iifname iiftype include index inet insert
    interval ip ip6 ipsec jhash jump limit list log lt map mark masquerade meta meter mh missing
    monitor ne netdev nftrace not notrack numgen obriport obrname offload oif oifgroup oifname
    oiftype or osf pkttype policy position priority queue quota random redefine redirect reject
    rename replace reset return rt rtclassid rule ruleset sctp secmark set size skgid skuid snat
    socket srh symhash synproxy table tcp th time timeout tproxy type typeof udp udplite undefine
    update vlan vmap xt
""".split()
)

# nft tables that are not acrrules' to own on a host (nftables target).  acrrules' files never
# delete a table (each load re-declares and refills only its own acr_* objects), but a table
# that another tool rebuilds loses acrrules' objects on that tool's next reload, and a standalone
# egress policy put into the host's own table mixes two owners of one table.
# - Refused in mode standalone (a standalone table is acrrules' alone): the tables iptables-nft
#   creates for the iptables tables (ufw and Docker's iptables backend write there too), which
#   are also the names of the distributions' sample rulesets (Debian's /etc/nftables.conf:
#   `table inet filter`).  In mode include, adding acrrules' sets and chain to the host's own
#   `filter` table is how a host's chain reaches `jump acr_allow`, so they stay allowed there.
NFT_HOST_TABLES = frozenset({"filter", "nat", "mangle", "raw", "security"})
# - Refused in both modes: tables a daemon creates and rewrites on its own reload.
#   firewalld (inet firewalld), OpenWrt firewall4 (inet fw4), LXD (inet lxd), Incus (inet incus),
#   Podman's netavark (inet netavark), libvirt's nftables backend (ip/ip6 libvirt_network),
#   the CrowdSec firewall bouncer (ip crowdsec, ip6 crowdsec6).  kube-proxy's `kube-proxy`,
#   Docker's `docker-bridges`, Tailscale's `ts-filter` and NixOS's `nixos-fw` hold a '-', which
#   a table name of acrrules cannot (schema: netfilterName).
NFT_TOOL_TABLES = frozenset(
    {"firewalld", "fw4", "lxd", "incus", "netavark", "libvirt_network", "crowdsec", "crowdsec6"}
)

# Names our chain must not take (iptables 1.8.9): the built-in chains of every table, and
# verdicts and target extensions, which `iptables -N` / `ip6tables -N` refuse ("chain name
# may not clash with target name") and which `-j NAME` would read as the target.
IPTABLES_BUILTIN_CHAINS = frozenset({"INPUT", "OUTPUT", "FORWARD", "PREROUTING", "POSTROUTING"})
IPTABLES_TARGETS = frozenset(
    """
ACCEPT DROP RETURN QUEUE AUDIT CHECKSUM CLASSIFY CLUSTERIP CONNMARK CONNSECMARK CT DNAT DNPT DSCP ECN HL
HMARK IDLETIMER LED LOG MARK MASQUERADE NETMAP NFLOG NFQUEUE NOTRACK RATEEST REDIRECT REJECT SECMARK SET
SNAT SNPT SYNPROXY TCPMSS TCPOPTSTRIP TEE TOS TPROXY TRACE TTL ULOG
""".split()
)
IPTABLES_RESERVED = IPTABLES_BUILTIN_CHAINS | IPTABLES_TARGETS
