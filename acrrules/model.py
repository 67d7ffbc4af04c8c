"""Stage 3: the validated description as typed objects, defaults applied.

The objects can also be built directly from Python (the API used by the
property and hostile-string tests); renderers never see raw YAML data.
They are immutable NamedTuples (`_replace` makes a changed copy): a frozen
dataclass generates its methods at import, a measurable part of start-up.
"""
from __future__ import annotations

from types import MappingProxyType
from typing import Any, Mapping, NamedTuple

from . import catalog
from .load import SourceDocument


class RegistrySpec(NamedTuple):
    name: str
    sku: str
    location: str
    replicas: tuple[str, ...] = ()
    data_endpoints: str = catalog.DATA_STORAGE   # catalog.DATA_ENDPOINT_MODES, after private_link is applied
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
        return self.data_endpoints in catalog.USES_DEDICATED_DATA or self.private_link

    @property
    def uses_storage_wildcard(self) -> bool:
        return self.data_endpoints in catalog.USES_STORAGE_WILDCARD


class TargetSettings(NamedTuple):
    """Every target's settings with defaults applied (see schemas/registry.schema.json).

    Object names left None default to the description's `name` (Description.object_names).
    """

    firewall_rule_collection_group: str | None = None
    firewall_priority: int = 500
    firewall_collection_priority: int = 100
    firewall_network_rules: bool = False
    nsg_arm_priority: int = 100
    nsg_arm_name: str | None = None
    nsg_tf_priority: int = 100
    nsg_tf_name: str | None = None
    nsg_tf_resource_group_name: str | None = None
    nsg_tf_network_security_group_name: str | None = None
    nft_table: str | None = None
    nft_mode: str = catalog.NETFILTER_MODES[0]
    nft_resolvers: tuple[str, ...] = ()
    ipt_chain: str | None = None
    ipt_mode: str = catalog.NETFILTER_MODES[0]
    ipt_resolvers: tuple[str, ...] = ()


class ObjectNames(NamedTuple):
    """The names of the objects acrrules creates, each from its setting or the description's name."""

    rule_collection_group: str
    nsg_arm_rule_prefix: str
    nsg_tf_rule_prefix: str
    nft_table: str
    ipt_chain: str


def nft_name(name: str) -> str:
    """An nft identifier from a description name: '-' is not allowed there."""
    return name.replace("-", "_")


def iptables_name(name: str) -> str:
    """An iptables chain name from a description name, upper-cased as iptables' own chains are."""
    return name.replace("-", "_").upper()


class Description(NamedTuple):
    """One registry description: what the clients need to reach."""

    registries: tuple[RegistrySpec, ...]
    cloud: str = catalog.DEFAULT_CLOUD
    mcr: bool = False
    sources: tuple[str, ...] = ("*",)
    targets: TargetSettings = TargetSettings()
    source_name: str = "<api>"          # the description's path as the user typed it
    name: str = catalog.DEFAULT_NAME
    outputs: tuple[str, ...] | None = None   # None: every target the inputs allow
    # `targets:` as validated, target id -> its keys: what targets that own their settings
    # (render.Target.Settings) read; the older ones read `targets` above.
    target_data: Mapping[str, Mapping[str, Any]] = MappingProxyType({})

    @property
    def cloud_info(self) -> catalog.Cloud:
        return catalog.CLOUDS[self.cloud]

    @property
    def object_names(self) -> ObjectNames:
        t = self.targets

        def given(value: str | None, default: str) -> str:
            return default if value is None else value   # an explicit "" stays, for the filters to refuse

        return ObjectNames(
            rule_collection_group=given(t.firewall_rule_collection_group, self.name),
            nsg_arm_rule_prefix=given(t.nsg_arm_name, self.name),
            nsg_tf_rule_prefix=given(t.nsg_tf_name, self.name),
            nft_table=given(t.nft_table, nft_name(self.name)),
            ipt_chain=given(t.ipt_chain, iptables_name(self.name)),
        )


def _registry(d: dict[str, Any]) -> RegistrySpec:
    private_link = bool(d.get("private_link", False))
    data_endpoints = d.get("data_endpoints")
    if data_endpoints is None:
        data_endpoints = catalog.DATA_DEDICATED if private_link else catalog.DATA_STORAGE
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
        firewall_rule_collection_group=fw.get("rule_collection_group"),
        firewall_priority=fw.get("priority", d.firewall_priority),
        firewall_collection_priority=fw.get("collection_priority", d.firewall_collection_priority),
        firewall_network_rules=fw.get("network_rules", d.firewall_network_rules),
        nsg_arm_priority=arm.get("priority", d.nsg_arm_priority),
        nsg_arm_name=arm.get("name"),
        nsg_tf_priority=tf.get("priority", d.nsg_tf_priority),
        nsg_tf_name=tf.get("name"),
        nsg_tf_resource_group_name=tf.get("resource_group_name"),
        nsg_tf_network_security_group_name=tf.get("network_security_group_name"),
        nft_table=nft.get("table"),
        nft_mode=nft.get("mode", d.nft_mode),
        nft_resolvers=tuple(nft.get("resolvers", ())),
        ipt_chain=ipt.get("chain"),
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
        name=data.get("name", catalog.DEFAULT_NAME),
        outputs=tuple(data["outputs"]) if "outputs" in data else None,
        target_data=MappingProxyType({k: MappingProxyType(dict(v)) for k, v in data.get("targets", {}).items()}),
    )
