"""The built-in region catalog agrees with every real Service Tags file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import servicetags_files

from acrrules import catalog, plan
from acrrules.model import Description, RegistrySpec

FILE_CLOUD = {c.servicetags_cloud: c for c in catalog.CLOUDS.values()}


def _tag_names(path: Path) -> tuple[str, set[str]]:
    data = json.loads(path.read_text(encoding="utf-8"))
    return data["cloud"], {v["name"] for v in data["values"]}


@pytest.fixture(scope="module", params=None)
def real_files():
    return servicetags_files()


def test_every_real_acr_tag_maps_from_its_arm_location(real_files):
    checked = 0
    for path in real_files:
        file_cloud, names = _tag_names(path)
        cloud = FILE_CLOUD[file_cloud]
        for name in sorted(n for n in names if n.startswith(catalog.TAG_ACR + ".")):
            region = name.split(".", 1)[1]
            location = region.lower()
            assert location in cloud.locations, f"{path.name}: {name} has no catalog location {location!r}"
            desc = Description(registries=(RegistrySpec("probeacr", "Premium", location),), cloud=cloud.name)
            tags = {t.tag for t in plan.service_tags(desc)}
            assert tags == {name, f"{catalog.TAG_STORAGE}.{region}"}, path.name
            assert f"{catalog.TAG_STORAGE}.{region}" in names, f"{path.name} lacks Storage.{region}"
            checked += 1
    assert checked >= 69 + 6 + 6


def test_catalog_has_no_location_without_a_real_tag(real_files):
    """Never guessed: every catalog region has its ACR tag in some real file of its cloud."""
    seen: dict[str, set[str]] = {}
    for path in real_files:
        file_cloud, names = _tag_names(path)
        seen.setdefault(file_cloud, set()).update(n for n in names if n.startswith(catalog.TAG_ACR + "."))
    for cloud in catalog.CLOUDS.values():
        for region in cloud.regions:
            assert f"{catalog.TAG_ACR}.{region}" in seen[cloud.servicetags_cloud], (cloud.name, region)


def test_mcr_tags_exist_in_the_cloud_files(real_files):
    for path in real_files:
        file_cloud, names = _tag_names(path)
        cloud = FILE_CLOUD[file_cloud]
        for tag in cloud.mcr_tags:
            assert tag in names, (path.name, tag)
        # The Front Door first-party tag is used only where the cloud's file has it.
        assert (catalog.TAG_AFD_FIRST_PARTY in names) == (catalog.TAG_AFD_FIRST_PARTY in cloud.mcr_tags), path.name


def test_plan_with_file_uses_the_files_tag_names(real_files):
    """With --service-tags, tag names come from the file, and agree with the catalog."""
    from acrrules import servicetags

    for path in (p for p in real_files if p.name.endswith(("20251103.json", "20251020.json"))):
        tags_file = servicetags.load(str(path))
        cloud = FILE_CLOUD[tags_file.cloud]
        regs = tuple(RegistrySpec(f"probe{i:04d}", "Premium", loc) for i, loc in enumerate(sorted(cloud.locations)))
        desc = Description(registries=regs, cloud=cloud.name, mcr=True)
        assert [t.tag for t in plan.service_tags(desc, tags_file)] == [t.tag for t in plan.service_tags(desc)]


def test_every_cloud_fits_its_nsg_slots_in_the_block():
    """Each cloud's rules fit in the documented block, and every (family, region) has its own slot."""
    for cloud in catalog.CLOUDS.values():
        slots = [catalog.nsg_slot(cloud, f, None) for f in catalog.NSG_GLOBAL_SLOTS]
        slots += [catalog.nsg_slot(cloud, f, loc) for loc in cloud.locations for f in catalog.NSG_REGION_FAMILY_SLOTS]
        assert len(slots) == len(set(slots)) and max(slots) < catalog.NSG_BLOCK_SIZE, cloud.name


def test_region_order_is_append_only():
    """NSG priorities come from each region's position in the catalog: the regions that existed when
    the slots were introduced keep their positions (new regions go at the end)."""
    first = {
        "AzureCloud": ("AustraliaCentral", "EastUS", 15, "WestUS3", 68),
        "AzureUSGovernment": ("USDoDCentral", "USGovVirginia", 5, "USGovVirginia", 5),
        "AzureChinaCloud": ("ChinaEast", "ChinaNorth3", 5, "ChinaNorth3", 5),
    }
    for name, (r0, r1, i1, r2, i2) in first.items():
        regions = catalog.CLOUDS[name].regions
        assert regions[0] == r0 and regions[i1] == r1 and regions[i2] == r2, name


def test_every_region_name_is_one_a_service_tags_file_may_add(real_files):
    """A region only a Service Tags file has becomes a location when it matches REGION_NAME (issue 13):
    the pattern must take every catalog region and every region of the real files, and nothing that
    could carry another meaning into an FQDN, a rule name or a file name."""
    for cloud in catalog.CLOUDS.values():
        assert all(catalog.REGION_NAME.fullmatch(r) for r in cloud.regions), cloud.name
    for path in real_files:
        _, names = _tag_names(path)
        for name in names:
            if name.startswith((catalog.TAG_ACR + ".", catalog.TAG_STORAGE + ".")):
                assert catalog.REGION_NAME.fullmatch(name.split(".", 1)[1]), (path, name)
    for hostile in ("*", "contoso.prod", "\u212aoreaCentral", "East US", "eastus", "EastUS\n", "Ea/st"):
        assert not catalog.REGION_NAME.fullmatch(hostile), hostile
