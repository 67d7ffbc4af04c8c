"""The iptables target (ipset.rules, iptables.rules, ip6tables.rules), proven in a real kernel.

Every rendered set of files is loaded with `ipset restore` and
`iptables-restore` / `ip6tables-restore` (with --noflush in include mode) into a
fresh private network namespace (tests/netns.py) and read back with
`ipset save` and `iptables-save`; the sets must equal the prefixes computed
straight from the Service Tags JSON.  Behaviour tests probe real TCP
connections between two private namespaces on documentation addresses.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

import netns
import pytest
from conftest import (
    CLOUD_FILE_KIND,
    latest_servicetags,
    need_root_netns,
    need_tool,
    run_cli,
    run_validator,
    sample_specs,
    servicetags_name,
)

CHAIN = "ACRRULES"
V4, V6 = f"{CHAIN}_v4", f"{CHAIN}_v6"


def need_kernel():
    need_root_netns()
    need_tool(
        "iptables",
        "ip6tables",
        "iptables-restore",
        "ip6tables-restore",
        "iptables-save",
        "ip6tables-save",
        "ipset",
        "ip",
    )


def render(tmp: Path, description: str, servicetags: Path, name: str = "spec.yaml") -> dict[str, Path]:
    return files_of(netns.render_target(tmp, description, servicetags, "iptables", name))


def files_of(out: Path) -> dict[str, Path]:
    return {"sets": out / "ipset.rules", "v4": out / "iptables.rules", "v6": out / "ip6tables.rules"}


def cmd(*argv: str) -> dict:
    return {"cmd": list(argv)}


def documented_command(rules: Path) -> list[list[str]]:
    """The load command a rules file's header documents (`#   ipset restore ... && ...-restore ... FILE`),
    as argv lists with the file names made paths: what the tests run is what the file tells a user."""
    import shlex

    (line,) = [x for x in rules.read_text(encoding="utf-8").splitlines() if x.startswith("#   ipset restore ")]
    out = []
    for part in line[len("#   ") :].split("&&"):
        argv = shlex.split(part)
        out.append([str(rules.parent / a) if (rules.parent / a).is_file() else a for a in argv])
    return out


def load(files: dict[str, Path], mode: str) -> list[dict]:
    """The documented load sequence: sets first, then the rules (--noflush in both modes, as the headers say)."""
    v4, v6 = documented_command(files["v4"]), documented_command(files["v6"])
    assert v4[0] == v6[0] == ["ipset", "restore", "-f", str(files["sets"])]
    assert v4[1] == ["iptables-restore", "--noflush", str(files["v4"])], v4
    assert v6[1] == ["ip6tables-restore", "--noflush", str(files["v6"])], v6
    return [cmd(*v4[0]), cmd(*v4[1]), cmd(*v6[1])]


SAVE = [cmd("ipset", "save"), cmd("iptables-save"), cmd("ip6tables-save"), cmd("iptables-save", "-t", "nat")]


def saved(results: list[dict]) -> list[dict]:
    """Group the outputs of consecutive SAVE steps: [{"ipset": ..., "v4": ..., "v6": ..., "nat": ...}, ...]."""
    outs = [r for r in results if r.get("cmd_kind") == "save"]
    return [
        dict(zip(("ipset", "v4", "v6", "nat"), (r["out"] for r in outs[i : i + 4]))) for i in range(0, len(outs), 4)
    ]


def run(steps: list[dict], **kw) -> list[dict]:
    """netns.run, asserting every command succeeded and tagging the SAVE outputs."""
    results = netns.run(steps, **kw)
    for step, r in zip(steps, results):
        if "rc" in r:
            assert r["rc"] == 0, f"{step['cmd']}: {r['err']}"
            if step in SAVE:
                r["cmd_kind"] = "save"
    return results


# The host's own objects, created in the namespace before acrrules loads: they must survive.
HOST_SETUP = [
    cmd("ipset", "create", "hostset", "hash:ip"),
    cmd("ipset", "add", "hostset", "198.51.100.99"),
    cmd("iptables", "-N", "HOSTCHAIN"),
    cmd("iptables", "-A", "HOSTCHAIN", "-p", "tcp", "--dport", "22", "-j", "ACCEPT"),
    cmd("iptables", "-A", "OUTPUT", "-j", "HOSTCHAIN"),
    cmd("iptables", "-A", "INPUT", "-m", "set", "--match-set", "hostset", "src", "-j", "DROP"),
    cmd("ip6tables", "-N", "HOSTCHAIN6"),
    cmd("ip6tables", "-A", "HOSTCHAIN6", "-p", "tcp", "--dport", "22", "-j", "ACCEPT"),
    cmd("ip6tables", "-A", "OUTPUT", "-j", "HOSTCHAIN6"),
    cmd("iptables", "-t", "nat", "-A", "POSTROUTING", "-d", "198.51.100.0/24", "-j", "RETURN"),
]
HOST_JUMPS = [cmd("iptables", "-A", "OUTPUT", "-j", CHAIN), cmd("ip6tables", "-A", "OUTPUT", "-j", CHAIN)]


def chain_rules(save: str, chain: str) -> list[str]:
    return [line for line in netns.iptables_lines(save) if line.startswith(f"-A {chain} ")]


# ---- real Service Tags files: load, reload, read back ---------------------------------------

CLOUDS = netns.REAL_CLOUDS


@pytest.fixture(scope="module")
def real_outputs(tmp_path_factory) -> dict:
    """{(cloud, mode): ({sets, v4, v6}, Service Tags file)} rendered once for the module."""
    return netns.render_real(tmp_path_factory, "iptables", files_of)


@pytest.mark.parametrize("mode", ["include", "standalone"])
@pytest.mark.parametrize("cloud", CLOUDS)
def test_real_file_loads_reloads_and_holds_exactly_the_planned_prefixes(real_outputs, cloud, mode):
    need_kernel()
    files, tags = real_outputs[cloud, mode]
    want_v4, want_v6 = netns.expected_prefixes(tags, cloud)
    assert want_v4 and want_v6, "the description should need both families"
    steps = [*HOST_SETUP, *SAVE, *load(files, mode)]
    if mode == "include":
        steps += HOST_JUMPS
    steps += [*SAVE, *load(files, mode), *SAVE, *load(files, mode), *SAVE]
    before, first, second, third = saved(run(steps))

    # Reloading gives the same result.
    for part in ("v4", "v6", "nat"):
        assert (
            netns.iptables_lines(first[part]) == netns.iptables_lines(second[part]) == netns.iptables_lines(third[part])
        )
    assert netns.ipset_sets(first["ipset"]) == netns.ipset_sets(third["ipset"])
    assert netns.ipset_headers(first["ipset"]) == netns.ipset_headers(third["ipset"])

    # Exactly the planned prefixes, each stored as one CIDR; no temporary set left behind.
    sets = netns.ipset_sets(third["ipset"])
    assert set(sets) == {V4, V6, "hostset"}
    assert sets[V4] == want_v4 and sets[V6] == want_v6
    assert len(netns.ipset_raw_elements(third["ipset"], V4)) == len(want_v4)
    assert len(netns.ipset_raw_elements(third["ipset"], V6)) == len(want_v6)
    assert "family inet " in netns.ipset_headers(third["ipset"])[V4]
    assert "family inet6 " in netns.ipset_headers(third["ipset"])[V6]
    # The host's set and its NAT rule are untouched in both modes (standalone owns the filter table's OUTPUT only).
    assert sets["hostset"] == netns.ipset_sets(before["ipset"])["hostset"]
    assert netns.iptables_lines(third["nat"]) == netns.iptables_lines(before["nat"])

    for family, set_name in (("v4", V4), ("v6", V6)):
        ours = chain_rules(third[family], CHAIN)
        assert len(ours) == 1 and f"--match-set {set_name} dst" in ours[0] and "--dport 443" in ours[0]
        lines = netns.iptables_lines(third[family])
        if mode == "include":
            # Every host rule and chain survived, in its place; our chain is only jumped to by the host.
            host = [line for line in netns.iptables_lines(before[family]) if line not in ("COMMIT",)]
            assert [line for line in lines if line in host] == host
            assert f"-A OUTPUT -j {CHAIN}" in lines
            assert ":OUTPUT ACCEPT [0:0]" in lines
        else:
            assert ":OUTPUT DROP [0:0]" in lines
            # OUTPUT is ours (the host's jump from it went), everything else of the host stayed.
            assert not [line for line in chain_rules(third[family], "OUTPUT") if "HOSTCHAIN" in line]
            assert host_part(third[family]) == host_part(before[family])
            assert chain_rules(third[family], "OUTPUT")[-1] == f"-A OUTPUT -j {CHAIN}"  # the jump comes last


@pytest.mark.parametrize("mode", ["include", "standalone"])
@pytest.mark.parametrize("cloud", CLOUDS)
def test_shared_ipt_check_accepts_real_file_output(real_outputs, cloud, mode):
    need_kernel()
    files, _ = real_outputs[cloud, mode]
    r = run_validator("ipt_check.sh", files["v4"], files["v6"], files["sets"], python=False)
    assert r.returncode == 0, r.stdout + r.stderr


def test_headers_name_the_service_tags_file_cloud_and_change_number(real_outputs):
    import json

    files, tags = real_outputs["AzureChinaCloud", "standalone"]
    data = json.loads(tags.read_text(encoding="utf-8"))
    wanted = f"# Service Tags of cloud {data['cloud']}, with the changeNumber of each tag used:"
    changes = {v["name"]: int(v["properties"]["changeNumber"]) for v in data["values"]}
    for path in files.values():
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        at = lines.index(wanted)
        listed = []
        for line in lines[at + 1 :]:
            if not line.startswith("#   "):
                break
            tag, n = line[4:].rsplit(" ", 1)
            listed.append((tag, int(n)))
        assert listed and all(changes[tag] == n for tag, n in listed), (path.name, listed)
        assert tags.name not in text and str(tags.parent) not in text


# ---- reload semantics -----------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["include", "standalone"])
def test_reload_with_a_newer_file_swaps_the_sets_while_rules_use_them(tmp_path, mode):
    need_kernel()
    old_tags = netns.write_service_tags(
        tmp_path / servicetags_name(7),
        {**netns.DOC_TAGS, "Storage.EastUS": ["198.51.100.0/24", "2001:db8:5::/48"]},
    )
    new_tags = netns.write_service_tags(tmp_path / servicetags_name(), netns.DOC_TAGS)
    description = netns.doc_description("iptables", f"{{mode: {mode}}}")
    old = render(tmp_path / "old", description, old_tags)
    new = render(tmp_path / "new", description, new_tags)
    before, after = saved(run([*load(old, mode), *SAVE, *load(new, mode), *SAVE]))
    assert ipaddress.ip_network("198.51.100.0/24") in netns.ipset_sets(before["ipset"])[V4]
    sets = netns.ipset_sets(after["ipset"])
    assert set(sets) == {V4, V6}
    assert sets[V4] | sets[V6] == netns.DOC_ALLOWED


@pytest.mark.parametrize("empty", [4, 6])
@pytest.mark.parametrize("mode", ["include", "standalone"])
def test_a_family_without_prefixes_still_loads_with_an_empty_set(tmp_path, mode, empty):
    need_kernel()
    kept = {4: ["192.0.2.0/24"], 6: ["2001:db8::/48"]}[10 - empty]
    tags = netns.write_service_tags(
        tmp_path / servicetags_name(7), {"AzureContainerRegistry.EastUS": kept, "Storage.EastUS": kept}
    )
    files = render(tmp_path, netns.doc_description("iptables", f"{{mode: {mode}}}"), tags)
    (state,) = saved(run([*load(files, mode), *load(files, mode), *SAVE]))
    sets = netns.ipset_sets(state["ipset"])
    assert sets[f"{CHAIN}_v{empty}"] == set()
    assert sets[f"{CHAIN}_v{10 - empty}"] == {ipaddress.ip_network(kept[0])}


def test_set_size_limit_is_an_input_error_and_nothing_is_written(tmp_path, monkeypatch):
    from acrrules.targets import iptables as target

    monkeypatch.setattr(target, "IPSET_MAXELEM", 1)  # below: 2 IPv4 prefixes that cannot merge, 1 IPv6
    tags = netns.write_service_tags(
        tmp_path / servicetags_name(7),
        {"AzureContainerRegistry.EastUS": ["192.0.2.0/25", "198.51.100.0/24"], "Storage.EastUS": ["2001:db8::/48"]},
    )
    spec = tmp_path / "spec.yaml"
    spec.write_text(netns.doc_description("iptables", "{mode: include}"), encoding="utf-8")
    r = run_cli("render", spec, "--target", "iptables", "--service-tags", tags, "--out", tmp_path / "out")
    assert r.code == 2
    assert "2 IPv4 prefixes" in r.err and "at most 1" in r.err and "Traceback" not in r.err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


# ---- behaviour: the kernel enforces what the files say ----------------------------------------

HOST_POLICY = [  # a host's own egress policy in include mode: drop by default, jump to our chain
    cmd("iptables", "-P", "OUTPUT", "DROP"),
    cmd("iptables", "-A", "OUTPUT", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"),
    cmd("ip6tables", "-P", "OUTPUT", "DROP"),
    cmd("ip6tables", "-A", "OUTPUT", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"),
    *[
        cmd("ip6tables", "-A", "OUTPUT", "-p", "ipv6-icmp", "--icmpv6-type", str(t), "-j", "ACCEPT")
        for t in (133, 135, 136, 143)
    ],
    *HOST_JUMPS,
]


def _behaviour(
    tmp_path: Path, mode: str, settings: str, extra: list[dict], sources: str = '["*"]'
) -> tuple[dict, dict]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    tags = netns.write_service_tags(tmp_path / servicetags_name(7), netns.DOC_TAGS)
    files = render(tmp_path, netns.doc_description("iptables", settings, sources), tags)
    probes = {"probe": netns.LISTEN}
    # The baseline probes filled the neighbour cache: empty it, so IPv6 must pass neighbour discovery again.
    forget_neighbours = cmd("ip", "neigh", "flush", "dev", "vA")
    results = run([probes, *load(files, mode), *extra, forget_neighbours, *SAVE, probes], listen=netns.LISTEN)
    baseline, after = results[0], results[-1]
    assert set(baseline["probe"].values()) == {"connected"}, f"test setup broken: {baseline}"
    (state,) = saved(results)
    return after["probe"], netns.ipset_sets(state["ipset"])


def test_include_mode_behaviour_with_a_host_policy(tmp_path):
    need_kernel()
    got, sets = _behaviour(tmp_path, "include", "{mode: include}", HOST_POLICY)
    assert sets[V4] | sets[V6] == netns.DOC_ALLOWED
    for t in netns.ALLOWED_PROBES:
        assert got[t] == "connected", (t, got)
    for t in netns.DENIED_PROBES + netns.DNS_PROBES:
        assert got[t] != "connected", (t, got)


def test_include_mode_changes_no_traffic_by_itself(tmp_path):
    need_kernel()
    got, _ = _behaviour(tmp_path, "include", "{mode: include}", [])
    assert set(got.values()) == {"connected"}, got


def test_standalone_mode_behaviour(tmp_path):
    need_kernel()
    resolvers = ", ".join(f"'{r}'" for r in netns.RESOLVERS)
    got, sets = _behaviour(tmp_path, "standalone", f"{{mode: standalone, resolvers: [{resolvers}]}}", [])
    assert sets[V4] | sets[V6] == netns.DOC_ALLOWED
    for t in netns.ALLOWED_PROBES + netns.DNS_PROBES:
        assert got[t] == "connected", (t, got)
    for t in netns.DENIED_PROBES:
        assert got[t] != "connected", (t, got)


def test_sources_restrict_the_clients(tmp_path):
    """The probing client is 203.0.113.1 / 2001:db8:ffff::1: listing only its IPv4 address lets IPv4 through
    and no IPv6 client at all."""
    need_kernel()
    v4_client = netns.CLIENT_ADDRESSES[0]
    got, _ = _behaviour(
        tmp_path, "standalone", "{mode: standalone}", [], sources=f'["{v4_client}/32", "198.51.100.0/24"]'
    )
    assert got["192.0.2.10:443"] == "connected"
    assert got["[2001:db8::10]:443"] != "connected"
    got, _ = _behaviour(tmp_path / "other", "standalone", "{mode: standalone}", [], sources='["198.51.100.0/24"]')
    assert got["192.0.2.10:443"] != "connected"


# ---- determinism and samples ---------------------------------------------------------------


def test_rendering_is_byte_identical_across_runs(tmp_path):
    outputs = netns.render_with_seeds(tmp_path, "iptables")
    assert sorted(outputs[0]) == ["ip6tables.rules", "ipset.rules", "iptables.rules"]
    assert outputs[0] == outputs[1]


@pytest.mark.parametrize("spec", sample_specs(), ids=lambda p: p.stem)
@pytest.mark.parametrize("mode", ["include", "standalone"])
def test_every_sample_renders_files_that_load(tmp_path, spec, mode):
    """Each sample with the newest Service Tags file of its cloud, in both modes, loaded for real (twice)."""
    need_kernel()
    import yaml

    data = yaml.safe_load(spec.read_text(encoding="utf-8"))
    data.setdefault("targets", {}).setdefault("iptables", {})["mode"] = mode
    tags = latest_servicetags(CLOUD_FILE_KIND[data.get("cloud", "AzureCloud")])
    files = render(tmp_path, yaml.safe_dump(data), tags, name=spec.name)
    first, second = saved(run([*load(files, mode), *SAVE, *load(files, mode), *SAVE]))
    assert netns.iptables_lines(first["v4"]) == netns.iptables_lines(second["v4"])
    assert netns.ipset_sets(first["ipset"]) == netns.ipset_sets(second["ipset"])


def test_a_reserved_chain_name_is_refused_with_a_located_message(tmp_path):
    tags = netns.write_service_tags(tmp_path / servicetags_name(7), netns.DOC_TAGS)
    spec = tmp_path / "spec.yaml"
    spec.write_text(netns.doc_description("iptables", "{mode: include, chain: LOG}"), encoding="utf-8")
    r = run_cli("render", spec, "--target", "iptables", "--service-tags", tags, "--out", tmp_path / "out")
    assert r.code == 2
    line = spec.read_text(encoding="utf-8").splitlines().index("  iptables: {mode: include, chain: LOG}") + 1
    assert r.err.startswith(f"{spec}:{line}:"), r.err
    assert "'LOG' is a built-in chain, verdict or target" in r.err and "Traceback" not in r.err
    assert not (tmp_path / "out").exists()


def test_reserved_chain_names_are_the_ones_iptables_refuses():
    """Every target name on our list is refused by `iptables -N` or `ip6tables -N` (our chain exists in both),
    every built-in chain name exists in some table already; a near miss (other case) is an ordinary chain."""
    need_kernel()
    from acrrules.catalog import IPTABLES_BUILTIN_CHAINS, IPTABLES_TARGETS

    targets = sorted(IPTABLES_TARGETS)
    steps = [cmd(tool, "-N", name) for name in targets for tool in ("iptables", "ip6tables")]
    steps += [
        cmd(tool, "-t", table, "-N", name)
        for name in sorted(IPTABLES_BUILTIN_CHAINS)
        for tool in ("iptables", "ip6tables")
        for table in ("filter", "mangle")
    ]
    steps += [cmd("iptables", "-N", "Log")]
    results = netns.run(steps)
    *refusals, near_miss = results
    created = {tuple(s["cmd"]) for s, r in zip(steps, refusals) if r["rc"] == 0}
    for name in targets:
        assert ("iptables", "-N", name) not in created or ("ip6tables", "-N", name) not in created, name
    for name in IPTABLES_BUILTIN_CHAINS:
        assert any(
            (tool, "-t", table, "-N", name) not in created
            for tool in ("iptables", "ip6tables")
            for table in ("filter", "mangle")
        ), name
    assert near_miss["rc"] == 0


# ---- the host's own firewall: standalone never opens it (issue 13, finding 4) ---------------

# A host's inbound policy: INPUT and FORWARD drop, SSH allowed, a chain of its own; IPv6 with the ICMPv6 it needs.
HOST_INBOUND = [
    *[
        cmd(tool, *argv)
        for tool in ("iptables", "ip6tables")
        for argv in (
            ("-P", "INPUT", "DROP"),
            ("-P", "FORWARD", "DROP"),
            ("-N", "HOSTIN"),
            ("-A", "HOSTIN", "-p", "tcp", "--dport", "22", "-j", "ACCEPT"),
            ("-A", "INPUT", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"),
            ("-A", "INPUT", "-i", "lo", "-j", "ACCEPT"),
            ("-A", "INPUT", "-j", "HOSTIN"),
            ("-A", "FORWARD", "-p", "tcp", "--dport", "22", "-j", "ACCEPT"),
        )
    ],
    cmd("ip6tables", "-I", "INPUT", "-p", "ipv6-icmp", "-j", "ACCEPT"),
]
INBOUND_OPEN = ["203.0.113.1:22", "[2001:db8:ffff::1]:22"]  # the SSH allow
INBOUND_CLOSED = ["203.0.113.1:2222", "[2001:db8:ffff::1]:2222"]  # the drop policy


def host_part(save: str) -> list[str]:
    """The filter table without OUTPUT's rules and policy (standalone's own) and without acrrules' chain."""
    return [
        line
        for line in netns.iptables_lines(save)
        if not line.startswith(("-A OUTPUT ", ":OUTPUT ", f"-A {CHAIN} ", f":{CHAIN} "))
    ]


def test_standalone_keeps_the_hosts_input_and_forward_policies_and_rules(tmp_path):
    """Loaded as its header says, twice: INPUT/FORWARD policies and rules and the host's chain are exactly as
    before, inbound SSH still connects and other inbound ports stay closed. On main, plain `iptables-restore`
    set INPUT and FORWARD to ACCEPT and flushed the host's rules."""
    need_kernel()
    tags = netns.write_service_tags(tmp_path / servicetags_name(7), netns.DOC_TAGS)
    resolvers = ", ".join(f"'{r}'" for r in netns.RESOLVERS)
    files = render(tmp_path, netns.doc_description("iptables", f"{{mode: standalone, resolvers: [{resolvers}]}}"), tags)
    probe_in = {"probe_in": INBOUND_OPEN + INBOUND_CLOSED}
    # Exactly what the headers document, whatever it is (run twice: a reload too).
    documented = [cmd(*argv) for rules in (files["v4"], files["v6"]) for argv in documented_command(rules)]
    steps = [*HOST_INBOUND, *SAVE, probe_in, *documented, *documented, *SAVE]
    steps += [probe_in, {"probe": netns.ALLOWED_PROBES + netns.DENIED_PROBES}]
    results = run(steps, listen=netns.LISTEN)
    before, after = saved(results)
    baseline, inbound = (r["probe_in"] for r in results if "probe_in" in r)
    assert baseline == {**dict.fromkeys(INBOUND_OPEN, "connected"), **dict.fromkeys(INBOUND_CLOSED, "timeout")}, (
        baseline
    )
    for family in ("v4", "v6"):
        assert host_part(after[family]) == host_part(before[family]), family
        lines = netns.iptables_lines(after[family])
        assert ":INPUT DROP [0:0]" in lines and ":FORWARD DROP [0:0]" in lines and ":OUTPUT DROP [0:0]" in lines
        assert "-A HOSTIN -p tcp -m tcp --dport 22 -j ACCEPT" in lines
    assert inbound == baseline, inbound
    outbound = results[-1]["probe"]
    assert {outbound[t] for t in netns.ALLOWED_PROBES} == {"connected"}, outbound
    assert "connected" not in {outbound[t] for t in netns.DENIED_PROBES}, outbound


def _cli(tmp_path: Path, settings: str, command: str):
    tmp_path.mkdir(parents=True, exist_ok=True)
    tags = netns.write_service_tags(tmp_path / servicetags_name(7), netns.DOC_TAGS)
    spec = tmp_path / "spec.yaml"
    spec.write_text(netns.doc_description("iptables", settings), encoding="utf-8")
    if command == "validate":
        return spec, run_cli("validate", spec, "--target", "iptables")
    return spec, run_cli("render", spec, "--target", "iptables", "--service-tags", tags, "--out", tmp_path / "out")


@pytest.mark.parametrize("command", ["validate", "render"])
def test_standalone_without_resolvers_warns_located_that_dns_is_blocked(tmp_path, command):
    settings = "{mode: standalone}"
    spec, r = _cli(tmp_path, settings, command)
    assert r.code == 0, r.err
    line = spec.read_text(encoding="utf-8").splitlines().index(f"  iptables: {settings}") + 1
    warnings = [w for w in r.err.splitlines() if "warning:" in w and "resolvers" in w]
    assert len(warnings) == 1 and warnings[0].startswith(f"{spec}:{line}:"), r.err
    assert "DNS" in warnings[0] and "targets.iptables.resolvers" in warnings[0]
    for quiet in ("{mode: standalone, resolvers: ['2001:db8::53']}", "{mode: include}"):
        _, r = _cli(tmp_path / str(len(quiet)), quiet, command)
        assert r.code == 0 and "resolvers" not in r.err, r.err
