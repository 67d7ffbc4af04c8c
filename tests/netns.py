"""Private network namespaces for the kernel tests of the nftables and iptables targets.

`run(actions, listen=...)` starts a brand-new, empty network namespace
(`unshare -n`), runs the actions in it in order and returns what each did; the
namespace and everything loaded into it vanish when it returns.  Nothing is
ever loaded into the host's own namespace, and only documentation addresses
(RFC 5737, RFC 3849) are used.

With `listen`, TCP listeners run in a SECOND private namespace joined to the
first by a veth pair, so a ruleset that accepts loopback traffic (standalone
mode does) still decides every probe: a probe leaves through the veth, past the
output hook, like traffic to a real registry would.

Actions (dicts):
  {"cmd": [argv...], "input": "optional stdin"}  -> {"rc": int, "out": str, "err": str}
  {"probe": ["ADDR:PORT", "[V6]:PORT", ...]}    -> {"probe": {target: "connected" | "timeout" | errno name}}
  {"probe_in": ["203.0.113.1:22", ...]}         -> {"probe_in": {...}} (needs `listen`): inbound probes, from
      the second namespace to listeners on this side's CLIENT_ADDRESSES, through the rules loaded here

This file is also the program that runs inside the namespaces (see main()).
"""

from __future__ import annotations

import errno
import ipaddress
import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve()
DOCUMENTATION = tuple(
    ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")
)
CLIENT_ADDRESSES = ("203.0.113.1", "2001:db8:ffff::1")  # the probing side of the veth pair
CONNECT_TIMEOUT = 1.0  # a dropped SYN is retried by TCP, so "blocked" shows up as a timeout


class NetnsError(RuntimeError):
    """The namespace could not be set up (not a verdict on the rules under test)."""


def split_target(target: str) -> tuple[str, int]:
    host, _, port = target.rpartition(":")
    return host.strip("[]"), int(port)


def _documentation_only(addresses: Iterable[str]) -> None:
    for a in addresses:
        ip = ipaddress.ip_address(a)
        if not any(ip in net for net in DOCUMENTATION):
            raise NetnsError(f"{a} is not a documentation address: refusing to use it")


def run(actions: Sequence[dict], listen: Sequence[str] = (), timeout: float = 120) -> list[dict]:
    """Run `actions` in a fresh private namespace; `listen` = ADDR:PORT listeners behind a veth pair."""
    _documentation_only([split_target(t)[0] for t in listen])
    for a in actions:
        for kind in ("probe", "probe_in"):
            if kind in a:
                _documentation_only([split_target(t)[0] for t in a[kind]])
        if "probe_in" in a:
            if not listen:
                raise NetnsError("probe_in needs the second namespace: give `listen`")
            for t in a["probe_in"]:
                if split_target(t)[0] not in CLIENT_ADDRESSES:
                    raise NetnsError(f"probe_in {t}: only this side's addresses {CLIENT_ADDRESSES} can listen")
    return in_private_namespace(HERE, {"actions": list(actions), "listen": list(listen)}, timeout)


def in_private_namespace(script: Path, job: dict, timeout: float) -> list[dict]:
    """`script client` in a fresh private network namespace (unshare -n), given `job` as JSON on its
    standard input; what it prints, as JSON.  The namespace worlds (this module, probe_world.py) share it."""
    p = subprocess.run(
        ["unshare", "-n", sys.executable, str(script), "client"],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if p.returncode != 0:
        raise NetnsError(f"namespace setup failed (rc {p.returncode}): {p.stderr.strip()[-3000:]}")
    result: list[dict] = json.loads(p.stdout)
    return result


# ---- read-back helpers (run in the test process on what the namespace printed) -----------


def networks(elements: Iterable) -> set:
    """Kernel set elements (CIDRs, addresses, nft ranges) as a set of collapsed ipaddress networks."""
    nets = []
    for e in elements:
        if isinstance(e, dict) and "elem" in e:  # element with options
            e = e["elem"]["val"]
        if isinstance(e, dict) and "prefix" in e:
            nets.append(ipaddress.ip_network(f"{e['prefix']['addr']}/{e['prefix']['len']}"))
        elif isinstance(e, dict) and "range" in e:
            lo, hi = (ipaddress.ip_address(x) for x in e["range"])
            nets.extend(ipaddress.summarize_address_range(lo, hi))
        else:
            nets.append(ipaddress.ip_network(e))
    by_version = {4: [], 6: []}
    for n in nets:
        by_version[n.version].append(n)
    return set(ipaddress.collapse_addresses(by_version[4])) | set(ipaddress.collapse_addresses(by_version[6]))


def _without_handles(obj):
    if isinstance(obj, dict):
        return {k: _without_handles(v) for k, v in obj.items() if k != "handle"}
    if isinstance(obj, list):
        return [_without_handles(v) for v in obj]
    return obj


def nft_objects(list_ruleset_json: str) -> list[dict]:
    """`nft -j list ruleset` without metainfo and kernel handles (which change on every reload)."""
    return [_without_handles(o) for o in json.loads(list_ruleset_json)["nftables"] if "metainfo" not in o]


def nft_table(objects: list[dict], family: str, table: str) -> list[dict]:
    """The objects (table, sets, chains, rules) of one table."""
    out = []
    for o in objects:
        ((kind, body),) = o.items()
        name = body.get("table") if kind != "table" else body.get("name")
        if body.get("family") == family and name == table:
            out.append(o)
    return out


def nft_sets(objects: list[dict]) -> dict[tuple[str, str, str], set]:
    """{(family, table, set): networks}."""
    return {(s["family"], s["table"], s["name"]): networks(s.get("elem", [])) for o in objects if (s := o.get("set"))}


def nft_rules(objects: list[dict], family: str, table: str, chain: str) -> list[list]:
    return [
        r["expr"]
        for o in objects
        if (r := o.get("rule")) and (r["family"], r["table"], r["chain"]) == (family, table, chain)
    ]


def nft_chains(objects: list[dict], family: str, table: str) -> dict[str, dict]:
    return {c["name"]: c for o in objects if (c := o.get("chain")) and (c["family"], c["table"]) == (family, table)}


def ipset_sets(save: str) -> dict[str, set]:
    """{set name: networks} from `ipset save` (hash:net stores each CIDR as given: no ranges)."""
    sets: dict[str, list] = {}
    for line in save.splitlines():
        parts = line.split()
        if parts[:1] == ["create"]:
            sets.setdefault(parts[1], [])
        elif parts[:1] == ["add"]:
            sets.setdefault(parts[1], []).append(parts[2])
    return {name: networks(elems) for name, elems in sets.items()}


def ipset_raw_elements(save: str, name: str) -> list[str]:
    return [line.split()[2] for line in save.splitlines() if line.startswith(f"add {name} ")]


def ipset_headers(save: str) -> dict[str, str]:
    """{set: create line} without `initval`, which is random for every new set (and a reload swaps in a new one)."""
    out = {}
    for line in save.splitlines():
        parts = line.split()
        if parts[:1] == ["create"]:
            if "initval" in parts:
                i = parts.index("initval")
                del parts[i : i + 2]
            out[parts[1]] = " ".join(parts)
    return out


def iptables_lines(save: str) -> list[str]:
    """`iptables-save` without its timestamped comments and with counters zeroed."""
    out = []
    for line in save.splitlines():
        if line.startswith("#"):
            continue
        if line.startswith(":"):
            line = line.rsplit(" ", 1)[0] + " [0:0]"
        out.append(line)
    return out


# ---- inside the namespaces ---------------------------------------------------------------


def _sh(*cmd: str) -> str:
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"setup failed: {' '.join(cmd)}: {p.stderr.strip()}")
    return p.stdout


def _guard(allowed: Sequence[str]) -> None:
    """Refuse to continue unless this namespace holds only our interfaces and no route out."""
    names = sorted(link["ifname"].split("@")[0] for link in json.loads(_sh("ip", "-j", "link", "show")))
    if names != sorted(allowed):
        raise SystemExit(f"refusing: interfaces {names}, expected only {sorted(allowed)} (not a private namespace?)")
    for fam in ("-4", "-6"):
        for r in json.loads(_sh("ip", "-j", fam, "route", "show", "table", "all") or "[]"):
            if r.get("dst") == "default" or r.get("gateway") or r.get("dev") not in (None, *allowed):
                raise SystemExit(f"refusing: route {r} leaves this namespace")


def _add_address(address: str, dev: str) -> None:
    ip = ipaddress.ip_address(address)
    plen = 32 if ip.version == 4 else 128
    _sh("ip", f"-{ip.version}", "addr", "add", f"{ip}/{plen}", "dev", dev, *(["nodad"] if ip.version == 6 else []))


def _add_route(address: str, dev: str) -> None:
    ip = ipaddress.ip_address(address)
    _sh("ip", f"-{ip.version}", "route", "add", str(ip), "dev", dev)


def _listen(targets: Sequence[str]) -> None:
    for t in targets:
        host, port = split_target(t)
        s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, port))
        s.listen(64)

        def serve(sock=s):
            while True:
                try:
                    conn, _ = sock.accept()
                    conn.close()
                except OSError:
                    return

        threading.Thread(target=serve, daemon=True).start()


def _probe(target: str) -> str:
    host, port = split_target(target)
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(CONNECT_TIMEOUT)
    try:
        s.connect((host, port))
        return "connected"
    except TimeoutError:
        return "timeout"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))
    finally:
        s.close()


def server() -> None:
    """Second namespace: wait for vB, take the listen addresses, listen until stdin closes."""
    print("NS", flush=True)  # we are in our own namespace: the client may move vB here
    listen = json.loads(sys.stdin.readline())  # sent once vB is here
    _sh("ip", "link", "set", "lo", "up")
    _sh("ip", "link", "set", "vB", "up")
    for host in sorted({split_target(t)[0] for t in listen}):
        _add_address(host, "vB")
    for c in CLIENT_ADDRESSES:
        _add_route(c, "vB")
    _guard(("lo", "vB"))
    _listen(listen)
    print("READY", flush=True)
    for line in sys.stdin:  # inbound probe requests, until the client is done
        targets = json.loads(line)
        with ThreadPoolExecutor(max_workers=max(1, len(targets))) as ex:
            print(json.dumps(dict(zip(targets, ex.map(_probe, targets)))), flush=True)


def client() -> None:
    job = json.loads(sys.stdin.read())
    _guard(("lo",))
    _sh("ip", "link", "set", "lo", "up")
    peer = None
    try:
        if job["listen"]:
            peer = subprocess.Popen(
                ["unshare", "-n", sys.executable, str(HERE), "server"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            if peer.stdout.readline().strip() != "NS":
                raise SystemExit("the listener namespace did not start")
            _sh("ip", "link", "add", "vA", "type", "veth", "peer", "name", "vB", "netns", str(peer.pid))
            _sh("ip", "link", "set", "vA", "up")
            for c in CLIENT_ADDRESSES:
                _add_address(c, "vA")
            for host in sorted({split_target(t)[0] for t in job["listen"]}):
                _add_route(host, "vA")
            peer.stdin.write(json.dumps(job["listen"]) + "\n")
            peer.stdin.flush()
            if peer.stdout.readline().strip() != "READY":
                raise SystemExit("the listener namespace did not come up")
            _guard(("lo", "vA"))
        results = []
        listening: set[str] = set()
        for action in job["actions"]:
            if "cmd" in action:
                p = subprocess.run(action["cmd"], input=action.get("input"), capture_output=True, text=True)
                results.append({"rc": p.returncode, "out": p.stdout, "err": p.stderr})
            elif "probe" in action:
                with ThreadPoolExecutor(max_workers=max(1, len(action["probe"]))) as ex:
                    results.append({"probe": dict(zip(action["probe"], ex.map(_probe, action["probe"])))})
            elif "probe_in" in action:
                if peer is None:
                    raise SystemExit("probe_in needs the listener namespace")
                _listen([t for t in action["probe_in"] if t not in listening])
                listening.update(action["probe_in"])
                peer.stdin.write(json.dumps(action["probe_in"]) + "\n")
                peer.stdin.flush()
                results.append({"probe_in": json.loads(peer.stdout.readline())})
            else:
                raise SystemExit(f"unknown action {action!r}")
        json.dump(results, sys.stdout)
    finally:
        if peer is not None:
            peer.stdin.close()
            peer.wait(timeout=10)


if __name__ == "__main__":
    {"client": client, "server": server}[sys.argv[1]]()


# ---- inputs shared by test_nftables.py and test_iptables.py --------------------------------

# A description spanning several regions per cloud, with MCR: (home, replicas, second registry's home).
REAL_REGIONS = {
    "AzureCloud": ("eastus", ("westeurope", "southeastasia"), "japaneast"),
    "AzureUSGovernment": ("usgovvirginia", ("usgovarizona",), "usgovtexas"),
    "AzureChinaCloud": ("chinaeast2", ("chinanorth3",), "chinanorth2"),
}
MCR_TAGS = ("MicrosoftContainerRegistry", "AzureFrontDoor.FirstParty")  # the second exists in Public only


def real_description(cloud: str, target: str, settings: str) -> str:
    home, replicas, other = REAL_REGIONS[cloud]
    return (
        "version: 1\n"
        f"cloud: {cloud}\n"
        "registries:\n"
        f"  - {{name: acrprod, sku: Premium, location: {home}, replicas: [{', '.join(replicas)}],"
        " data_endpoints: both}\n"
        f"  - {{name: acrtools, sku: Standard, location: {other}}}\n"
        "mcr: true\n"
        f"targets:\n  {target}: {settings}\n"
    )


def expected_prefixes(servicetags_path: Path, cloud: str) -> tuple[set, set]:
    """(v4, v6) the kernel must hold for real_description(cloud): computed from the raw JSON, not by acrrules."""
    home, replicas, other = REAL_REGIONS[cloud]
    values = {v["name"].lower(): v for v in json.loads(servicetags_path.read_text(encoding="utf-8"))["values"]}
    wanted = [f"{family}.{loc}" for loc in (home, *replicas, other) for family in ("azurecontainerregistry", "storage")]
    missing = [w for w in wanted if w not in values]
    assert not missing, f"{servicetags_path.name} lacks {missing}: pick other regions in REAL_REGIONS"
    wanted += [t.lower() for t in MCR_TAGS if t.lower() in values]
    nets = [ipaddress.ip_network(p) for w in wanted for p in values[w]["properties"]["addressPrefixes"]]
    return (
        set(ipaddress.collapse_addresses(n for n in nets if n.version == 4)),
        set(ipaddress.collapse_addresses(n for n in nets if n.version == 6)),
    )


def write_service_tags(path: Path, tags: dict[str, Sequence[str]], cloud: str = "Public", change: int = 7) -> Path:
    """A Service Tags file in Microsoft's format holding only `tags` (name -> addressPrefixes)."""
    from conftest import service_tag, service_tags_document  # not in the namespace side of this module

    values = [
        service_tag(name, prefixes, change=i + 1, features=("NSG", "API"))
        for i, (name, prefixes) in enumerate(sorted(tags.items()))
    ]
    path.write_text(json.dumps(service_tags_document(values, cloud, change), indent=2), encoding="utf-8")
    return path


# The behaviour tests' world, documentation addresses only.  The two tags of eastus
# hold halves that the plan must merge: the kernel must end up with the merged CIDRs.
DOC_TAGS = {
    "AzureContainerRegistry.EastUS": ["192.0.2.0/25", "2001:db8::/49"],
    "Storage.EastUS": ["192.0.2.128/25", "2001:db8:0:8000::/49"],
}
DOC_ALLOWED = {ipaddress.ip_network("192.0.2.0/24"), ipaddress.ip_network("2001:db8::/48")}
RESOLVERS = ("203.0.113.53", "2001:db8:1::53")
ALLOWED_PROBES = ["192.0.2.10:443", "192.0.2.200:443", "[2001:db8::10]:443", "[2001:db8:0:ffff::10]:443"]
DENIED_PROBES = [
    "198.51.100.10:443",
    "192.0.2.10:8443",
    "[2001:db8::10]:8443",
    "[2001:db8:1::10]:443",
    "203.0.113.53:443",
    "198.51.100.10:53",
]
DNS_PROBES = ["203.0.113.53:53", "[2001:db8:1::53]:53"]  # tcp 53 to the resolvers (standalone only)
LISTEN = ALLOWED_PROBES + DENIED_PROBES + DNS_PROBES


def doc_description(target: str, settings: str, sources: str = '["*"]') -> str:
    return (
        "version: 1\nregistries:\n  - {name: contosoacr, sku: Basic, location: eastus}\n"
        f"sources: {sources}\ntargets:\n  {target}: {settings}\n"
    )


# ---- rendering what the kernel tests load ---------------------------------------------------

REAL_CLOUDS = ["AzureCloud", "AzureUSGovernment", "AzureChinaCloud"]


def render_target(tmp: Path, description: str, servicetags: Path, target: str, name: str = "spec.yaml") -> Path:
    """Render one target of `description` with `servicetags` into tmp/out; return that directory."""
    from conftest import run_cli

    tmp.mkdir(parents=True, exist_ok=True)
    spec = tmp / name
    spec.write_text(description, encoding="utf-8")
    out = tmp / "out"
    r = run_cli("render", spec, "--target", target, "--service-tags", servicetags, "--out", out)
    assert r.code == 0, r.err
    return out


def render_real(tmp_path_factory, target: str, pick) -> dict:
    """{(cloud, mode): (pick(output directory), newest real Service Tags file)} for every cloud and mode."""
    from conftest import CLOUD_FILE_KIND, latest_servicetags

    out = {}
    for cloud in REAL_CLOUDS:
        tags = latest_servicetags(CLOUD_FILE_KIND[cloud])
        for mode in ("include", "standalone"):
            settings = f"{{mode: {mode}, resolvers: [192.0.2.53, '2001:db8::53']}}"
            folder = render_target(
                tmp_path_factory.mktemp(f"{cloud}-{mode}"), real_description(cloud, target, settings), tags, target
            )
            out[cloud, mode] = (pick(folder), tags)
    return out


def render_with_seeds(tmp_path: Path, target: str, seeds=("1", "2")) -> list[dict[str, bytes]]:
    """Render `target` of a documentation-range description once per PYTHONHASHSEED, in fresh processes;
    return each run's {file name: bytes}."""
    from conftest import run_cli_process, servicetags_name

    tags = write_service_tags(tmp_path / servicetags_name(), DOC_TAGS)
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        doc_description(
            target, "{mode: standalone, resolvers: [203.0.113.53]}", '["203.0.113.0/24", "2001:db8:ffff::/48"]'
        ),
        encoding="utf-8",
    )
    outputs = []
    for seed in seeds:
        out = tmp_path / f"out{seed}"
        r = run_cli_process(
            "render",
            spec.name,
            "--target",
            target,
            "--service-tags",
            tags.name,
            "--out",
            out,
            cwd=tmp_path,
            env={"PYTHONHASHSEED": seed},
        )
        assert r.code == 0, r.err
        outputs.append({p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.name != ".acrrules-manifest"})
    return outputs
