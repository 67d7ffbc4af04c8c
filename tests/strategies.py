"""Hypothesis strategies: random VALID registry descriptions, as the YAML data a user writes.

`descriptions()` draws a cloud, 1-50 registries with every feature combination
their SKU allows, sources and every target setting, all within what
schemas/registry.schema.json and the domain rules accept.  Names the schema
accepts but that collide with words of an output language (nft keywords,
iptables built-in chains) are drawn on purpose now and then.
"""

from __future__ import annotations

import ipaddress
import string

import yaml
from hypothesis import strategies as st

from acrrules import catalog
from acrrules.catalog import NFT_KEYWORDS
from acrrules.load import Yaml12Loader

NAME_CHARS = string.ascii_letters + string.digits

# Names the schema's patterns accept that mean something in nft or iptables.  nft keywords are
# refused by validation (they cannot name a table); their other spellings must work.
NFT_WORDS = (
    "filter",
    "nat",
    "raw",
    "mangle",
    "security",
    "Table",
    "ACCEPT",
    "Ip6",
    "DROP",
    "Priority",
    "table",
    "chain",
    "set",
    "accept",
    "counter",
    "ip",
    "ip6",
    "policy",
    "hook",
    "priority",
)
IPTABLES_WORDS = ("INPUT", "OUTPUT", "FORWARD", "ACCEPT", "DROP", "RETURN", "QUEUE", "LOG", "REJECT", "filter")


def registry_names() -> st.SearchStrategy[str]:
    return st.text(NAME_CHARS, min_size=5, max_size=50)


def _network(version: int, host: bool) -> st.SearchStrategy[str]:
    bits = 32 if version == 4 else 128
    cls = ipaddress.IPv4Network if version == 4 else ipaddress.IPv6Network

    def build(pair):
        value, length = pair
        if host:
            return str(cls((value, bits)).network_address)
        return str(cls((value, length), strict=False))

    return st.tuples(st.integers(0, 2**bits - 1), st.integers(0 if version == 4 else 8, bits)).map(build)


def addresses(*, hosts_only: bool) -> st.SearchStrategy[str]:
    """One IP address, or (unless hosts_only) a canonical CIDR; IPv4 or IPv6."""
    choices = [_network(4, True), _network(6, True)]
    if not hosts_only:
        choices += [_network(4, False), _network(6, False)]
    return st.one_of(*choices)


def _unique_addresses(hosts_only: bool, min_size: int, max_size: int):
    key = (lambda a: ipaddress.ip_address(a)) if hosts_only else (lambda a: ipaddress.ip_network(a))
    return st.lists(addresses(hosts_only=hosts_only), min_size=min_size, max_size=max_size, unique_by=key)


def optional(value_strategy, default=None):
    """Leave the key out, write the default explicitly, or draw a value."""
    choices = [st.just(_OMIT), value_strategy]
    if default is not None:
        choices.insert(1, st.just(default))
    return st.one_of(*choices)


_OMIT = object()


def _put(mapping: dict, key: str, value) -> None:
    if value is not _OMIT:
        mapping[key] = value


@st.composite
def registry(draw, name: str, locations: list[str]) -> dict:
    sku = draw(st.sampled_from(catalog.SKUS))
    home = draw(st.sampled_from(locations))
    reg = {"name": name, "sku": sku, "location": home}
    if sku == "Premium":
        others = [loc for loc in locations if loc != home]
        _put(
            reg,
            "replicas",
            draw(
                optional(
                    st.lists(st.sampled_from(others), unique=True, max_size=min(5, len(others)))
                    if others
                    else st.just([])
                )
            ),
        )
        private_link = draw(optional(st.booleans()))
        _put(reg, "private_link", private_link)
        modes = ["dedicated", "both"] if private_link is True else list(catalog.DATA_ENDPOINT_MODES)
        _put(reg, "data_endpoints", draw(optional(st.sampled_from(modes))))
        _put(reg, "regional_endpoints", draw(optional(st.booleans())))
    else:  # the Premium-only keys, written out with their non-Premium values
        _put(reg, "replicas", draw(optional(st.just([]))))
        _put(reg, "data_endpoints", draw(optional(st.just("storage"))))
        _put(reg, "regional_endpoints", draw(optional(st.just(False))))
        _put(reg, "private_link", draw(optional(st.just(False))))
    return reg


def tag_count(data: dict) -> int:
    """How many service tags the description needs: two per distinct region, plus MCR's."""
    cloud = catalog.CLOUDS[data.get("cloud", catalog.DEFAULT_CLOUD)]
    regions = {loc for r in data["registries"] for loc in [r["location"], *r.get("replicas", [])]}
    return 2 * len(regions) + (len(cloud.mcr_tags) if data.get("mcr") else 0)


def _nsg_priority(tags: int) -> st.SearchStrategy[int]:
    """A first priority whose whole block (not only the tags in use) fits below Azure's maximum."""
    last_first = catalog.NSG_PRIORITY_MAX - catalog.NSG_BLOCK_SIZE + 1
    return st.one_of(st.integers(catalog.NSG_PRIORITY_MIN, last_first), st.just(last_first))


AZURE_NAME = r"[A-Za-z0-9]([A-Za-z0-9_.-]{0,78}[A-Za-z0-9_])?"

# Kubernetes: names, namespaces, label keys and values, with the valid ones a YAML reader takes for a
# boolean, null or number when written plain drawn on purpose.
YAML_PLAIN_TRAPS = ("yes", "no", "on", "off", "y", "null", "true", "123", "0x1f", "1e3", "0o7")


def k8s_names(max_length: int = 63) -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(YAML_PLAIN_TRAPS),
        st.from_regex(rf"[a-z0-9]([-a-z0-9]{{0,{max_length - 2}}}[a-z0-9])?", fullmatch=True),
    )


def label_keys() -> st.SearchStrategy[str]:
    prefix = r"([a-z0-9]([-a-z0-9]{0,8}[a-z0-9])?\.){0,2}[a-z0-9]{1,6}/"
    return st.one_of(
        st.sampled_from(YAML_PLAIN_TRAPS + ("app", "k8s-app", "app.kubernetes.io/name")),
        st.from_regex(rf"({prefix})?[A-Za-z0-9]([-A-Za-z0-9_.]{{0,61}}[A-Za-z0-9])?", fullmatch=True),
    )


def label_values() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(YAML_PLAIN_TRAPS + ("",)),
        st.from_regex(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?", fullmatch=True),
    )


def label_maps(min_size: int = 0) -> st.SearchStrategy[dict]:
    return st.dictionaries(label_keys(), label_values(), min_size=min_size, max_size=3)


@st.composite
def cilium_settings(draw) -> dict:
    cilium: dict = {}
    scope = draw(optional(st.sampled_from(["namespace", "cluster"]), "namespace"))
    _put(cilium, "scope", scope)
    _put(cilium, "name", draw(optional(k8s_names())))
    if scope == "cluster":  # no namespace, and a selector that does not select every pod of the cluster
        _put(cilium, "endpoint_selector", draw(optional(label_maps(min_size=1))))
    else:
        _put(cilium, "namespace", draw(optional(k8s_names(), "default")))
        _put(cilium, "endpoint_selector", draw(optional(label_maps())))
    _put(cilium, "dns_namespace", draw(optional(k8s_names(), "kube-system")))
    _put(cilium, "dns_selector", draw(optional(label_maps())))
    return cilium


@st.composite
def calico_settings(draw) -> dict:
    calico: dict = {}
    _put(calico, "name", draw(optional(k8s_names(50))))
    _put(calico, "selector", draw(optional(label_maps(min_size=1))))  # an empty one would select every endpoint
    _put(calico, "namespace", draw(optional(k8s_names())))
    _put(calico, "order", draw(optional(st.integers(0, 1_000_000_000))))
    _put(calico, "dns_namespace", draw(optional(k8s_names(), "kube-system")))
    _put(calico, "dns_selector", draw(optional(label_maps())))
    return calico


@st.composite
def target_settings(draw, tags: int, cloud: str = catalog.DEFAULT_CLOUD) -> dict:
    targets: dict = {}
    fw: dict = {}
    _put(fw, "rule_collection_group", draw(optional(st.from_regex(AZURE_NAME, fullmatch=True), "acrrules")))
    _put(fw, "priority", draw(optional(st.integers(catalog.FIREWALL_PRIORITY_MIN, 64_000), 500)))
    _put(
        fw,
        "collection_priority",
        draw(optional(st.integers(catalog.FIREWALL_PRIORITY_MIN, catalog.FIREWALL_PRIORITY_MAX - 1), 100)),
    )
    _put(fw, "network_rules", draw(optional(st.booleans(), False)))
    arm: dict = {}
    _put(arm, "priority", draw(optional(_nsg_priority(tags), 100)))
    tf: dict = {}
    _put(tf, "priority", draw(optional(_nsg_priority(tags), 100)))
    _put(tf, "resource_group_name", draw(optional(st.from_regex(r"[-\w._()]{0,89}[-\w_()]", fullmatch=True))))
    _put(tf, "network_security_group_name", draw(optional(st.from_regex(AZURE_NAME, fullmatch=True))))
    nft: dict = {}
    _put(
        nft,
        "table",
        draw(
            optional(
                st.one_of(
                    st.sampled_from(NFT_WORDS), st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,31}", fullmatch=True)
                ).filter(lambda name: name not in NFT_KEYWORDS),
                "acrrules",
            )
        ),
    )
    _put(nft, "mode", draw(optional(st.sampled_from(["include", "standalone"]), "include")))
    _put(nft, "resolvers", draw(optional(_unique_addresses(True, 0, 4))))
    ipt: dict = {}
    _put(
        ipt,
        "chain",
        draw(
            optional(
                st.one_of(
                    st.sampled_from(IPTABLES_WORDS), st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,19}", fullmatch=True)
                ),
                "ACRRULES",
            )
        ),
    )
    _put(ipt, "mode", draw(optional(st.sampled_from(["include", "standalone"]), "include")))
    _put(ipt, "resolvers", draw(optional(_unique_addresses(True, 0, 4))))
    squid: dict = {}
    _put(squid, "acl_prefix", draw(optional(st.from_regex(r"[A-Za-z][A-Za-z0-9_-]{0,31}", fullmatch=True))))
    cilium, calico = draw(cilium_settings()), draw(calico_settings())
    for key, settings in (
        ("azure-firewall", fw),
        ("nsg-arm", arm),
        ("nsg-tf", tf),
        ("nftables", nft),
        ("iptables", ipt),
        ("squid", squid),
        ("lists", {}),
        ("cilium", cilium),
        ("calico", calico),
    ):
        if settings or draw(st.booleans()):
            targets[key] = settings
    return targets


@st.composite
def descriptions(draw, locations_by_cloud: dict[str, list[str]] | None = None, max_registries: int = 50) -> dict:
    """A valid description.  `locations_by_cloud` narrows the locations (e.g. to those a Service Tags file has)."""
    cloud = draw(st.sampled_from(sorted(catalog.CLOUDS)))
    locations = sorted((locations_by_cloud or {}).get(cloud) or catalog.CLOUDS[cloud].locations)
    data: dict = {"version": 1}
    if cloud != catalog.DEFAULT_CLOUD or draw(st.booleans()):
        data["cloud"] = cloud
    names = draw(st.lists(registry_names(), min_size=1, max_size=max_registries, unique_by=str.lower))
    data["registries"] = [draw(registry(n, locations)) for n in names]
    _put(data, "mcr", draw(optional(st.booleans(), False)))
    _put(data, "sources", draw(optional(st.one_of(st.just(["*"]), _unique_addresses(False, 1, 6)), ["*"])))
    tags = tag_count(data)
    _put(
        data,
        "name",
        draw(
            optional(
                st.from_regex(r"[a-z]([a-z0-9-]{0,18}[a-z0-9])?", fullmatch=True).filter(
                    lambda n: (
                        n.replace("-", "_") not in NFT_KEYWORDS
                        and n.replace("-", "_").upper() not in catalog.IPTABLES_RESERVED
                    )
                ),
                catalog.DEFAULT_NAME,
            )
        ),
    )
    settings = draw(target_settings(tags, cloud))
    if settings or draw(st.booleans()):
        data["targets"] = settings
    return data


class DescriptionDumper(yaml.SafeDumper):
    """yaml.safe_dump writes a string plain when PyYAML (YAML 1.1) would read it back as a string:
    `y`, `1e3` and `0o7` stay plain, and acrrules, reading YAML 1.2 and refusing what the two
    versions read differently, refuses them.  This dumper quotes every string that either version
    reads as anything else."""


for _first, _resolvers in Yaml12Loader.yaml_implicit_resolvers.items():
    for _tag, _regexp in _resolvers:
        DescriptionDumper.add_implicit_resolver(_tag, _regexp, [_first])


def dump_description(data: dict, **options) -> str:
    """A description as YAML text that acrrules reads back as `data`."""
    return yaml.dump(data, Dumper=DescriptionDumper, sort_keys=False, allow_unicode=True, **options)
