"""The spec's tables written out by hand, independent of acrrules' own code: the oracles the
endpoint, property, render and repository tests compare acrrules with."""

from __future__ import annotations

from acrrules import catalog  # only for the region order, which the slot table is defined by

# Spec §2, cloud suffix table: (login suffix, storage wildcard, (MCR REST, MCR data)).
SPEC_SUFFIXES = {
    "AzureCloud": ("azurecr.io", "*.blob.core.windows.net", ("mcr.microsoft.com", "*.data.mcr.microsoft.com")),
    "AzureUSGovernment": (
        "azurecr.us",
        "*.blob.core.usgovcloudapi.net",
        ("mcr.microsoft.com", "*.data.mcr.microsoft.com"),
    ),
    "AzureChinaCloud": ("azurecr.cn", "*.blob.core.chinacloudapi.cn", ("mcr.azure.cn", "*.data.mcr.azure.cn")),
}
SPEC_MCR_TAGS = {
    "AzureCloud": ("MicrosoftContainerRegistry", "AzureFrontDoor.FirstParty"),
    "AzureUSGovernment": ("MicrosoftContainerRegistry",),
    "AzureChinaCloud": ("MicrosoftContainerRegistry",),
}


def endpoints(data: dict) -> set[tuple]:
    """(kind, fqdn, registry, region) of every endpoint spec §2 asks for."""
    cloud = data.get("cloud", "AzureCloud")
    login, storage, (mcr, mcr_data) = SPEC_SUFFIXES[cloud]
    out = {("certificate", login, None, None)}
    for r in data["registries"]:
        n = r["name"].lower()
        private_link = r.get("private_link", False)
        data_endpoints = r.get("data_endpoints") or ("dedicated" if private_link else "storage")
        out.add(("login", f"{n}.{login}", r["name"], None))
        if data_endpoints in ("storage", "both"):
            out.add(("storage", storage, None, None))
        for region in [r["location"], *r.get("replicas", [])]:
            if data_endpoints in ("dedicated", "both") or private_link:
                out.add(("data", f"{n}.{region}.data.{login}", r["name"], region))
            if r.get("regional_endpoints"):
                out.add(("regional", f"{n}.{region}.geo.{login}", r["name"], region))
    if data.get("mcr"):
        out |= {("mcr", mcr, None, None), ("mcr-data", mcr_data, None, None)}
    return out


def no_proxy(data: dict) -> list[str]:
    """Spec §6: the NO_PROXY hosts, the login, data and regional FQDNs of private-link registries, sorted."""
    private = {r["name"] for r in data["registries"] if r.get("private_link")}
    return sorted(
        {
            fqdn
            for kind, fqdn, registry, _ in endpoints(data)
            if registry in private and kind in ("login", "data", "regional")
        }
    )


def tags(data: dict, tag_names: set[str]) -> set[str]:
    """Service tags (§2): AzureContainerRegistry.<Region> and Storage.<Region> per region, MCR's when asked."""
    by_lower = {n.lower(): n for n in tag_names}
    cloud = data.get("cloud", "AzureCloud")
    out = set()
    for r in data["registries"]:
        for region in [r["location"], *r.get("replicas", [])]:
            for family in ("AzureContainerRegistry", "Storage"):
                out.add(by_lower[f"{family}.{region}".lower()])
    if data.get("mcr"):
        out |= set(SPEC_MCR_TAGS[cloud])
    return out


def nsg_slot(cloud: str, tag: str) -> int:
    """The README's slot table, written out independently of acrrules.catalog.nsg_slot:
    MicrosoftContainerRegistry 0, AzureFrontDoor.FirstParty 1, then per catalog region i
    AzureContainerRegistry.<R> at 2 + 2i and Storage.<R> at 3 + 2i."""
    fixed = {"MicrosoftContainerRegistry": 0, "AzureFrontDoor.FirstParty": 1}
    if tag in fixed:
        return fixed[tag]
    family, region = tag.split(".", 1)
    i = catalog.CLOUDS[cloud].regions.index(region)
    return 2 + 2 * i + {"AzureContainerRegistry": 0, "Storage": 1}[family]
