"""The Service Tags engine: which tags a description needs, and their merged prefixes.

For every `AzureContainerRegistry.<Region>` tag in every real file, a one-registry
description at that location must plan exactly that tag and `Storage.<Region>`,
and the prefix plan must be the fewest CIDRs covering exactly their union. The
expected values come from the raw JSON; exactness and minimality are checked
with integer interval arithmetic, not with the stdlib function the code uses.
"""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import pytest
from conftest import SERVICETAGS, servicetags_files
from hypothesis import given, settings
from hypothesis import strategies as st

from acrrules import catalog, pipeline, plan, servicetags
from acrrules.model import Description, RegistrySpec

CLOUD_OF_FILE = {c.servicetags_cloud: c.name for c in catalog.CLOUDS.values()}


# ---- independent checks: a set of CIDRs as integer intervals --------------------------


def intervals(nets) -> list[tuple[int, int]]:
    """The union of `nets` as sorted, merged, half-open [start, end) integer intervals."""
    spans = sorted((int(n.network_address), int(n.network_address) + n.num_addresses) for n in nets)
    out: list[list[int]] = []
    for start, end in spans:
        if out and start <= out[-1][1]:
            out[-1][1] = max(out[-1][1], end)
        else:
            out.append([start, end])
    return [tuple(s) for s in out]


def assert_exact_minimal_cover(merged, inputs, version: int) -> None:
    merged = list(merged)
    assert all(n.version == version for n in merged)
    assert merged == sorted(merged), "merged prefixes are not in address order"
    # Exact: the same addresses, and the outputs do not overlap (their sizes add up to the union's).
    assert intervals(merged) == intervals(inputs)
    assert sum(n.num_addresses for n in merged) == sum(e - s for s, e in intervals(inputs))
    # Minimal: disjoint (checked above) and no two are the halves of one larger CIDR; with an exact
    # disjoint cover, that means every output is a maximal aligned block, so none can be merged.
    halves = {}
    for n in merged:
        if n.prefixlen == 0:
            continue
        parent = n.supernet()
        assert parent not in halves, f"{halves[parent]} and {n} make {parent}"
        halves[parent] = n


# ---- the real files ---------------------------------------------------------------------


def _raw(path: Path) -> dict:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def _files():
    return sorted(SERVICETAGS.glob("ServiceTags_*_*.json")) or [pytest.param(None, marks=pytest.mark.skip)]


class _LazyPrefixes(dict):
    """tag -> its prefixes as networks, parsed on first use (a Public file has ~93,000)."""

    def __getitem__(self, name):
        value = super().__getitem__(name)
        if value and isinstance(value[0], str):
            value = [ipaddress.ip_network(p) for p in value]
            self[name] = value
        return value


@pytest.fixture(scope="module", params=_files(), ids=lambda p: getattr(p, "name", "none"))
def real(request):
    servicetags_files()
    path = request.param
    raw = _raw(path)
    prefixes = _LazyPrefixes({v["name"]: v["properties"]["addressPrefixes"] for v in raw["values"]})
    changes = {v["name"]: v["properties"]["changeNumber"] for v in raw["values"]}
    return servicetags.load(str(path)), raw, prefixes, changes


def one_registry(location: str, cloud: str, mcr: bool = False) -> Description:
    return Description(registries=(RegistrySpec("contosoacr", "Standard", location),), cloud=cloud, mcr=mcr)


def test_every_acr_region_of_every_file_plans_its_two_tags_and_their_merged_prefixes(real):
    tags_file, raw, prefixes, changes = real
    cloud = CLOUD_OF_FILE[raw["cloud"]]
    regions = [n.split(".", 1)[1] for n in prefixes if n.startswith("AzureContainerRegistry.")]
    assert len(regions) >= 6
    for region in regions:
        needed = [f"AzureContainerRegistry.{region}", f"Storage.{region}"]
        rule_plan = plan.build(one_registry(region.lower(), cloud), tags_file)
        assert [t.tag for t in rule_plan.tags] == needed, region
        assert [t.region for t in rule_plan.tags] == [region.lower()] * 2
        assert all(t.registries == ("contosoacr",) for t in rule_plan.tags)
        union = prefixes[needed[0]] + prefixes[needed[1]]
        v4 = [n for n in union if n.version == 4]
        v6 = [n for n in union if n.version == 6]
        p = rule_plan.prefixes
        assert p.v4 == tuple(ipaddress.collapse_addresses(v4)), region
        assert p.v6 == tuple(ipaddress.collapse_addresses(v6)), region
        assert_exact_minimal_cover(p.v4, v4, 4)
        assert_exact_minimal_cover(p.v6, v6, 6)
        # Per-tag changeNumbers are kept, for the output headers and for `tags diff`.
        assert p.tag_change_numbers == tuple(sorted((t, changes[t]) for t in needed))
        assert [t.change_number for t in rule_plan.tags] == [changes[t] for t in needed]
        assert (p.file_name, p.cloud, p.change_number) == (tags_file.file_name, raw["cloud"], raw["changeNumber"])


def test_mcr_adds_the_clouds_mcr_tags(real):
    tags_file, raw, prefixes, changes = real
    cloud = CLOUD_OF_FILE[raw["cloud"]]
    region = sorted(n.split(".", 1)[1] for n in prefixes if n.startswith("AzureContainerRegistry."))[0]
    rule_plan = plan.build(one_registry(region.lower(), cloud, mcr=True), tags_file)
    expected_mcr = ["MicrosoftContainerRegistry"] + (["AzureFrontDoor.FirstParty"] if raw["cloud"] == "Public" else [])
    assert [t.tag for t in rule_plan.tags] == [f"AzureContainerRegistry.{region}", f"Storage.{region}", *expected_mcr]
    assert ("AzureFrontDoor.FirstParty" in prefixes) == (raw["cloud"] == "Public")
    assert all(t.region is None and t.registries == () for t in rule_plan.tags[2:])
    union = [n for t in rule_plan.tags for n in prefixes[t.tag]]
    for version in (4, 6):
        nets = [n for n in union if n.version == version]
        assert_exact_minimal_cover(getattr(rule_plan.prefixes, f"v{version}"), nets, version)
    assert dict(rule_plan.prefixes.tag_change_numbers) == {t.tag: changes[t.tag] for t in rule_plan.tags}


def test_every_region_at_once_through_the_validating_pipeline(real, tmp_path):
    """The YAML path too: every ACR location of the file is valid and resolves to its tags."""
    tags_file, raw, prefixes, _ = real
    cloud = CLOUD_OF_FILE[raw["cloud"]]
    regions = sorted(n.split(".", 1)[1] for n in prefixes if n.startswith("AzureContainerRegistry."))
    spec = tmp_path / "all.yaml"
    spec.write_text(
        f"version: 1\ncloud: {cloud}\nregistries:\n  - name: contosoacr\n    sku: Premium\n"
        f"    location: {regions[0].lower()}\n"
        f"    replicas: [{', '.join(r.lower() for r in regions[1:])}]\n",
        encoding="utf-8",
    )
    loaded = pipeline.load_description(str(spec), tags_file)
    rule_plan = plan.build(loaded.description, tags_file)
    assert {t.tag for t in rule_plan.tags} == {
        f"{f}.{r}" for r in regions for f in ("AzureContainerRegistry", "Storage")
    }
    union = [n for t in rule_plan.tags for n in prefixes[t.tag]]
    for version in (4, 6):
        nets = [n for n in union if n.version == version]
        assert_exact_minimal_cover(getattr(rule_plan.prefixes, f"v{version}"), nets, version)


def test_registries_sharing_a_region_share_its_tags(real):
    tags_file, raw, prefixes, _ = real
    cloud = CLOUD_OF_FILE[raw["cloud"]]
    a, b = sorted(n.split(".", 1)[1] for n in prefixes if n.startswith("AzureContainerRegistry."))[:2]
    desc = Description(
        registries=(
            RegistrySpec("Zeta1", "Premium", a.lower(), (b.lower(),)),
            RegistrySpec("alpha2", "Standard", a.lower()),
        ),
        cloud=cloud,
    )
    rule_plan = plan.build(desc, tags_file)
    by_tag = {t.tag: t.registries for t in rule_plan.tags}
    assert by_tag == {
        f"AzureContainerRegistry.{a}": ("alpha2", "Zeta1"),
        f"Storage.{a}": ("alpha2", "Zeta1"),
        f"AzureContainerRegistry.{b}": ("Zeta1",),
        f"Storage.{b}": ("Zeta1",),
    }


# ---- the merge, on random prefixes ------------------------------------------------------


def _nets(version: int):
    bits = 32 if version == 4 else 128
    # Prefixes clustered in one documentation block, so they overlap, nest and touch often.
    base = int(ipaddress.ip_network("198.51.100.0/24" if version == 4 else "2001:db8::/120").network_address)
    span = 8

    def make(offset_and_len):
        offset, length = offset_and_len
        plen = bits - length
        addr = (base + offset) >> length << length
        return ipaddress.ip_network((addr, plen))

    return st.tuples(st.integers(0, 2**span - 1), st.integers(0, span)).map(make)


def _tags_file(tag_prefixes: list[list]) -> servicetags.ServiceTagsFile:
    entries = {
        f"Tag{i}": {
            "name": f"Tag{i}",
            "id": f"Tag{i}",
            "properties": {"changeNumber": i + 1, "addressPrefixes": [str(n) for n in nets]},
        }
        for i, nets in enumerate(tag_prefixes)
    }
    return servicetags.ServiceTagsFile("synthetic.json", "Public", 1, entries)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.one_of(_nets(4), _nets(6)), min_size=1, max_size=12), min_size=1, max_size=4))
def test_merge_is_exact_and_minimal(tag_prefixes):
    tags_file = _tags_file(tag_prefixes)
    rules = tuple(plan.TagRule(name, catalog.TAG_ACR, None, ()) for name in tags_file.entries)
    p = plan.prefixes(rules, tags_file)
    every = [n for nets in tag_prefixes for n in nets]
    assert_exact_minimal_cover(p.v4, [n for n in every if n.version == 4], 4)
    assert_exact_minimal_cover(p.v6, [n for n in every if n.version == 6], 6)
    assert p.tag_change_numbers == tuple((name, i + 1) for i, name in enumerate(sorted(tags_file.entries)))


def test_the_cover_checks_can_fail():
    """The helpers above reject a cover that is not exact, or not minimal."""
    a, b = ipaddress.ip_network("192.0.2.0/25"), ipaddress.ip_network("192.0.2.128/25")
    whole = ipaddress.ip_network("192.0.2.0/24")
    assert_exact_minimal_cover([whole], [a, b], 4)
    with pytest.raises(AssertionError):
        assert_exact_minimal_cover([a, b], [a, b], 4)  # mergeable halves
    with pytest.raises(AssertionError):
        assert_exact_minimal_cover([whole], [a], 4)  # covers too much
    with pytest.raises(AssertionError):
        assert_exact_minimal_cover([whole, a], [whole], 4)  # one contains another


def test_fast_prefix_parser_agrees_with_ipaddress():
    """servicetags.parse_prefix takes a C shortcut: it must accept exactly the canonical CIDR texts (what
    ipaddress writes: no netmask, bare address, `/024` or upper case, issue 13) and read them as ipaddress does."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from acrrules.servicetags import parse_prefix

    octet = st.one_of(st.integers(0, 300).map(str), st.sampled_from(["00", "01", "012", "", "-1", " 1", "1 "]))
    v4 = st.builds(
        lambda o, n: ".".join(o) + n,
        st.lists(octet, min_size=3, max_size=5),
        st.one_of(
            st.just(""),
            st.integers(-1, 40).map(lambda i: f"/{i}"),
            st.sampled_from(["/", "/ 8", "/+8", "/08", "/٢٤", "/24 "]),
        ),
    )
    v6 = st.builds(
        lambda a, n: a + n,
        st.one_of(
            st.ip_addresses(v=6).map(str),
            st.sampled_from(["::", "::1", "fe80::1%eth0", "1::2::3", "::ffff:1.2.3.4", "2001:DB8::", "12345::"]),
        ),
        st.one_of(st.just(""), st.integers(-1, 130).map(lambda i: f"/{i}")),
    )
    nets = st.one_of(
        st.ip_addresses(v=4).map(str),
        st.builds(
            lambda a, p: str(ipaddress.ip_network(f"{a}/{p}", strict=False)), st.ip_addresses(v=4), st.integers(0, 32)
        ),
        st.builds(
            lambda a, p: str(ipaddress.ip_network(f"{a}/{p}", strict=False)), st.ip_addresses(v=6), st.integers(0, 128)
        ),
    )

    @settings(max_examples=600, deadline=None)
    @given(st.one_of(v4, v6, nets, st.text(max_size=12)))
    def check(text):
        try:
            net = ipaddress.ip_network(text, strict=True)
            want = (net.version, int(net.network_address), net.prefixlen) if str(net) == text else None
        except ValueError:
            want = None
        try:
            got = parse_prefix(text)
        except ValueError:
            got = None
        assert got == want, text

    check()


def test_ipv6_text_is_what_ipaddress_writes():
    """plan._ipv6_text formats IPv6 itself (speed, and one spelling on every Python): same text as ipaddress."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from acrrules.plan import _ipv6_text

    group = st.one_of(st.just(0), st.just(0), st.integers(1, 0xFFFF))
    address = st.one_of(
        st.integers(0, (1 << 128) - 1),
        st.lists(group, min_size=8, max_size=8).map(lambda gs: sum(g << (16 * (7 - i)) for i, g in enumerate(gs))),
    )
    mapped = ipaddress.IPv6Network("::ffff:0:0/96")  # Python 3.13 writes these dotted; we keep hex

    @settings(max_examples=2000, deadline=None)
    @given(address)
    def check(n):
        if ipaddress.IPv6Address(n) not in mapped:
            assert _ipv6_text(n) == str(ipaddress.IPv6Address(n))

    check()
