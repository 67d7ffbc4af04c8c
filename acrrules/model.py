"""Stage 3: the validated description as typed objects, defaults applied.

The objects can also be built directly from Python (the API used by the
property and hostile-string tests); renderers never see raw YAML data.
They are immutable NamedTuples (`_replace` makes a changed copy): a frozen
dataclass generates its methods at import, a measurable part of start-up.
"""
from __future__ import annotations

from typing import Any, NamedTuple

from . import catalog
from .load import SourceDocument


class RegistrySpec(NamedTuple):
    name: str
    sku: str
    location: str
    replicas: tuple[str, ...] = ()
    data_endpoints: str = "storage"        # storage | dedicated | both, after private_link is applied
    regional_endpoints: bool = False
    private_link: bool = False

    @property
    def fqdn_name(self) -> str:
        return self.name.lower()

    @property
    def regions(self) -> tuple[str, ...]:
        """Home location first, then replicas in the order written."""
        return (self.location,) + tuple(self.replicas)

    @property
    def uses_dedicated_data(self) -> bool:
        return self.data_endpoints in ("dedicated", "both") or self.private_link

    @property
    def uses_storage_wildcard(self) -> bool:
        return self.data_endpoints in ("storage", "both")


class TargetSettings(NamedTuple):
    """Every target's settings with defaults applied (see schemas/registry.schema.json)."""

    firewall_rule_collection_group: str = "acrrules"
    firewall_priority: int = 500
    firewall_collection_priority: int = 100
    firewall_network_rules: bool = False
    nsg_arm_priority: int = 100
    nsg_tf_priority: int = 100
    nsg_tf_resource_group_name: str | None = None
    nsg_tf_network_security_group_name: str | None = None
    nft_table: str = "acrrules"
    nft_mode: str = "include"
    nft_resolvers: tuple[str, ...] = ()
    ipt_chain: str = "ACRRULES"
    ipt_mode: str = "include"
    ipt_resolvers: tuple[str, ...] = ()


class Description(NamedTuple):
    """One registry description: what the clients need to reach."""

    registries: tuple[RegistrySpec, ...]
    cloud: str = catalog.DEFAULT_CLOUD
    mcr: bool = False
    sources: tuple[str, ...] = ("*",)
    targets: TargetSettings = TargetSettings()
    source_name: str = "<api>"          # the description's path as the user typed it

    @property
    def cloud_info(self) -> catalog.Cloud:
        return catalog.CLOUDS[self.cloud]


def _registry(d: dict[str, Any]) -> RegistrySpec:
    private_link = bool(d.get("private_link", False))
    data_endpoints = d.get("data_endpoints")
    if data_endpoints is None:
        data_endpoints = "dedicated" if private_link else "storage"
    return RegistrySpec(
        name=d["name"],
        sku=d["sku"],
        location=d["location"],
        replicas=tuple(d.get("replicas") or ()),
        data_endpoints=data_endpoints,
        regional_endpoints=bool(d.get("regional_endpoints", False)),
        private_link=private_link,
    )


def _settings(t: dict[str, Any]) -> TargetSettings:
    fw = t.get("azure-firewall", {})
    arm = t.get("nsg-arm", {})
    tf = t.get("nsg-tf", {})
    nft = t.get("nftables", {})
    ipt = t.get("iptables", {})
    d = TargetSettings()
    return TargetSettings(
        firewall_rule_collection_group=fw.get("rule_collection_group", d.firewall_rule_collection_group),
        firewall_priority=fw.get("priority", d.firewall_priority),
        firewall_collection_priority=fw.get("collection_priority", d.firewall_collection_priority),
        firewall_network_rules=fw.get("network_rules", d.firewall_network_rules),
        nsg_arm_priority=arm.get("priority", d.nsg_arm_priority),
        nsg_tf_priority=tf.get("priority", d.nsg_tf_priority),
        nsg_tf_resource_group_name=tf.get("resource_group_name"),
        nsg_tf_network_security_group_name=tf.get("network_security_group_name"),
        nft_table=nft.get("table", d.nft_table),
        nft_mode=nft.get("mode", d.nft_mode),
        nft_resolvers=tuple(nft.get("resolvers", ())),
        ipt_chain=ipt.get("chain", d.ipt_chain),
        ipt_mode=ipt.get("mode", d.ipt_mode),
        ipt_resolvers=tuple(ipt.get("resolvers", ())),
    )


def build(doc: SourceDocument) -> Description:
    """A Description from a document that `validate.validate` accepted."""
    data = doc.data
    return Description(
        registries=tuple(_registry(r) for r in data["registries"]),
        cloud=data.get("cloud", catalog.DEFAULT_CLOUD),
        mcr=bool(data.get("mcr", False)),
        sources=tuple(data.get("sources", ("*",))),
        targets=_settings(data.get("targets", {})),
        source_name=doc.name,
    )
