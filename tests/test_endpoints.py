"""Endpoint derivation (spec §2), checked against an independent oracle
written straight from the spec's tables, for every feature combination in
every cloud, and through `acrrules endpoints`."""

from __future__ import annotations

import itertools
import json
import textwrap

import oracles
import pytest
from conftest import run_cli

from acrrules import plan
from acrrules.model import Description, RegistrySpec

LOCATIONS = {
    "AzureCloud": ["eastus", "westeurope", "eastusstg", "francecentral", "southcentralus2"],
    "AzureUSGovernment": ["usgovvirginia", "usgovarizona", "usdodeast"],
    "AzureChinaCloud": ["chinanorth3", "chinaeast2", "chinaeast3"],
}


def oracle(cloud, registries, mcr):
    """Spec §2 as a set of (kind, fqdn, registry, region): tests/oracles.py."""
    return oracles.endpoints({"cloud": cloud, "registries": registries, "mcr": mcr})


def combos():
    for cloud, locs in LOCATIONS.items():
        for data_ep, regional, private, mcr, replicas in itertools.product(
            [None, "storage", "dedicated", "both"], [False, True], [False, True], [False, True], [0, 2]
        ):
            if private and data_ep == "storage":
                continue  # invalid by spec §1
            yield (
                cloud,
                {
                    "name": "ContosoReg1",
                    "sku": "Premium",
                    "location": locs[0],
                    "replicas": locs[1 : 1 + replicas],
                    "data_endpoints": data_ep,
                    "regional_endpoints": regional,
                    "private_link": private,
                },
                mcr,
            )


def _spec_yaml(cloud, reg, mcr, extra_regs=()) -> str:
    regs = [reg, *extra_regs]
    lines = ["version: 1", f"cloud: {cloud}", f"mcr: {str(mcr).lower()}", "registries:"]
    for r in regs:
        lines.append(f"  - name: {r['name']}")
        for k in ("sku", "location", "data_endpoints", "regional_endpoints", "private_link"):
            if r.get(k) is not None:
                v = r[k]
                lines.append(f"    {k}: {str(v).lower() if isinstance(v, bool) else v}")
        if r.get("replicas"):
            lines.append(f"    replicas: [{', '.join(r['replicas'])}]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("cloud,reg,mcr", list(combos()))
def test_endpoints_json_equal_the_oracle(tmp_path, cloud, reg, mcr):
    other = {"name": "basicone", "sku": "Basic", "location": reg["location"]}
    spec = tmp_path / "d.yaml"
    spec.write_text(_spec_yaml(cloud, reg, mcr, [other]))
    r = run_cli("endpoints", spec, "--format", "json")
    assert r.code == 0, r.err
    got = json.loads(r.out)
    assert all(set(e) == {"kind", "fqdn", "registry", "region", "port"} and e["port"] == 443 for e in got)
    as_set = {(e["kind"], e["fqdn"], e["registry"], e["region"]) for e in got}
    assert len(as_set) == len(got), "duplicates in the endpoint list"
    assert as_set == oracle(cloud, [reg, other], mcr)
    assert got == sorted(got, key=lambda e: (e["fqdn"], e["kind"], e["registry"] or "", e["region"] or ""))


def test_registries_sharing_a_region_share_tags_and_storage():
    regs = (RegistrySpec("alphaacr", "Standard", "eastus"), RegistrySpec("betaacr1", "Basic", "eastus"))
    desc = Description(registries=regs)
    eps = plan.endpoints(desc)
    assert [e.fqdn for e in eps].count("*.blob.core.windows.net") == 1
    assert [e.fqdn for e in eps].count("azurecr.io") == 1
    tags = plan.service_tags(desc)
    assert [t.tag for t in tags] == ["AzureContainerRegistry.EastUS", "Storage.EastUS"]
    assert tags[0].registries == ("alphaacr", "betaacr1")


def test_table_format_lists_the_same_endpoints(tmp_path):
    spec = tmp_path / "d.yaml"
    spec.write_text(
        textwrap.dedent("""\
        version: 1
        registries:
          - {name: TableTest1, sku: Premium, location: westus3, replicas: [eastasia], regional_endpoints: true}
        mcr: true
        """)
    )
    table = run_cli("endpoints", spec)
    js = json.loads(run_cli("endpoints", spec, "--format", "json").out)
    assert table.code == 0
    rows = [line.split() for line in table.out.splitlines()[1:]]
    assert [(r[0], r[1]) for r in rows] == [(e["kind"], e["fqdn"]) for e in js]
    assert table.out.splitlines()[0].split() == ["KIND", "FQDN", "REGISTRY", "REGION", "PORT"]


def test_recent_and_irregular_regions_build_valid_fqdns():
    import re

    host = re.compile(r"^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,}$")
    from acrrules import catalog

    for cloud in catalog.CLOUDS.values():
        regs = tuple(
            RegistrySpec(f"reg{i:05d}", "Premium", loc, data_endpoints="both", regional_endpoints=True)
            for i, loc in enumerate(sorted(cloud.locations))
        )
        for ep in plan.endpoints(Description(registries=regs, cloud=cloud.name, mcr=True)):
            assert host.match(ep.fqdn), ep.fqdn
            assert len(ep.fqdn) <= 253
