"""Stage 3: the validated description as typed objects, defaults applied.

The objects can also be built directly from Python (the API used by the
property and hostile-string tests); renderers never see raw YAML data.
They are immutable NamedTuples (`_replace` makes a changed copy): a frozen
dataclass generates its methods at import, a measurable part of start-up.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

from . import catalog
from .load import SourceDocument


class RegistrySpec(NamedTuple):
    name: str
    sku: str
    location: str
    replicas: tuple[str, ...] = ()
    data_endpoints: str = catalog.DATA_STORAGE  # catalog.DATA_ENDPOINT_MODES, after private_link is applied
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
    source_name: str = "<api>"  # the description's path as the user typed it
    name: str = catalog.DEFAULT_NAME
    outputs: tuple[str, ...] | None = None  # None: every target the inputs allow
    # `targets:` as validated, target id -> its keys; each target applies its own defaults
    # (render.Target.settings).
    target_data: Mapping[str, Mapping[str, Any]] = MappingProxyType({})

    @property
    def cloud_info(self) -> catalog.Cloud:
        return catalog.CLOUDS[self.cloud]


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


def build(doc: SourceDocument) -> Description:
    """A Description from a document that `validate.validate` accepted."""
    data = doc.data
    return Description(
        registries=tuple(_registry(r) for r in data["registries"]),
        cloud=data.get("cloud", catalog.DEFAULT_CLOUD),
        mcr=bool(data.get("mcr", False)),
        sources=tuple(data.get("sources", ("*",))),
        source_name=doc.name,
        name=data.get("name", catalog.DEFAULT_NAME),
        outputs=tuple(data["outputs"]) if "outputs" in data else None,
        target_data=MappingProxyType({k: MappingProxyType(dict(v)) for k, v in data.get("targets", {}).items()}),
    )
