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
