"""`acrrules probe`, proven on a live path without the internet.

End to end (tests/probe_world.py): a client namespace and a "cloud" namespace joined by a veth pair,
local DNS (dnslib), HTTPS servers with certificates from a test CA (trustme) that answer like ACR
and MCR, the nftables rules acrrules renders loaded on the client, and a real squid as the proxy.
Each case asserts the verdict of every endpoint from `acrrules probe --format json`.

Unit level: tag location in a REAL Service Tags file, NO_PROXY as curl reads it, the bad-input
paths (exit 2, one message, nothing sent).
"""

from __future__ import annotations

import io
import ipaddress
import json
import re
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import (
    REPO,
    SAMPLES,
    SERVICETAGS,
    VALIDATORS,
    _missing,
    latest_servicetags,
    need_root_netns,
    need_shared,
    need_tool,
    run_cli,
    servicetags_name,
)
from netns import write_service_tags

from acrrules import probe as probing
from acrrules.plan import Endpoint

# The end-to-end tests need root, unshare, ip, nft (and squid for the proxy cases) and ../shared.
world = pytest.mark.tools

CREDS = ["probeuser", "probe-secret"]
LOGIN = "contosoprod.azurecr.io"
DATA = {r: f"contosoprod.{r}.data.azurecr.io" for r in ("eastus", "westeurope", "southeastasia")}
MCR, MCR_DATA = "mcr.microsoft.com", "eastus.data.mcr.microsoft.com"

# Documentation addresses, one per name, each inside the tag that the real file would put it in.
ADDRESSES = {
    LOGIN: "192.0.2.1",
    "azurecr.io": "192.0.2.2",
    DATA["eastus"]: "192.0.2.17",
    DATA["westeurope"]: "192.0.2.49",
    DATA["southeastasia"]: "192.0.2.81",
    MCR: "192.0.2.97",
    MCR_DATA: "192.0.2.113",
}
DOC_TAGS = {
    "AzureContainerRegistry.EastUS": ["192.0.2.0/28"],
    "Storage.EastUS": ["192.0.2.16/28"],
    "AzureContainerRegistry.WestEurope": ["192.0.2.32/28"],
    "Storage.WestEurope": ["192.0.2.48/28"],
    "AzureContainerRegistry.SoutheastAsia": ["192.0.2.64/28"],
    "Storage.SoutheastAsia": ["192.0.2.80/28"],
    "MicrosoftContainerRegistry": ["192.0.2.96/28"],
    "AzureFrontDoor.FirstParty": ["192.0.2.112/28"],
}


def need_world() -> None:
    need_root_netns()
    need_tool("ip", "nft")
    for module in ("dnslib", "trustme"):
        try:
            __import__(module)
        except ImportError:
            _missing(f"{module} is not installed (pip install -e '.[test]')")


# ---- building a world ----------------------------------------------------------------------------


class Certs:
    def __init__(self, tmp: Path):
        import trustme

        self.tmp = tmp
        self.ca = trustme.CA(organization_name="acrrules test registry CA")
        self.other = trustme.CA(organization_name="Intercepting Proxy Ltd")
        self.bundle = tmp / "registry-ca.pem"
        self.ca.cert_pem.write_to_path(str(self.bundle))
        self.n = 0

    def issue(self, name: str, other: bool = False) -> str:
        self.n += 1
        path = self.tmp / f"server{self.n}.pem"
        (self.other if other else self.ca).issue_cert(name).private_key_and_cert_chain_pem.write_to_path(str(path))
        return str(path)


def server(
    certs: Certs, name: str, address: str, role: str, redirect: str | None = None, other=False, cert_for=None
) -> dict:
    return {
        "name": name,
        "address": address,
        "role": role,
        "redirect": redirect,
        "pem": certs.issue(cert_for or name, other) if role != "silent" else None,
    }


def geo_world(certs: Certs) -> dict:
    roles = {LOGIN: ("acr", DATA["eastus"]), MCR: ("mcr", MCR_DATA)}
    servers = [server(certs, n, a, *roles.get(n, ("data", None))) for n, a in ADDRESSES.items()]
    return {"dns": {n: {"a": [a]} for n, a in ADDRESSES.items()}, "servers": servers, "credentials": CREDS}


def geo_description(replicas=("westeurope", "southeastasia")) -> str:
    """samples/geo-replicated-premium.yaml, its clients moved to the test client's network and its
    nftables rules a complete egress policy that lets DNS reach the test resolver."""
    data = yaml.safe_load((SAMPLES / "geo-replicated-premium.yaml").read_text(encoding="utf-8"))
    data["registries"][0]["replicas"] = list(replicas)
    data["sources"] = ["203.0.113.0/24"]
    data["targets"]["nftables"] = {"mode": "standalone", "resolvers": ["203.0.113.53"]}
    return yaml.safe_dump(data, sort_keys=False)


def probe_cmd(spec: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "acrrules", "probe", str(spec), "--format", "json", *extra]


def probe_action(spec: Path, *extra: str, env: dict | None = None) -> dict:
    return {"cmd": probe_cmd(spec, *extra), "env": dict(env or {})}


def report(result: dict) -> dict:
    assert result["rc"] in (0, 1), result["err"]
    data = json.loads(result["out"])
    assert data["exitCode"] == result["rc"]
    return data


def verdicts(data: dict) -> dict[str, tuple[str, str | None]]:
    """probed name (the wildcard itself when not probed) -> (verdict, failed hop)."""
    return {e["probedName"] or e["fqdn"]: (e["verdict"], e["failedHop"]) for e in data["endpoints"]}


ALL_WORKING = dict.fromkeys(ADDRESSES, ("working", None))


# ---- cases 1-4: the geo-replicated, dedicated-data-endpoint sample -------------------------------


@pytest.fixture(scope="module")
def geo(tmp_path_factory):
    need_world()
    need_tool("squid")
    need_shared()
    from probe_world import PROXY, run

    tmp = tmp_path_factory.mktemp("geo")
    certs = Certs(tmp)
    tags = write_service_tags(tmp / servicetags_name(7), DOC_TAGS)
    spec = tmp / "geo.yaml"
    spec.write_text(geo_description(), encoding="utf-8")
    reduced = tmp / "geo-without-westeurope.yaml"
    reduced.write_text(geo_description(("southeastasia",)), encoding="utf-8")
    rendered = {}
    for name, desc in (("full", spec), ("reduced", reduced)):
        out = tmp / f"out-{name}"
        r = run_cli("render", desc, "--target", "nftables", "--target", "squid", "--service-tags", tags, "--out", out)
        assert r.code == 0, r.err
        rendered[name] = {p.name: p.read_text(encoding="utf-8") for p in out.iterdir()}
    squid_conf = rendered["full"]["acrrules-squid.conf"]
    without_data = "".join(
        line for line in squid_conf.splitlines(True) if not re.search(r"dstdomain contosoprod\.\w+\.data\.", line)
    )
    assert without_data != squid_conf
    common = ("--nameserver", "203.0.113.53", "--ca-bundle", str(certs.bundle), "--image", "app/web:1.0")
    creds = {"ACRRULES_PROBE_USERNAME": CREDS[0], "ACRRULES_PROBE_PASSWORD": CREDS[1]}
    with_tags = (*common, "--service-tags", str(tags))
    proxy_env = {**creds, "HTTPS_PROXY": PROXY}
    check = str(VALIDATORS / "squid_check.sh")
    results = run(
        geo_world(certs),
        [
            probe_action(spec, *with_tags, env=creds),  # 0: no rules
            {"nft": rendered["full"]["acrrules.nft"]},  # 1
            probe_action(spec, *with_tags, env=creds),  # 2: the rules of the description
            {"nft": rendered["reduced"]["acrrules.nft"]},  # 3
            probe_action(spec, *with_tags, env=creds),  # 4: the rules without westeurope
            {"cmd": ["nft", "flush", "ruleset"]},  # 5
            {"squid": squid_conf, "check_script": check},  # 6
            probe_action(spec, *common, env=proxy_env),  # 7: through squid
            {"squid_stop": True},  # 8
            {"squid": without_data, "check_script": check},  # 9
            probe_action(spec, *common, env=proxy_env),  # 10: a squid without the data endpoints
            probe_action(spec, *common, env={**proxy_env, "NO_PROXY": ".data.azurecr.io"}),  # 11
        ],
    )
    for i in (1, 3, 5):
        assert results[i]["rc"] == 0, results[i]["err"]
    return results


@world
def test_no_rules_every_endpoint_works(geo):
    data = report(geo[0])
    assert geo[0]["rc"] == 0
    assert verdicts(data) == ALL_WORKING
    by_name = {e["probedName"]: e for e in data["endpoints"]}
    # The wildcard was probed through the name MCR's blob redirect gave, and the registry's blob
    # redirect was followed to its data endpoint.
    assert by_name[MCR_DATA]["fqdn"] == "*.data.mcr.microsoft.com"
    assert by_name[DATA["eastus"]]["hops"]["http"] == {"status": "ok", "detail": "blob 200"}
    assert "blob 307" in by_name[LOGIN]["hops"]["http"]["detail"]
    assert by_name[LOGIN]["tag"] == "AzureContainerRegistry.EastUS" and by_name[LOGIN]["inRules"] is True
    assert by_name[DATA["westeurope"]]["tag"] == "Storage.WestEurope"


@world
def test_with_the_rendered_nftables_rules_still_every_endpoint_works(geo):
    assert geo[2]["rc"] == 0, geo[2]["out"]
    assert verdicts(report(geo[2])) == ALL_WORKING


@world
def test_rules_without_a_region_block_exactly_its_endpoints_at_tcp(geo):
    data = report(geo[4])
    assert geo[4]["rc"] == 1
    assert verdicts(data) == {**ALL_WORKING, DATA["westeurope"]: ("failed", "tcp")}
    (blocked,) = [e for e in data["endpoints"] if e["verdict"] == "failed"]
    assert blocked["problem"] == "tcp-timeout"
    assert blocked["address"] == ADDRESSES[DATA["westeurope"]] and "Storage.WestEurope" in blocked["fix"]


@world
def test_through_squid_with_the_rendered_conf_every_endpoint_works(geo):
    data = report(geo[7])
    assert geo[7]["rc"] == 0, geo[7]["out"]
    assert verdicts(data) == ALL_WORKING
    assert {e["proxy"] for e in data["endpoints"]} == {"203.0.113.1:3128"}
    assert {e["hops"]["tcp"]["detail"] for e in data["endpoints"]} == {"CONNECT 200"}


@world
def test_a_squid_without_the_data_endpoints_fails_exactly_them_at_connect(geo):
    data = report(geo[10])
    assert geo[10]["rc"] == 1
    assert verdicts(data) == {**ALL_WORKING, **dict.fromkeys(DATA.values(), ("failed", "tcp"))}
    failed = [e for e in data["endpoints"] if e["verdict"] == "failed"]
    assert {e["problem"] for e in failed} == {"proxy-refused"}
    assert {e["hops"]["tcp"]["detail"] for e in failed} == {"CONNECT 403"}


@world
def test_no_proxy_sends_the_data_endpoints_around_the_proxy(geo):
    """NO_PROXY=.data.azurecr.io: the data endpoints go direct (resolved by the client), the rest
    through the squid that lacks them: every endpoint works."""
    data = report(geo[11])
    assert geo[11]["rc"] == 0, geo[11]["out"]
    proxied = {e["probedName"]: e["proxy"] for e in data["endpoints"]}
    assert {n for n, p in proxied.items() if p is None} == set(DATA.values())


# ---- case 5: each failure its own verdict --------------------------------------------------------


def real_public_address() -> str:
    """An address of AzureContainerRegistry.EastUS in the real file: a private-link name's public answer."""
    values = json.loads(latest_servicetags().read_text(encoding="utf-8"))["values"]
    prefixes = next(v for v in values if v["name"] == "AzureContainerRegistry.EastUS")["properties"]["addressPrefixes"]
    net = ipaddress.ip_network(next(p for p in prefixes if ":" not in p))
    return str(net.network_address + 1)


FAULTS_SPEC = """version: 1
registries:
  - {name: privreg, sku: Premium, location: eastus, private_link: true}
  - {name: interceptreg, sku: Basic, location: eastus}
  - {name: blockedreg, sku: Basic, location: eastus}
  - {name: ghostreg, sku: Basic, location: eastus}
  - {name: silentreg, sku: Basic, location: eastus}
  - {name: storagereg, sku: Basic, location: eastus}
  - {name: wrongnamereg, sku: Basic, location: eastus}
"""


@pytest.fixture(scope="module")
def faults(tmp_path_factory):
    need_world()
    need_shared()
    from probe_world import run

    tmp = tmp_path_factory.mktemp("faults")
    certs = Certs(tmp)
    spec = tmp / "faults.yaml"
    spec.write_text(FAULTS_SPEC, encoding="utf-8")
    public = real_public_address()
    dns = {
        "privreg.azurecr.io": {"cname": "privreg.privatelink.azurecr.io"},
        "privreg.privatelink.azurecr.io": {"a": [public]},
        "privreg.eastus.data.azurecr.io": {"cname": "privreg.eastus.data.privatelink.azurecr.io"},
        "privreg.eastus.data.privatelink.azurecr.io": {"a": ["192.0.2.21"]},
        "azurecr.io": {"a": ["192.0.2.2"]},
        "interceptreg.azurecr.io": {"a": ["192.0.2.3"]},
        "blockedreg.azurecr.io": {"a": ["192.0.2.4"]},
        "silentreg.azurecr.io": {"a": ["192.0.2.5"]},
        "storagereg.azurecr.io": {"a": ["192.0.2.6"]},
        "storagereg1.blob.core.windows.net": {"a": ["192.0.2.7"]},
        "other1.blob.core.windows.net": {"a": ["192.0.2.8"]},
        "wrongnamereg.azurecr.io": {"a": ["192.0.2.9"]},
        "strayreg.azurecr.io": {"a": ["192.0.2.10"]},
        "strayreg.eastus.data.azurecr.io": {"a": ["192.0.2.11"]},
        "straystore.blob.core.windows.net": {"a": ["192.0.2.12"]},
    }
    servers = [
        server(certs, "privreg.eastus.data.azurecr.io", "192.0.2.21", "data"),
        server(certs, "azurecr.io", "192.0.2.2", "data"),
        server(certs, "interceptreg.azurecr.io", "192.0.2.3", "acr", other=True),
        server(certs, "blockedreg.azurecr.io", "192.0.2.4", "blockpage"),
        server(certs, "silentreg.azurecr.io", "192.0.2.5", "silent"),
        server(certs, "storagereg.azurecr.io", "192.0.2.6", "acr", redirect="storagereg1.blob.core.windows.net"),
        server(certs, "storagereg1.blob.core.windows.net", "192.0.2.7", "data"),
        server(certs, "other1.blob.core.windows.net", "192.0.2.8", "data"),
        server(certs, "wrongnamereg.azurecr.io", "192.0.2.9", "acr", cert_for="portal.example"),
        server(certs, "strayreg.azurecr.io", "192.0.2.10", "acr", redirect="straystore.blob.core.windows.net"),
        server(certs, "strayreg.eastus.data.azurecr.io", "192.0.2.11", "data"),
        server(certs, "straystore.blob.core.windows.net", "192.0.2.12", "data"),
    ]
    args = ("--nameserver", "203.0.113.53", "--ca-bundle", str(certs.bundle), "--timeout", "2", "--deadline", "20")
    resolv = tmp / "resolv.conf"
    resolv.write_text("nameserver 203.0.113.53\n", encoding="utf-8")
    # The system resolver: /etc/resolv.conf (bind-mounted in a mount namespace of its own) names the
    # test DNS server; no --nameserver.  The table is what people read.
    table = probe_cmd(spec, "--ca-bundle", str(certs.bundle), "--timeout", "2", "--format", "table")
    system = {
        "cmd": ["unshare", "-m", "sh", "-c", 'mount --bind "$0" /etc/resolv.conf && exec "$@"', str(resolv), *table],
        "env": {},
    }
    # The test CA in the trust store the system's OpenSSL reads (SSL_CERT_FILE), no --ca-bundle: a
    # chain the client trusts, from an issuer other than the registry's, is TLS interception.
    trusted = probe_action(
        spec, "--nameserver", "203.0.113.53", "--timeout", "2", env={"SSL_CERT_FILE": str(certs.bundle)}
    )
    # The storage wildcard through the registry's blob redirect (--image, credentials from the
    # environment) and through --data-host.
    wildcard = probe_action(
        spec,
        *args,
        "--image",
        "storagereg.azurecr.io/app/web:1.0",
        "--data-host",
        "other1.blob.core.windows.net",
        env={"ACRRULES_PROBE_USERNAME": CREDS[0], "ACRRULES_PROBE_PASSWORD": CREDS[1]},
    )
    # A registry described with dedicated data endpoints that redirects blobs to a storage account.
    stray = tmp / "stray.yaml"
    stray.write_text(
        "version: 1\nregistries:\n  - {name: strayreg, sku: Premium, location: eastus, data_endpoints: dedicated}\n",
        encoding="utf-8",
    )
    unlisted = probe_action(
        stray,
        *args,
        "--image",
        "app/web:1.0",
        env={"ACRRULES_PROBE_USERNAME": CREDS[0], "ACRRULES_PROBE_PASSWORD": CREDS[1]},
    )
    results = run(
        {"dns": dns, "servers": servers, "credentials": CREDS},
        [probe_action(spec, *args), system, trusted, wildcard, unlisted],
    )
    return results, public


@world
def test_each_fault_has_its_own_verdict(faults):
    (result, *_), public = faults
    data = report(result)
    assert result["rc"] == 1
    got = {
        n: (v, e["problem"]) for n, v, e in ((e["probedName"] or e["fqdn"], e["verdict"], e) for e in data["endpoints"])
    }
    assert got == {
        "azurecr.io": ("working", None),
        "privreg.azurecr.io": ("failed", "public-address-for-private-link"),
        "privreg.eastus.data.azurecr.io": ("working", None),
        "*.blob.core.windows.net": ("not probed", None),
        "interceptreg.azurecr.io": ("failed", "tls-interception"),
        "blockedreg.azurecr.io": ("failed", "not-a-registry"),
        "ghostreg.azurecr.io": ("failed", "nxdomain"),
        "silentreg.azurecr.io": ("failed", "tls-timeout"),
        "storagereg.azurecr.io": ("working", None),
        "wrongnamereg.azurecr.io": ("failed", "tls-name-mismatch"),
    }
    by = {e["probedName"] or e["fqdn"]: e for e in data["endpoints"]}
    private = by["privreg.azurecr.io"]
    assert private["cname"] == ["privreg.azurecr.io", "privreg.privatelink.azurecr.io"]
    assert public in private["cause"] and private["failedHop"] == "dns"
    assert "Intercepting Proxy Ltd" in by["interceptreg.azurecr.io"]["cause"]
    assert by["blockedreg.azurecr.io"]["hops"]["http"]["detail"] == "block page"
    assert "Access denied by policy" in by["blockedreg.azurecr.io"]["cause"]
    assert by["ghostreg.azurecr.io"]["hops"]["dns"]["detail"] == "NXDOMAIN"
    assert by["silentreg.azurecr.io"]["hops"]["tcp"]["status"] == "ok"
    assert data["elapsed"] < data["deadline"]


@world
def test_the_system_resolver_and_the_table(faults):
    """Without --nameserver the probe asks the resolver of /etc/resolv.conf; the table shows the same
    verdicts as the JSON, each failure followed by its cause and fix."""
    (_, table_run, *_), _ = faults
    assert table_run["rc"] == 1, table_run["err"]
    rows = {}
    for line in table_run["out"].splitlines()[1:]:
        if not line.startswith(" "):
            rows[line.split()[0]] = line.split("  ")[-1].strip()
    assert rows == {
        "azurecr.io": "working",
        "privreg.azurecr.io": "FAIL DNS",
        "privreg.eastus.data.azurecr.io": "working",
        "*.blob.core.windows.net": "not probed",
        "interceptreg.azurecr.io": "FAIL TLS",
        "blockedreg.azurecr.io": "FAIL HTTP",
        "ghostreg.azurecr.io": "FAIL DNS",
        "silentreg.azurecr.io": "FAIL TLS",
        "storagereg.azurecr.io": "working",
        "wrongnamereg.azurecr.io": "FAIL TLS",
    }
    assert table_run["out"].count("    cause: ") == 7 and table_run["out"].count("    fix: ") == 7
    assert "10 endpoints: 3 working, 6 failed, 1 not probed" in table_run["err"]


@world
def test_a_trusted_issuer_other_than_the_registrys_is_interception(faults):
    (_, _, trusted, *_), _ = faults
    data = report(trusted)
    tls = {e["probedName"]: e["problem"] for e in data["endpoints"] if e["hops"]["tls"]["status"] == "fail"}
    assert tls["azurecr.io"] == tls["privreg.eastus.data.azurecr.io"] == "tls-interception"
    causes = {e["probedName"]: e["cause"] for e in data["endpoints"]}
    for name in ("azurecr.io", "privreg.eastus.data.azurecr.io"):
        assert "issued by" in causes[name] and "acrrules test registry CA" in causes[name], causes[name]
    assert "Intercepting Proxy Ltd" in causes["interceptreg.azurecr.io"]


@world
def test_a_wildcard_is_probed_through_the_registrys_redirect_and_data_host(faults):
    (*_, wildcard, _), _ = faults
    data = report(wildcard)
    rows = {e["probedName"]: e for e in data["endpoints"] if e["fqdn"] == "*.blob.core.windows.net"}
    assert set(rows) == {"storagereg1.blob.core.windows.net", "other1.blob.core.windows.net"}
    assert {n: r["verdict"] for n, r in rows.items()} == dict.fromkeys(rows, "working")
    # The registry's redirect is fetched (a blob); the --data-host name is checked up to TLS.
    assert rows["storagereg1.blob.core.windows.net"]["hops"]["http"] == {"status": "ok", "detail": "blob 200"}
    assert rows["other1.blob.core.windows.net"]["hops"]["http"]["status"] == "skip"
    login = next(e for e in data["endpoints"] if e["fqdn"] == "storagereg.azurecr.io")
    assert login["hops"]["http"]["detail"] == "401 Bearer; manifest; blob 307 > storagereg1.blob.core.windows.net"


@world
def test_a_redirect_to_a_host_the_description_lacks_is_a_failure(faults):
    (*_, unlisted), _ = faults
    data = report(unlisted)
    assert unlisted["rc"] == 1
    got = {e["probedName"]: (e["kind"], e["verdict"], e["problem"]) for e in data["endpoints"]}
    assert got == {
        "azurecr.io": ("certificate", "working", None),
        "strayreg.azurecr.io": ("login", "working", None),
        "strayreg.eastus.data.azurecr.io": ("data", "working", None),
        "straystore.blob.core.windows.net": ("redirect", "failed", "unlisted-redirect"),
    }


# ---- the system resolver: nsswitch order, the hosts file, every address ---------------------------

RESOLVER_SPEC = """version: 1
registries:
  - {name: pinnedreg, sku: Premium, location: eastus, private_link: true}
  - {name: tworeg, sku: Basic, location: eastus}
  - {name: outsidereg, sku: Basic, location: eastus}
sources: ["203.0.113.0/24"]
targets:
  nftables: {mode: standalone, resolvers: ["203.0.113.53"]}
"""
# The rendered tags hold 192.0.2.0/28 and 192.0.2.16/28; 192.0.2.128/28 is a tag the rules lack.
RESOLVER_TAGS = {
    "AzureContainerRegistry.EastUS": ["192.0.2.0/28"],
    "Storage.EastUS": ["192.0.2.16/28"],
    "AzureContainerRegistry.JapanEast": ["192.0.2.128/28"],
}
PINNED_HOSTS = """# private endpoints, pinned as private-link setups do
192.0.2.5    pinnedreg.privatelink.azurecr.io pinnedreg.azurecr.io
192.0.2.21   pinnedreg.eastus.data.azurecr.io   # the data endpoint
192.0.2.135  outsidereg.azurecr.io
"""


def with_system_files(files: dict[str, Path], cmd: list[str]) -> list[str]:
    """`cmd` in a mount namespace of its own where each of `files` (target -> source) is bind-mounted."""
    mounts = [f'mount --bind "${i}" {t}' for i, t in enumerate(files)]
    script = " && ".join([*mounts, f"shift {len(files) - 1}", 'exec "$@"'])
    return ["unshare", "-m", "sh", "-c", script, *(str(v) for v in files.values()), *cmd]


@pytest.fixture(scope="module")
def resolver(tmp_path_factory):
    need_world()
    need_shared()
    from probe_world import run

    tmp = tmp_path_factory.mktemp("resolver")
    certs = Certs(tmp)
    spec = tmp / "resolver.yaml"
    spec.write_text(RESOLVER_SPEC, encoding="utf-8")
    tags = write_service_tags(tmp / servicetags_name(7), RESOLVER_TAGS)
    out = tmp / "out"
    r = run_cli("render", spec, "--target", "nftables", "--service-tags", tags, "--out", out)
    assert r.code == 0, r.err
    public = real_public_address()
    dns = {
        # DNS alone would give the private-link name a public address, and outsidereg one inside the rules.
        "pinnedreg.azurecr.io": {"cname": "pinnedreg.privatelink.azurecr.io"},
        "pinnedreg.privatelink.azurecr.io": {"a": [public]},
        "outsidereg.azurecr.io": {"a": ["192.0.2.6"]},
        "azurecr.io": {"a": ["192.0.2.2"]},
        "tworeg.azurecr.io": {"a": ["192.0.2.3", "192.0.2.131"]},
    }
    servers = [
        server(certs, "azurecr.io", "192.0.2.2", "data"),
        server(certs, "pinnedreg.azurecr.io", "192.0.2.5", "acr"),
        server(certs, "pinnedreg.eastus.data.azurecr.io", "192.0.2.21", "data"),
        server(certs, "outsidereg.azurecr.io", "192.0.2.135", "acr"),
        server(certs, "tworeg.azurecr.io", "192.0.2.3", "acr"),
        server(certs, "tworeg.azurecr.io", "192.0.2.131", "acr"),
    ]
    files = {}
    for target, text in (
        ("/etc/resolv.conf", "nameserver 203.0.113.53\n"),
        ("/etc/hosts", PINNED_HOSTS),
        ("/etc/nsswitch.conf", "passwd: files\nhosts:          files dns\n"),
    ):
        path = tmp / Path(target).name
        path.write_text(text, encoding="utf-8")
        files[target] = path
    ca = ("--ca-bundle", str(certs.bundle), "--timeout", "2", "--deadline", "20")

    def system(*extra: str) -> dict:
        return {"cmd": with_system_files(files, probe_cmd(spec, *ca, *extra)), "env": {}, "timeout": 90}

    results = run(
        {"dns": dns, "servers": servers},
        [
            system("--service-tags", str(tags)),  # 0: where each address lies, no rules
            {"nft": (out / "acrrules.nft").read_text(encoding="utf-8")},  # 1: the rendered rules
            system(),  # 2: JSON, with the rules
            system("--format", "table"),  # 3: the table, with the rules
        ],
    )
    assert results[1]["rc"] == 0, results[1]["err"]
    return results


def by_name(data: dict) -> dict[str, dict]:
    return {e["probedName"] or e["fqdn"]: e for e in data["endpoints"]}


@world
def test_a_private_link_name_pinned_in_the_hosts_file_passes(resolver):
    """nsswitch says files before dns: the hosts file's private address wins over DNS's public one,
    and the output says the answer came from the hosts file."""
    got = by_name(report(resolver[0]))
    for name, address in (("pinnedreg.azurecr.io", "192.0.2.5"), ("pinnedreg.eastus.data.azurecr.io", "192.0.2.21")):
        e = got[name]
        assert (e["verdict"], e["dnsSource"], e["addresses"]) == ("working", "hosts", [address]), e
        assert e["hops"]["dns"]["detail"].startswith("hosts file")
    assert got["pinnedreg.azurecr.io"]["cname"] == ["pinnedreg.azurecr.io", "pinnedreg.privatelink.azurecr.io"]
    assert got["tworeg.azurecr.io"]["dnsSource"] == "dns"


@world
def test_a_hosts_entry_outside_the_rendered_tags_fails_at_the_tag(resolver):
    e = by_name(report(resolver[0]))["outsidereg.azurecr.io"]
    assert (e["verdict"], e["failedHop"], e["problem"]) == ("failed", "tag", "outside-rules")
    assert (e["address"], e["tag"], e["dnsSource"]) == ("192.0.2.135", "AzureContainerRegistry.JapanEast", "hosts")
    assert "pinned in /etc/hosts" in e["cause"] and "AzureContainerRegistry.JapanEast" in e["cause"]


@world
def test_every_address_is_located_and_the_one_outside_is_named(resolver):
    e = by_name(report(resolver[0]))["tworeg.azurecr.io"]
    assert [p["address"] for p in e["paths"]] == ["192.0.2.3", "192.0.2.131"]
    assert (e["verdict"], e["failedHop"], e["failedAddresses"]) == ("failed", "tag", ["192.0.2.131"])
    assert [p["verdict"] for p in e["paths"]] == ["working", "failed"]
    assert "192.0.2.131" in e["cause"] and e["tag"] == "AzureContainerRegistry.JapanEast"


@world
def test_a_name_with_one_address_blocked_by_the_rendered_rules_fails_naming_it(resolver):
    data = report(resolver[2])
    assert resolver[2]["rc"] == 1
    got = by_name(data)
    e = got["tworeg.azurecr.io"]
    assert (e["verdict"], e["failedHop"], e["problem"]) == ("failed", "tcp", "tcp-timeout")
    assert e["failedAddresses"] == ["192.0.2.131"] and e["address"] == "192.0.2.131"
    first, second = e["paths"]
    assert (first["hops"]["tcp"]["status"], first["hops"]["tls"]["status"]) == ("ok", "ok")
    assert first["hops"]["http"] == {"status": "ok", "detail": "401 Bearer"}  # the client falls back to it
    assert second["hops"]["tcp"]["status"] == "fail" and "192.0.2.131" in e["cause"]
    assert {n: v["verdict"] for n, v in got.items()} == {
        "pinnedreg.azurecr.io": "working",
        "azurecr.io": "working",
        "pinnedreg.eastus.data.azurecr.io": "working",
        "*.blob.core.windows.net": "not probed",
        "tworeg.azurecr.io": "failed",
        "outsidereg.azurecr.io": "failed",
    }


@world
def test_the_table_has_a_row_per_address_and_names_the_blocked_one(resolver):
    out = resolver[3]["out"]
    assert resolver[3]["rc"] == 1, resolver[3]["err"]
    lines = out.splitlines()
    (i,) = [n for n, line in enumerate(lines) if line.startswith("tworeg.azurecr.io ")]
    assert lines[i].split()[1] == "192.0.2.3" and lines[i].endswith("FAIL TCP (192.0.2.131)")
    assert lines[i + 1].split()[0] == "192.0.2.131" and "FAIL timeout" in lines[i + 1]
    pinned = next(line for line in lines if line.startswith("pinnedreg.azurecr.io "))
    assert "hosts file" in pinned and pinned.endswith("working")


def _lookup_files(tmp_path, hosts: str, nsswitch: str | None) -> probing.Options:
    (tmp_path / "hosts").write_text(hosts, encoding="utf-8")
    ns = tmp_path / "nsswitch.conf"
    if nsswitch is not None:
        ns.write_text(nsswitch, encoding="utf-8")
    return probing.Options(hosts_path=str(tmp_path / "hosts"), nsswitch_path=str(ns))


@pytest.mark.parametrize(
    ("nsswitch", "order"),
    [
        ("hosts: files dns\n", ("files", "dns")),
        ("hosts: dns files\n", ("dns", "files")),
        ("hosts: files mdns4_minimal [NOTFOUND=return] dns myhostname\n", ("files", "dns")),
        ("hosts: resolve [!UNAVAIL=return] dns\n", ("files", "dns")),
        ("hosts: dns\n", ("dns",)),
        ("passwd: files\n", ("files", "dns")),  # no hosts: line
        (None, ("files", "dns")),  # no file: Go's and musl's order
    ],
)
def test_nsswitch_hosts_order(tmp_path, nsswitch, order):
    options = _lookup_files(tmp_path, "", nsswitch)
    assert probing.lookup_order(options.nsswitch_path) == order


def test_the_hosts_file_is_read_as_glibc_reads_it(tmp_path):
    options = _lookup_files(
        tmp_path,
        "192.0.2.9 Other.example\n"
        "# 192.0.2.1 reg.azurecr.io\n"
        "192.0.2.7\treg.privatelink.azurecr.io REG.azurecr.io.  # comment\n"
        "not-an-address reg.azurecr.io\n"
        "fe80::1%eth0 reg.azurecr.io\n"
        "2001:db8::7 reg.azurecr.io\n"
        "192.0.2.7 reg.azurecr.io\n",
        "hosts: files dns\n",
    )
    assert probing.hosts_lookup("reg.azurecr.io", options.hosts_path) == (
        "reg.privatelink.azurecr.io",
        ["192.0.2.7", "2001:db8::7"],
    )
    assert probing.hosts_lookup("absent.azurecr.io", options.hosts_path) == ("absent.azurecr.io", [])


def test_the_hosts_file_is_read_up_to_its_bound(tmp_path):
    filler = "#" * 100 + "\n"
    big = filler * (probing.MAX_HOSTS_BYTES // len(filler) + 1) + "192.0.2.7 late.azurecr.io\n"
    options = _lookup_files(tmp_path, "192.0.2.8 early.azurecr.io\n" + big, None)
    assert probing.hosts_lookup("early.azurecr.io", options.hosts_path)[1] == ["192.0.2.8"]
    assert probing.hosts_lookup("late.azurecr.io", options.hosts_path)[1] == []


@pytest.mark.parametrize(
    ("nsswitch", "dns_answer", "want"),
    [
        ("hosts: files dns\n", "dns", ("hosts", ["192.0.2.7"])),
        ("hosts: dns files\n", "dns", ("dns", ["198.51.100.7"])),
        ("hosts: dns files\n", "nxdomain", ("hosts", ["192.0.2.7"])),  # DNS does not know it: the file does
        ("hosts: files dns\n", "nxdomain", ("hosts", ["192.0.2.7"])),
    ],
)
def test_the_sources_are_asked_in_nsswitch_order(tmp_path, monkeypatch, nsswitch, dns_answer, want):
    options = _lookup_files(tmp_path, "192.0.2.7 reg.azurecr.io\n", nsswitch)

    def fake_resolve(name, options, budget):
        if dns_answer == "nxdomain":
            raise probing.HopFailure("dns", "nxdomain", "NXDOMAIN", "no", "fix")
        return [name], ["198.51.100.7"]

    monkeypatch.setattr(probing, "resolve", fake_resolve)
    _, addresses, source = probing.lookup("reg.azurecr.io", options, probing.Budget(5, 30))
    assert (source, addresses) == want
    if dns_answer == "nxdomain":  # in neither source: DNS's own failure is the verdict
        with pytest.raises(probing.HopFailure) as e:
            probing.lookup("absent.azurecr.io", options, probing.Budget(5, 30))
        assert e.value.detail == "NXDOMAIN"


def test_an_ipv6_address_without_a_route_is_listed_not_probed(tmp_path, monkeypatch):
    """getaddrinfo's AI_ADDRCONFIG and Happy Eyeballs: a client without an IPv6 route uses the IPv4
    addresses; an AAAA answer it cannot reach is not a failure, and is shown."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(EASTUS, encoding="utf-8")
    inputs = probing.load_inputs(str(spec), None)
    monkeypatch.setattr(probing, "lookup", lambda name, options, budget: ([name], ["192.0.2.1", "2001:db8::1"], "dns"))
    monkeypatch.setattr(probing, "_routable", lambda address: ":" not in address)
    prober = probing.Prober(inputs, probing.Options(), probing.Budget(5, 30))
    result = probing.Result(Endpoint("contosoprod.azurecr.io", "login", "contosoprod", "eastus"), "x")
    prober._dns_and_tag(result, "contosoprod.azurecr.io")
    assert [p.address for p in result.paths] == ["192.0.2.1"] and result.unused == ["2001:db8::1"]
    assert result.as_json()["unusedAddresses"] == ["2001:db8::1"]
    assert "not used: 2001:db8::1" in probing.format_table(probing.Report("s", None, [result], 0, 5, 30))


def test_an_address_still_connecting_at_the_deadline_fails_the_name(tmp_path, monkeypatch):
    """One address answers, the other has not when the deadline comes: the name is not working."""
    import threading

    spec = tmp_path / "spec.yaml"
    spec.write_text(EASTUS, encoding="utf-8")
    inputs = probing.load_inputs(str(spec), None)
    monkeypatch.setattr(probing, "lookup", lambda name, options, budget: ([name], ["192.0.2.1", "192.0.2.2"], "dns"))
    release = threading.Event()

    class Conn:
        def close(self):
            pass

    def connect(self, result, path, name, record):
        if path.address == "192.0.2.2":
            release.wait(60)  # hangs past the deadline (a hop the watchdog has not cut yet)
        path.hops["tcp"] = path.hops["tls"] = probing.Hop("ok", "ok")
        return Conn()

    monkeypatch.setattr(probing.Prober, "connect", connect)
    prober = probing.Prober(inputs, probing.Options(deadline=0.2), probing.Budget(5, 0.2))
    result = probing.Result(Endpoint("contosoprod.eastus.data.azurecr.io", "data", "contosoprod", "eastus"), "x")
    try:
        prober._dns_and_tag(result, "contosoprod.eastus.data.azurecr.io")
        prober._connect_every_address(result, "contosoprod.eastus.data.azurecr.io")
    finally:
        release.set()
    assert [p.failed for p in result.paths] == [False, True]
    assert (result.verdict, result.problem, result.address) == ("failed", "deadline", "192.0.2.2")
    assert "192.0.2.2" in result.cause


def test_a_paths_problem_is_its_earliest_failing_hops_whatever_the_order_noted():
    path = probing.AddressPath("192.0.2.1")
    path.fail(probing.HopFailure("tcp", "tcp-timeout", "timeout", "late", "fix tcp"))
    path.fail(probing.HopFailure("tag", "outside-rules", "outside", "early", "fix tag"))
    path.fail(probing.HopFailure("tls", "tls-error", "error", "later", "fix tls"))
    assert (path.failed_hop, path.problem, path.cause) == ("tag", "outside-rules", "early")


def test_a_name_with_more_addresses_than_the_bound_probes_the_first_ones(tmp_path, monkeypatch):
    spec = tmp_path / "spec.yaml"
    spec.write_text(EASTUS, encoding="utf-8")
    inputs = probing.load_inputs(str(spec), None)
    many = [f"192.0.2.{i}" for i in range(1, 21)]
    monkeypatch.setattr(probing, "lookup", lambda name, options, budget: ([name], many, "dns"))
    prober = probing.Prober(inputs, probing.Options(), probing.Budget(5, 30))
    result = probing.Result(Endpoint("contosoprod.azurecr.io", "login", "contosoprod", "eastus"), "x")
    prober._dns_and_tag(result, "contosoprod.azurecr.io")
    assert [p.address for p in result.paths] == many[: probing.MAX_ADDRESSES]
    assert result.unprobed == many[probing.MAX_ADDRESSES :]
    assert "not probed: 12 more addresses" in probing.format_table(probing.Report("s", None, [result], 0, 5, 30))


# ---- what a hostile network answer can do ----------------------------------------------------------

HOSTILE_SPEC = """version: 1
registries:
  - {name: endlessreg, sku: Basic, location: eastus}
  - {name: tricklereg, sku: Basic, location: eastus}
  - {name: hugereg, sku: Basic, location: eastus}
  - {name: deepreg, sku: Basic, location: eastus}
  - {name: plainreg, sku: Basic, location: eastus}
  - {name: portreg, sku: Basic, location: eastus}
"""
GARBAGE_PROXY = "192.0.2.60"


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    need_world()
    from probe_world import run

    tmp = tmp_path_factory.mktemp("hostile")
    certs = Certs(tmp)
    spec = tmp / "hostile.yaml"
    spec.write_text(HOSTILE_SPEC, encoding="utf-8")
    names = {
        "azurecr.io": ("192.0.2.2", "data", {}),
        "endlessreg.azurecr.io": ("192.0.2.41", "endless", {}),
        "tricklereg.azurecr.io": ("192.0.2.42", "trickle", {}),
        "hugereg.azurecr.io": ("192.0.2.43", "hugeheader", {}),
        # A manifest nested deeper than any JSON parser's stack.
        "deepreg.azurecr.io": ("192.0.2.44", "acr", {"manifest_body": "[" * 200000 + "]" * 200000}),
        "plainreg.azurecr.io": ("192.0.2.45", "acr", {"location": "http://plainreg.blob.core.windows.net/x"}),
        "portreg.azurecr.io": ("192.0.2.46", "acr", {"location": "https://portreg.blob.core.windows.net:8443/x"}),
    }
    servers = [{**server(certs, n, a, role), **extra} for n, (a, role, extra) in names.items()]
    servers.append(server(certs, "proxy", GARBAGE_PROXY, "garbageproxy"))
    common = ("--nameserver", "203.0.113.53", "--ca-bundle", str(certs.bundle), "--timeout", "2", "--deadline", "20")
    creds = {"ACRRULES_PROBE_USERNAME": CREDS[0], "ACRRULES_PROBE_PASSWORD": CREDS[1]}

    def probe(*extra: str, env: dict | None = None) -> dict:
        return {**probe_action(spec, *common, *extra, env=env), "timeout": 60}

    return run(
        {"dns": {n: {"a": [a]} for n, (a, _, _) in names.items()}, "servers": servers, "credentials": CREDS},
        [
            probe("--format", "json"),  # 0
            probe("--image", "deepreg.azurecr.io/app/web:1.0", env=creds),  # 1
            probe("--image", "plainreg.azurecr.io/app/web:1.0", env=creds),  # 2
            probe("--image", "portreg.azurecr.io/app/web:1.0", env=creds),  # 3
            probe(env={"HTTPS_PROXY": f"http://{GARBAGE_PROXY}:3128"}),  # 4
        ],
    )


@world
def test_a_peer_that_streams_forever_is_cut_at_the_hop_timeout(hostile):
    """`100 Continue` every 50 ms, or a body byte every 0.5 s: each read gets bytes before the socket
    timeout, so only a bound on the whole hop ends them; the process exits instead of hanging."""
    assert hostile[0]["rc"] == 1, hostile[0]["err"]
    got = by_name(report(hostile[0]))
    for name in ("endlessreg.azurecr.io", "tricklereg.azurecr.io"):
        assert (got[name]["failedHop"], got[name]["problem"]) == ("http", "http-timeout"), got[name]
    assert got["azurecr.io"]["verdict"] == "working"


@world
def test_a_huge_header_is_cut_in_the_verdict(hostile):
    e = by_name(report(hostile[0]))["hugereg.azurecr.io"]
    assert e["problem"] == "not-a-registry"
    assert "text/xxxx" in e["cause"] and len(e["cause"]) < 400


@world
def test_a_manifest_nested_too_deep_is_a_manifest_error_not_a_crash(hostile):
    assert hostile[1]["rc"] == 1, hostile[1]["err"]
    e = by_name(report(hostile[1]))["deepreg.azurecr.io"]
    assert (e["failedHop"], e["problem"]) == ("http", "manifest-error")


LONGEST_HOST = ".".join(["a" * 63] * 3) + "." + "b" * 61  # 253 characters, the most a host name has


@pytest.mark.parametrize(
    ("location", "why"),
    [
        ("/v2/app/blobs/sha256:00", None),
        ("https://acct.blob.core.windows.net:443/c/b", None),
        ("https://Acct.Blob.Core.Windows.Net./c/b", None),
        (f"https://{LONGEST_HOST}/c/b", None),
        (f"https://{LONGEST_HOST}c/c/b", "its host is no DNS name"),
        ("https://acct_1.blob.core.windows.net/c/b", "its host is no DNS name"),
        ("https://-acct.blob.core.windows.net/c/b", "its host is no DNS name"),
        ("https://acct.blob.core.windows.net:8443/c/b", "port 8443: the rules allow only 443"),
        ("https://acct.blob.core.windows.net:99999/c/b", "port invalid"),
        ("https://u:p@acct.blob.core.windows.net/c/b", "user information"),
        (
            "http://acct.blob.core.windows.net/c/b",
            "http scheme, not https: the blob would not travel over TLS on port 443",
        ),
    ],
)
def test_a_blob_redirect_is_followed_only_on_the_terms_of_the_rules(location, why):
    if why is None:
        followed = probing._checked_redirect("reg.azurecr.io", location)
        assert followed in (location, "https://reg.azurecr.io" + location), followed
        return
    with pytest.raises(probing.HopFailure) as failure:
        probing._checked_redirect("reg.azurecr.io", location)
    assert (failure.value.hop, failure.value.problem) == ("http", "bad-redirect") and why in failure.value.cause


@world
@pytest.mark.parametrize(("run", "name", "why"), [(2, "plainreg", "not https"), (3, "portreg", "port 8443")])
def test_a_blob_redirect_off_https_443_is_its_own_failure(hostile, run, name, why):
    assert hostile[run]["rc"] == 1, hostile[run]["err"]
    data = report(hostile[run])
    e = by_name(data)[f"{name}.azurecr.io"]
    assert (e["failedHop"], e["problem"]) == ("http", "bad-redirect") and why in e["cause"], e
    assert not [x for x in data["endpoints"] if x["kind"] == "redirect"]  # not followed


@world
def test_a_proxy_that_answers_connect_with_garbage(hostile):
    data = report(hostile[4])
    assert hostile[4]["rc"] == 1
    assert {(e["failedHop"], e["problem"]) for e in data["endpoints"] if e["verdict"] != "not probed"} == {
        ("tcp", "proxy-garbage")
    }
    assert all("bytes after its answer" in e["cause"] for e in data["endpoints"] if e["cause"] and e["probedName"])


def test_an_answer_no_hop_foresaw_is_a_failed_row_not_a_traceback(monkeypatch):
    inputs = probing.load_inputs(SPEC, None)
    real = probing.Prober.probe

    def probe(self, endpoint, name, url=None):
        if endpoint.kind == "certificate":
            raise AttributeError("'str' object has no attribute 'get'")
        result = real(self, endpoint, None, url)  # nothing sent: every endpoint "not probed"
        return result

    monkeypatch.setattr(probing.Prober, "probe", probe)
    report = probing.run(inputs, probing.Options(env={}))
    (bad,) = [r for r in report.results if r.verdict == probing.FAILED]
    assert (bad.endpoint.kind, bad.problem) == ("certificate", "probe-error") and "AttributeError" in bad.cause
    assert report.exit_code == 1 and "FAIL probe error" in probing.format_table(report)


def test_a_block_page_title_is_found_in_bounded_work():
    """A 1 MiB page of unclosed <title>s: the lazy match is bounded per start, so this is linear work
    (an unbounded `<title>(.*?)</title>` scans to the end from each of 150000 starts)."""
    assert probing._title(b"<title>" * 150000) is None
    assert probing._title(b"<html><TITLE> Access denied </title>") == "Access denied"
    assert probing._title(b"<title>" + b"x" * 300 + b"</title>") is None


def test_a_connect_answer_without_an_end_is_bounded_and_cut():
    """A proxy that sends an endless status line: at most MAX_CONNECT_HEAD bytes are read, and the
    verdict quotes a cut of it (a loopback proxy, no namespace needed)."""
    import contextlib
    import socket
    import threading

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve():
        conn, _ = listener.accept()
        with conn:
            conn.recv(4096)
            with contextlib.suppress(OSError):
                conn.sendall(b"HTTP/1.1 200 " + b"A" * (4 * probing.MAX_CONNECT_HEAD))

    threading.Thread(target=serve, daemon=True).start()
    spec_inputs = probing.load_inputs(SPEC, None)
    options = probing.Options(env={"HTTPS_PROXY": f"http://127.0.0.1:{port}"})
    prober = probing.Prober(spec_inputs, options, probing.Budget(5, 30))
    result = probing.Result(Endpoint(LOGIN, "login", "contosoprod"), LOGIN)
    result.proxy = f"127.0.0.1:{port}"
    with pytest.raises(probing.HopFailure) as e:
        prober._tcp(result, probing.AddressPath(None), LOGIN)
    listener.close()
    assert (e.value.hop, e.value.problem) == ("tcp", "proxy-garbage")
    assert "does not end within" in e.value.cause and len(e.value.cause) < 400


# ---- bounds --------------------------------------------------------------------------------------

TWELVE = """version: 1
registries:
  - {name: contosoprod, sku: Premium, location: eastus, replicas: [westeurope, southeastasia, japaneast],
     data_endpoints: dedicated, regional_endpoints: true}
mcr: true
"""


@pytest.fixture(scope="module")
def twelve(tmp_path_factory):
    need_world()
    from probe_world import run

    tmp = tmp_path_factory.mktemp("twelve")
    certs = Certs(tmp)
    spec = tmp / "twelve.yaml"
    spec.write_text(TWELVE, encoding="utf-8")
    r = run_cli("endpoints", spec, "--format", "json")
    names = [e["fqdn"] for e in json.loads(r.out)]
    assert len(names) == 12
    concrete = [n for n in names if not n.startswith("*.")] + [MCR_DATA]
    addresses = {n: f"192.0.2.{i + 1}" for i, n in enumerate(sorted(concrete))}
    roles = {LOGIN: ("acr", DATA["eastus"]), MCR: ("mcr", MCR_DATA)}
    servers = [server(certs, n, a, *roles.get(n, ("data", None))) for n, a in addresses.items()]
    ca = ("--ca-bundle", str(certs.bundle))
    answering = probe_action(spec, "--nameserver", "203.0.113.53", "--timeout", "5", "--deadline", "60", *ca)
    mute_dns = probe_action(spec, "--nameserver", "203.0.113.54", "--timeout", "2", "--deadline", "3", *ca)
    world = {"dns": {n: {"a": [a]} for n, a in addresses.items()}, "servers": servers}
    return run(world, [answering, mute_dns])


@world
def test_twelve_answering_endpoints_finish_within_one_hop_timeout_plus_a_second(twelve):
    data = report(twelve[0])
    assert twelve[0]["rc"] == 0, twelve[0]["out"]
    assert len(data["endpoints"]) == 12
    assert {e["verdict"] for e in data["endpoints"]} == {"working"}
    assert data["elapsed"] <= data["timeout"] + 1


@world
def test_when_nothing_answers_the_probe_ends_at_the_deadline(twelve):
    data = report(twelve[1])
    assert twelve[1]["rc"] == 1
    assert len(data["endpoints"]) == 12
    # The resolver never answers: every concrete name fails at DNS or at the deadline; the MCR data
    # wildcard, whose concrete name only MCR's answer would give, is listed as not probed.
    got = {e["fqdn"]: e["verdict"] for e in data["endpoints"]}
    assert got.pop("*.data.mcr.microsoft.com") == "not probed"
    assert set(got.values()) == {"failed"}
    assert {e["problem"] for e in data["endpoints"] if e["verdict"] == "failed"} <= {"timeout", "deadline"}
    assert data["elapsed"] <= data["deadline"] + 1


# ---- where an address lies, in a REAL Service Tags file -------------------------------------------


@pytest.fixture(scope="module")
def real_tags():
    need_shared()
    path = latest_servicetags()
    values = {
        v["name"]: v["properties"]["addressPrefixes"] for v in json.loads(path.read_text(encoding="utf-8"))["values"]
    }
    return path, values


def _only_in(values: dict, tag: str, others: set) -> str:
    """An IPv4 address of `tag` that no tag of `others` holds (computed from the raw JSON)."""
    other_nets = [ipaddress.ip_network(p) for o in others for p in values.get(o, ()) if ":" not in p]
    for p in values[tag]:
        if ":" in p:
            continue
        a = ipaddress.ip_network(p).network_address + 1
        if not any(a in n for n in other_nets):
            return str(a)
    raise AssertionError(f"no address of {tag} outside {others}")


def _locate_result(tmp_path, tags_path, description: str, fqdn: str, address: str) -> probing.Result:
    spec = tmp_path / "spec.yaml"
    spec.write_text(description, encoding="utf-8")
    inputs = probing.load_inputs(str(spec), str(tags_path))
    prober = probing.Prober(inputs, probing.Options(), probing.Budget(5, 30))
    result = probing.Result(Endpoint(fqdn, "data", "contosoprod", "eastus"), fqdn)
    probing.lookup, saved = (lambda name, options, budget: ([name], [address], "dns")), probing.lookup
    try:
        prober._dns_and_tag(result, fqdn)
    finally:
        probing.lookup = saved
    return result


EASTUS = "version: 1\nregistries:\n  - {name: contosoprod, sku: Premium, location: eastus, data_endpoints: dedicated}\n"


@pytest.mark.shared
def test_an_address_in_a_rendered_tag_is_inside_the_rules(real_tags, tmp_path):
    path, values = real_tags
    address = _only_in(values, "Storage.EastUS", {"AzureContainerRegistry.EastUS"})
    r = _locate_result(tmp_path, path, EASTUS, "contosoprod.eastus.data.azurecr.io", address)
    assert (r.tag, r.in_rules, r.hops["tag"].status, r.failed_hop) == ("Storage.EastUS", True, "ok", None)


@pytest.mark.shared
def test_an_address_in_another_regions_tag_is_outside_and_named(real_tags, tmp_path):
    path, values = real_tags
    address = _only_in(values, "Storage.WestEurope", {"Storage.EastUS", "AzureContainerRegistry.EastUS"})
    r = _locate_result(tmp_path, path, EASTUS, "contosoprod.eastus.data.azurecr.io", address)
    assert (r.in_rules, r.failed_hop, r.problem) == (False, "tag", "outside-rules")
    # The tag named is the most specific one holding it: the real file's Storage.WestEurope (or a
    # narrower tag there), never the description's own.
    holders = {
        t
        for t, ps in values.items()
        for p in ps
        if ":" not in p and ipaddress.ip_address(address) in ipaddress.ip_network(p)
    }
    assert r.tag in holders and r.tag not in {"Storage.EastUS", "AzureContainerRegistry.EastUS"}
    assert "contosoprod.eastus.data.azurecr.io" in r.cause and address in r.cause and r.tag in r.cause


@pytest.mark.shared
def test_an_address_in_no_tag_is_outside(real_tags, tmp_path):
    path, _ = real_tags
    r = _locate_result(tmp_path, path, EASTUS, "contosoprod.eastus.data.azurecr.io", "192.0.2.77")
    assert (r.tag, r.in_rules, r.failed_hop) == (None, False, "tag")
    assert "no tag" in r.cause


# ---- NO_PROXY as curl reads it ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "no_proxy", "covered"),
    [
        ("contosoprod.azurecr.io", "azurecr.io", True),
        ("contosoprod.azurecr.io", ".azurecr.io", True),
        ("azurecr.io", ".azurecr.io", True),
        ("contosoprod.azurecr.io", "prod.azurecr.io", False),
        ("xazurecr.io", "azurecr.io", False),
        ("contosoprod.azurecr.io", "*", True),
        ("contosoprod.azurecr.io", "*.azurecr.io", False),  # curl takes no glob but a lone *
        ("contosoprod.azurecr.io", "localhost, AZURECR.IO", True),
        ("192.0.2.7", "192.0.2.0/24", True),
        ("192.0.2.7", "198.51.100.0/24", False),
        ("contosoprod.azurecr.io", "", False),
    ],
)
def test_no_proxy_is_read_as_curl_reads_it(host, no_proxy, covered):
    assert probing.no_proxy_covers(host, no_proxy) is covered


def test_the_proxy_variables_curl_reads():
    env = {"https_proxy": "http://u:p%40ss@proxy.example:3128", "NO_PROXY": "mcr.microsoft.com"}
    p = probing.proxy_for("contosoprod.azurecr.io", env)
    assert (p.host, p.port, p.authorization) == ("proxy.example", 3128, "Basic dTpwQHNz")
    assert probing.proxy_for("mcr.microsoft.com", env) is None
    assert probing.proxy_for("contosoprod.azurecr.io", {}) is None


# ---- output ----------------------------------------------------------------------------------------


def test_the_table_escapes_network_strings():
    r = probing.Result(Endpoint("evil.azurecr.io", "login", "evil"), "evil.azurecr.io")
    r.hops["dns"] = probing.Hop("fail", "x\x1b]0;owned\x07")
    r.problem, r.cause, r.fix = "dns-error", "server said \x1b[31mred\x1b[0m", "fix\nit"
    text = probing.format_table(probing.Report("s.yaml", None, [r], 0.1, 5, 30))
    assert "\x1b" not in text and "\x07" not in text
    assert "FAIL DNS" in text and "cause: server said" in text
    data = json.loads(probing.format_json(probing.Report("s.yaml", None, [r], 0.1, 5, 30)))
    assert data["endpoints"][0]["cause"] == "server said \x1b[31mred\x1b[0m"


def test_the_table_issues_no_workflow_command_and_no_escape_sequence():
    # A block page's <title>, a certificate issuer or a hosts-file name reaches stdout in a cell or a note:
    # under GitHub Actions `##[error]` anywhere, or `::cmd::` at a line's start, would be a workflow command.
    single = probing.Result(Endpoint("evil.azurecr.io", "login", "evil"), "::warning::hi")
    single.hops["tls"] = probing.Hop("fail", "##[error]x \x1b[2J")
    single.problem, single.cause, single.fix = "tls-error", "##[error]x", "\x1b[2J"
    several = probing.Result(Endpoint("two.azurecr.io", "login", "two"), "two.azurecr.io")
    several.paths = [probing.AddressPath("192.0.2.1"), probing.AddressPath("192.0.2.2")]
    several.paths[1].hops["tls"] = several.hops["tls"] = probing.Hop("fail", "##[error]y")
    several.problem, several.cause = "tls-error", "\x1b[2J ##[group]z"
    text = probing.format_table(probing.Report("s.yaml", None, [single, several], 0.1, 5, 30))
    assert "\x1b" not in text and "##[" not in text
    assert not any(line.lstrip().startswith("::") for line in text.splitlines())
    assert "FAIL \\x23#[error]x \\x1b[2J" in text and "\\x3a:warning::hi (evil.azurecr.io)" in text
    assert "    cause: \\x23#[error]x\n    fix: \\x1b[2J\n" in text
    assert "FAIL \\x23#[error]y" in text and "    cause: \\x1b[2J \\x23#[group]z\n" in text


# ---- bad input: exit 2, one message, nothing sent ---------------------------------------------------


SPEC = str(SAMPLES / "geo-replicated-premium.yaml")


@pytest.mark.parametrize(
    ("args", "env", "needle"),
    [
        (["probe", "no-such.yaml"], {}, "no-such.yaml"),
        (["probe", SPEC, "--service-tags", SPEC], {}, "Service Tags"),
        (["probe", SPEC, "--service-tags", str(REPO / "schemas")], {}, "no ServiceTags_Public_"),
        (["probe", SPEC, "--image", "app/web:1.0"], {}, "--image needs credentials"),
        (["probe", SPEC, "--password", "hunter2"], {}, "only from the environment"),
        (["probe", SPEC, "--image", "bob:hunter2@app/web:1.0"], {}, "looks like it holds a credential"),
        (["probe", SPEC, "--image", "app/web"], {}, "is not REPO:TAG"),
        (["probe", SPEC, "--data-host", "acct.blob.core.windows.net"], {}, "under no wildcard"),
        (["probe", SPEC, "--nameserver", "dns.example"], {}, "not ADDRESS[:PORT]"),
        (["probe"], {}, "give SPEC"),
        (["probe", SPEC, "--timeout", "0"], {}, "--timeout S takes"),
        (["probe", SPEC, "--ca-bundle", SPEC], {}, "--ca-bundle"),
        (["probe", SPEC], {"HTTPS_PROXY": "https://proxy.example:443"}, "https:// proxies"),
        (["probe", SPEC, "--image", "app/web:1.0"], {"ACRRULES_PROBE_USERNAME": "u"}, "ACRRULES_PROBE_PASSWORD"),
    ],
)
def test_bad_input_exits_2_with_one_message(args, env, needle, monkeypatch):
    for k in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", *probing.CREDENTIAL_VARIABLES):
        monkeypatch.delenv(k, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setattr(probing, "run", lambda *a, **k: pytest.fail("bad input must not reach the network"))
    r = run_cli(*args)
    assert r.code == 2, (r.out, r.err)
    assert r.out == ""
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], r.err
    assert "Traceback" not in r.err


@pytest.mark.parametrize("option", ["--image", "--nameserver", "--data-host"])
def test_a_hostile_value_in_a_message_stays_one_escaped_line(option, monkeypatch):
    # The message quotes the value with repr and the CLI runs every line through escape.terminal: no
    # second escaper in between, and still one line, no escape sequence, no workflow command.
    monkeypatch.setattr(probing, "run", lambda *a, **k: pytest.fail("bad input must not reach the network"))
    r = run_cli("probe", SPEC, option, "x\n::error::owned\x1b[2J##[error]x")
    assert r.code == 2 and r.out == "", (r.out, r.err)
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(option), r.err
    assert "\x1b" not in r.err and "##[" not in r.err and "\\x23#[error]x" in r.err


# ---- --service-tags DIR, and the progress line -------------------------------------------------------


@pytest.mark.shared
@pytest.mark.parametrize(("sample", "cloud"), [("geo-replicated-premium", "Public"), ("china", "China")])
def test_service_tags_dir_takes_the_newest_file_of_the_descriptions_cloud(sample, cloud):
    need_shared()
    inputs = probing.load_inputs(str(SAMPLES / f"{sample}.yaml"), str(SERVICETAGS))
    assert inputs.service_tags_path == str(latest_servicetags(cloud))
    assert inputs.locator is not None and inputs.locator.rendered


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_a_progress_line_once_the_probe_takes_longer_than_the_delay():
    stream = _Terminal()
    with probing.Progress(stream, delay=0.05) as progress:
        progress(3, 12)
        for _ in range(400):  # bounded: the line appears after the delay, whatever the load
            if "probing: 3/12 endpoints done" in stream.getvalue():
                break
            time.sleep(0.025)
    assert "\rprobing: 3/12 endpoints done" in stream.getvalue()
    assert stream.getvalue().endswith("\r\x1b[K")  # cleared before the table


def test_no_progress_line_off_a_terminal_or_before_the_delay():
    quiet = io.StringIO()
    with probing.Progress(quiet, delay=0) as progress:
        progress(1, 2)
    assert progress._thread is None and quiet.getvalue() == ""
    fast = _Terminal()
    with probing.Progress(fast, delay=600) as progress:
        progress(1, 2)
    assert fast.getvalue() == ""
