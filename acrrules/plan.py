"""Stage 4: what must be allowed, independent of any output format.

From a Description this derives the endpoints (spec §2), the service tags
(one per distinct tag, shared by the registries of a region) and, when a
Service Tags file is given, the merged IP prefixes behind those tags.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any, NamedTuple

from . import catalog
from .load import paused_gc
from .model import Description
from .servicetags import ServiceTagsFile, check_cloud


class Endpoint(NamedTuple):
    fqdn: str
    kind: str
    registry: str | None = None
    region: str | None = None
    port: int = catalog.PORT

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "fqdn": self.fqdn,
            "registry": self.registry,
            "region": self.region,
            "port": self.port,
        }


class TagRule(NamedTuple):
    """One service tag to allow, and why."""

    tag: str  # e.g. AzureContainerRegistry.EastUS
    family: str  # catalog.TAG_* it belongs to
    region: str | None  # ARM location, None for global tags
    registries: tuple[str, ...]  # which registries need it (empty for MCR)
    change_number: int | None = None  # from the Service Tags file, when one was given
    network_features: tuple[str, ...] | None = None  # the file's properties.networkFeatures, when it has them

    @property
    def purpose(self) -> str:
        """What the tag carries, for rule descriptions: true for every registry that uses it and
        a function of the tag alone, so a rule's description never changes with other rules."""
        region = f" in {self.tag.split('.', 1)[1]}" if self.region is not None else ""
        return catalog.TAG_PURPOSE[self.tag if self.region is None else self.family] + region


class Prefix(NamedTuple):
    """One merged CIDR prefix; renderers print it (ip_literal), the API reads `network`."""

    version: int  # 4 or 6
    value: int  # first address as an integer
    length: int  # prefix length

    def __str__(self) -> str:
        n, bits = self.value, (32 if self.version == 4 else 128)
        if self.version not in (4, 6) or not (0 <= n < 1 << bits and 0 <= self.length <= bits):
            raise ValueError(f"{tuple(self)!r} is not an IPv4 or IPv6 prefix")
        if self.version == 4:  # formatted directly: str() of ipaddress objects is slow in bulk
            return f"{n >> 24}.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}/{self.length}"
        return f"{_ipv6_text(n)}/{self.length}"

    @property
    def network(self) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
        return (ipaddress.IPv4Network if self.version == 4 else ipaddress.IPv6Network)((self.value, self.length))


def _ipv6_text(n: int) -> str:
    """RFC 5952 text of an IPv6 address (as ipaddress writes it): lower-case hex, the longest run
    of two or more zero groups (the first of equals) as '::'. IPv4-mapped addresses stay in hex."""
    groups = [f"{(n >> shift) & 0xFFFF:x}" for shift in range(112, -16, -16)]
    best_start, best_len, start, length = -1, 0, -1, 0
    for i, g in enumerate(groups):
        if g == "0":
            if start < 0:
                start, length = i, 0
            length += 1
            if length > best_len:
                best_start, best_len = start, length
        else:
            start = -1
    if best_len > 1:
        end = best_start + best_len
        groups[best_start:end] = [""] * (1 + (best_start == 0) + (end == 8))
    return ":".join(groups)


class PrefixPlan(NamedTuple):
    """The merged IP prefixes of all planned tags, and what they were built from."""

    file_name: str
    cloud: str
    change_number: int
    v4_prefixes: tuple[Prefix, ...]
    v6_prefixes: tuple[Prefix, ...]
    tag_change_numbers: tuple[tuple[str, int], ...]  # (tag, its changeNumber), sorted by tag

    @property
    def v4(self) -> tuple[ipaddress.IPv4Network, ...]:
        return tuple(ipaddress.IPv4Network((p.value, p.length)) for p in self.v4_prefixes)

    @property
    def v6(self) -> tuple[ipaddress.IPv6Network, ...]:
        return tuple(ipaddress.IPv6Network((p.value, p.length)) for p in self.v6_prefixes)


class RulePlan(NamedTuple):
    description: Description
    endpoints: tuple[Endpoint, ...]
    tags: tuple[TagRule, ...]
    prefixes: PrefixPlan | None = None
    service_tags_path: str | None = None  # the Service Tags file as the user named it, when given


def endpoints(desc: Description) -> tuple[Endpoint, ...]:
    """Every FQDN the clients need, sorted and de-duplicated (spec §2)."""
    cloud = desc.cloud_info
    sfx = cloud.login_suffix
    out: list[Endpoint] = [Endpoint(sfx, "certificate")]
    storage = False
    # Endpoint(...) runs the NamedTuple's Python __new__; a large description has a million of
    # them: built directly, with every field (port included), as _make() does.
    new, port, add = tuple.__new__, catalog.PORT, out.append
    for reg in desc.registries:
        n, name = reg.fqdn_name, reg.name
        add(new(Endpoint, (f"{n}.{sfx}", "login", name, None, port)))
        storage = storage or reg.uses_storage_wildcard
        dedicated, regional = reg.uses_dedicated_data, reg.regional_endpoints
        if dedicated or regional:
            for r in reg.regions:
                if dedicated:
                    add(new(Endpoint, (f"{n}.{r}.data.{sfx}", "data", name, r, port)))
                if regional:
                    add(new(Endpoint, (f"{n}.{r}.geo.{sfx}", "regional", name, r, port)))
    if storage:
        out.append(Endpoint(cloud.storage_wildcard, "storage"))
    if desc.mcr:
        rest, data = cloud.mcr_fqdns
        out.append(Endpoint(rest, "mcr"))
        out.append(Endpoint(data, "mcr-data"))
    # A validated description names each FQDN once, and then the order of the FQDNs alone is
    # the order of the endpoints: sorting the strings is twice as fast as sorting the tuples.
    # Anything else (two registries `Foo` and `foo` built through the API) takes the general way.
    by_fqdn = {ep[0]: ep for ep in out}
    if len(by_fqdn) == len(out):
        return tuple([by_fqdn[f] for f in sorted(by_fqdn)])
    return tuple(sorted(set(out)))


def _tag_region(
    desc: Description,
    location: str,
    family: str,
    tags_file: ServiceTagsFile | None,
    file_regions: dict[str, str] | None = None,
) -> str:
    """The tag's region name: from the Service Tags file when given, else the catalog; never guessed.

    `file_regions` is `tag_regions(tags_file, family, cloud)`, passed in by callers that ask many
    times (it scans every tag of the file).
    """
    if tags_file is not None:
        if file_regions is None:
            file_regions = tag_regions(tags_file, family, desc.cloud_info)
        found = file_regions.get(location)
        if found is None:
            raise tags_file.error(
                f"the Service Tags file has no {family}.<Region> tag for location {location!r}, which "
                f"{desc.source_name} uses: use a newer {tags_file.cloud} file or another location"
            )
        return found
    return desc.cloud_info.locations[location]


def tag_regions(tags_file: ServiceTagsFile, family: str, cloud: catalog.Cloud) -> dict[str, str]:
    """ARM location -> region of every `<family>.<Region>` tag of the file whose region is a plain
    region name (catalog.REGION_NAME); of two that differ only in case, the catalog's spelling."""
    out: dict[str, str] = {}
    known = cloud.locations
    prefix = family + "."
    for name in tags_file.entries:
        if not name.startswith(prefix):
            continue
        region = name[len(prefix) :]
        if not catalog.REGION_NAME.fullmatch(region):
            continue
        location = region.lower()
        if location not in out or known.get(location) == region:
            out[location] = region
    return out


def service_tags(desc: Description, tags_file: ServiceTagsFile | None = None) -> tuple[TagRule, ...]:
    """One TagRule per distinct tag, in a stable order: ACR, Storage, then MCR."""
    # tag -> (family, location, the names of the registries that need it: a dict as an ordered set,
    # so that planning stays linear in registries)
    by_tag: dict[str, tuple[str, str | None, dict[str, None]]] = {}
    families = (catalog.TAG_ACR, catalog.TAG_STORAGE)
    cloud = desc.cloud_info
    file_regions = {f: tag_regions(tags_file, f, cloud) for f in families} if tags_file is not None else {}
    # location -> the registry-name sets of its tags, one per family (found once per location)
    names_of: dict[str, list[dict[str, None]]] = {}
    for reg in desc.registries:
        name = reg.name
        for loc in reg.regions:
            sets = names_of.get(loc)
            if sets is None:
                sets = names_of[loc] = []
                for family in families:
                    tag = f"{family}.{_tag_region(desc, loc, family, tags_file, file_regions.get(family))}"
                    sets.append(by_tag.setdefault(tag, (family, loc, {}))[2])
            for names in sets:
                names[name] = None
    if desc.mcr:
        for tag in cloud.mcr_tags:
            by_tag.setdefault(tag, (tag, None, {}))
    rules = []
    for tag, (family, region, regs) in by_tag.items():
        change, features = None, None
        if tags_file is not None:
            checked = tags_file.tag(tag)
            change, features = checked.change_number, checked.network_features
        rules.append(TagRule(tag, family, region, tuple(sorted(regs, key=str.lower)), change, features))
    order = {f: i for i, f in enumerate(catalog.TAG_FAMILY_ORDER)}
    return tuple(sorted(rules, key=lambda t: (order[t.family], t.tag)))


def location_path(desc: Description, location: str | None) -> tuple[Any, ...]:
    """Where the description asks for a location (the first registry that does), or `mcr`."""
    if location is None:
        return ("mcr",)
    for i, reg in enumerate(desc.registries):
        if reg.location == location:
            return ("registries", i, "location")
        if location in reg.replicas:
            return ("registries", i, "replicas", reg.replicas.index(location))
    return ("registries",)


def collapse(blocks: Iterable[tuple[int, int]], version: int) -> tuple[Prefix, ...]:
    """The fewest CIDRs covering exactly the union of `blocks` ((first address as an integer,
    prefix length) pairs, all of one IP version), in address order.

    The same cover as ipaddress.collapse_addresses (it is unique), computed on
    integers, far faster than on network objects.
    """
    bits = 32 if version == 4 else 128
    out: list[Prefix] = []
    span_start, end = 0, -1  # the run of blocks being merged: [span_start, end)
    for start, plen in sorted(blocks):
        stop = start + (1 << (bits - plen))
        if start > end:
            if end >= 0:
                _tile(span_start, end, bits, version, out)
            span_start, end = start, stop
        elif stop > end:
            end = stop
    if end >= 0:
        _tile(span_start, end, bits, version, out)
    return tuple(out)


def _tile(start: int, end: int, bits: int, version: int, out: list[Prefix]) -> None:
    """Append the largest aligned blocks that tile [start, end)."""
    while start < end:
        size = start & -start if start else 1 << bits
        while size > end - start:
            size >>= 1
        out.append(Prefix(version, start, bits - size.bit_length() + 1))
        start += size


def prefixes(tags: tuple[TagRule, ...], tags_file: ServiceTagsFile) -> PrefixPlan:
    """The fewest CIDRs covering exactly the union of the tags' prefixes, v4 and v6 apart."""
    v4: set[tuple[int, int]] = set()
    v6: set[tuple[int, int]] = set()
    for t in tags:
        st = tags_file.tag(t.tag)
        v4.update(st.v4_blocks)
        v6.update(st.v6_blocks)
    return PrefixPlan(
        file_name=tags_file.file_name,
        cloud=tags_file.cloud,
        change_number=tags_file.change_number,
        v4_prefixes=collapse(v4, 4),
        v6_prefixes=collapse(v6, 6),
        tag_change_numbers=tuple(sorted((t.tag, tags_file.tag(t.tag).change_number) for t in tags)),
    )


def build(desc: Description, tags_file: ServiceTagsFile | None = None) -> RulePlan:
    with paused_gc():  # (see paused_gc)
        return _build(desc, tags_file)


def _build(desc: Description, tags_file: ServiceTagsFile | None) -> RulePlan:
    if tags_file is not None:
        check_cloud(tags_file, desc.cloud_info, desc.source_name)
    tags = service_tags(desc, tags_file)
    return RulePlan(
        description=desc,
        endpoints=endpoints(desc),
        tags=tags,
        prefixes=prefixes(tags, tags_file) if tags_file is not None else None,
        service_tags_path=tags_file.path if tags_file is not None else None,
    )
