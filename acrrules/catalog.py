"""The domain facts, as data, in one place.

Everything acrrules knows about Azure clouds, regions, ACR/MCR endpoints and
platform limits is here; no template and no other module spells any of it.
Sources: Microsoft's ACR firewall-access and MCR documentation, and the real
Service Tags files (ground truth for tag names, see tests/test_catalog.py).
"""
from __future__ import annotations

import functools
from types import MappingProxyType
from typing import Mapping, NamedTuple

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

# What each endpoint kind is for (used in rule descriptions and the endpoints table).
ENDPOINT_KINDS = {
    "login": "registry REST API (login server)",
    "certificate": "wildcard certificate download",
    "data": "dedicated data endpoint",
    "storage": "layer blobs in Azure Storage",
    "regional": "regional endpoint",
    "mcr": "Microsoft Container Registry REST API",
    "mcr-data": "Microsoft Container Registry data",
}


class Cloud(NamedTuple):
    name: str                       # as written in the description's `cloud:`
    servicetags_cloud: str          # the `cloud` field of its Service Tags file
    login_suffix: str
    storage_wildcard: str
    mcr_fqdns: tuple[str, str]      # (REST, data wildcard)
    mcr_tags: tuple[str, ...]       # MCR service tags that exist in this cloud
    regions: tuple[str, ...]        # service-tag region names; ARM location = lower-cased

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
                "AustraliaCentral", "AustraliaCentral2", "AustraliaEast", "AustraliaSoutheast",
                "AustriaEast", "BelgiumCentral", "BrazilSouth", "BrazilSoutheast", "CanadaCentral",
                "CanadaEast", "CentralIndia", "CentralUS", "CentralUSEUAP", "ChileCentral", "EastAsia",
                "EastUS", "EastUS2", "EastUS2EUAP", "EastUSSTG", "FranceCentral", "FranceSouth",
                "GermanyNorth", "GermanyWestCentral", "IndonesiaCentral", "IsraelCentral",
                "IsraelNorthwest", "ItalyNorth", "JapanEast", "JapanWest", "JioIndiaCentral",
                "JioIndiaWest", "KoreaCentral", "KoreaSouth", "MalaysiaSouth", "MalaysiaWest",
                "MexicoCentral", "NewZealandNorth", "NorthCentralUS", "NorthEurope", "NorwayEast",
                "NorwayWest", "PolandCentral", "QatarCentral", "SouthAfricaNorth", "SouthAfricaWest",
                "SouthCentralUS", "SouthCentralUS2", "SouthCentralUSSTG", "SouthIndia", "SoutheastAsia",
                "SoutheastUS", "SoutheastUS3", "SpainCentral", "SwedenCentral", "SwedenSouth",
                "SwitzerlandNorth", "SwitzerlandWest", "TaiwanNorth", "TaiwanNorthwest", "UAECentral",
                "UAENorth", "UKSouth", "UKWest", "WestCentralUS", "WestEurope", "WestIndia", "WestUS",
                "WestUS2", "WestUS3",
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
DATA_ENDPOINT_MODES = ("storage", "dedicated", "both")


def cloud_of_location(location: str) -> str | None:
    """The cloud a location belongs to (for 'that is a US Gov location' hints)."""
    for cloud in CLOUDS.values():
        if location.lower() in cloud.locations:
            return cloud.name
    return None


# Microsoft publishes a Service Tags file every week; new ranges are used a week after they
# appear. `render` warns when the file it reads is older than this (by the date in its name).
SERVICETAGS_STALE_DAYS = 14

# Where `tags fetch` gets each cloud's file: the download page, whose link to
# ServiceTags_<Cloud>_<YYYYMMDD>.json is taken only on this host, over https.
SERVICETAGS_DOWNLOAD_PAGES = MappingProxyType({
    "AzureCloud": "https://www.microsoft.com/en-us/download/details.aspx?id=56519",
    "AzureUSGovernment": "https://www.microsoft.com/en-us/download/details.aspx?id=57063",
    "AzureChinaCloud": "https://www.microsoft.com/en-us/download/details.aspx?id=57062",
})
SERVICETAGS_DOWNLOAD_HOST = "download.microsoft.com"


# Platform limits, checked before anything is written.
NSG_PRIORITY_MIN = 100
NSG_PRIORITY_MAX = 4096
NSG_MAX_RULES = 1000               # security rules per NSG
NSG_NAME_MAX = 80
NSG_DESCRIPTION_MAX = 140
FIREWALL_PRIORITY_MIN = 100
FIREWALL_PRIORITY_MAX = 65000
FIREWALL_RCG_MAX_BYTES = 2 * 1024 * 1024   # rule collection group size (policies since July 2022)
FIREWALL_MAX_RCGS = 90                      # rule collection groups per policy
FIREWALL_MAX_NETWORK_UNIQUE = 20000       # unique sources + destinations in network rules
FIREWALL_SUPPORTS_IPV6 = False            # Azure Firewall rules take IPv4 sources only (known limitation)


# Netfilter names acrrules must not use for its own objects.
# Words nft's parser takes as keywords where acrrules writes a table name, so the file would not
# load, and nft 1.0.6 has no quoting for table names: validation rejects them as names (nft_ident
# cannot, templates also print keywords such as `ip` with it).  Found by rendering the nftables
# target with every word of nft(8) and libnftables as the table name and loading it (`nft -c -f`);
# nft keywords are case-sensitive, so "Filter" or "ACCEPT" are fine.
NFT_KEYWORDS = frozenset("""
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
""".split())

# Names our chain must not take (iptables 1.8.9): the built-in chains of every table, and
# verdicts and target extensions, which `iptables -N` / `ip6tables -N` refuse ("chain name
# may not clash with target name") and which `-j NAME` would read as the target.
IPTABLES_BUILTIN_CHAINS = frozenset({"INPUT", "OUTPUT", "FORWARD", "PREROUTING", "POSTROUTING"})
IPTABLES_TARGETS = frozenset("""
ACCEPT DROP RETURN QUEUE AUDIT CHECKSUM CLASSIFY CLUSTERIP CONNMARK CONNSECMARK CT DNAT DNPT DSCP ECN HL
HMARK IDLETIMER LED LOG MARK MASQUERADE NETMAP NFLOG NFQUEUE NOTRACK RATEEST REDIRECT REJECT SECMARK SET
SNAT SNPT SYNPROXY TCPMSS TCPOPTSTRIP TEE TOS TPROXY TRACE TTL ULOG
""".split())
IPTABLES_RESERVED = IPTABLES_BUILTIN_CHAINS | IPTABLES_TARGETS
