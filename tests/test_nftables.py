"""The nftables target, proven in a real kernel.

Every rendered file is loaded with `nft -f` into a fresh private network
namespace (tests/netns.py) and read back with `nft -j list ruleset`; the sets
the kernel holds must equal the prefixes computed straight from the Service
Tags JSON.  Behaviour tests probe real TCP connections between two private
namespaces on documentation addresses.
"""

from __future__ import annotations

import ipaddress
import json
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

TABLE = "acrrules"
ICMPV6_ND = "icmpv6 type { 133, 135, 136, 143 } accept"  # a host's own chain must let IPv6 find neighbours

HOST_TABLE = """\
table inet hostfw {
	set blocked {
		type ipv4_addr
		elements = { 198.51.100.99 }
	}

	chain input {
		type filter hook input priority filter; policy accept;
		tcp dport 22 accept
		ip saddr @blocked drop
	}
}
"""


def host_chain(table: str = TABLE) -> str:
    """What a host adds to OUR table in include mode: its own base chain that jumps to acr_allow."""
    return f"""\
table inet {table} {{
	chain host_output {{
		type filter hook output priority filter; policy drop;
		ct state established,related accept
		{ICMPV6_ND}
		jump acr_allow
	}}
}}
"""


def need_kernel():
    need_root_netns()
    need_tool("nft", "ip")


def render(tmp: Path, description: str, servicetags: Path, name: str = "spec.yaml") -> Path:
    return netns.render_target(tmp, description, servicetags, "nftables", name) / "acrrules.nft"


def cmd(*argv: str) -> dict:
    return {"cmd": list(argv)}


def ok(results: list[dict]) -> list[dict]:
    for r in results:
        if "rc" in r:
            assert r["rc"] == 0, r["err"]
    return results


LIST = cmd("nft", "-j", "list", "ruleset")


def _set_refs(expr) -> list[str]:
    """The named sets (`@name`) a rule's JSON expression refers to."""
    if isinstance(expr, dict):
        return [ref for v in expr.values() for ref in _set_refs(v)]
    if isinstance(expr, list):
        return [ref for v in expr for ref in _set_refs(v)]
    return [expr] if isinstance(expr, str) and expr.startswith("@") else []


# ---- real Service Tags files: load, reload, read back ---------------------------------------

CLOUDS = netns.REAL_CLOUDS


@pytest.fixture(scope="module")
def real_outputs(tmp_path_factory) -> dict:
    """{(cloud, mode): (acrrules.nft, Service Tags file)} rendered once for the module."""
    return netns.render_real(tmp_path_factory, "nftables", lambda out: out / "acrrules.nft")


@pytest.mark.parametrize("mode", ["include", "standalone"])
@pytest.mark.parametrize("cloud", CLOUDS)
def test_real_file_loads_reloads_and_holds_exactly_the_planned_prefixes(real_outputs, cloud, mode):
    need_kernel()
    nft_file, tags = real_outputs[cloud, mode]
    want_v4, want_v6 = netns.expected_prefixes(tags, cloud)
    assert want_v4 and want_v6, "the description should need both families"
    host_file = nft_file.parent / "host.nft"
    host_file.write_text(HOST_TABLE, encoding="utf-8")
    chain_file = nft_file.parent / "host-chain.nft"
    chain_file.write_text(host_chain(), encoding="utf-8")

    steps = [cmd("nft", "-f", str(host_file)), LIST, cmd("nft", "-f", str(nft_file))]
    if mode == "include":
        steps.append(cmd("nft", "-f", str(chain_file)))
    steps += [LIST, cmd("nft", "-f", str(nft_file)), LIST, cmd("nft", "-f", str(nft_file)), LIST]
    results = ok(netns.run(steps))
    before, first, second, third = (netns.nft_objects(r["out"]) for r in results if r["out"])

    # Reloading changes nothing: the same objects, one copy of each.
    assert first == second == third
    tables = [o["table"] for o in third if "table" in o]
    assert sorted((t["family"], t["name"]) for t in tables) == [("inet", TABLE), ("inet", "hostfw")]
    # The host's own table is untouched.
    assert netns.nft_table(third, "inet", "hostfw") == netns.nft_table(before, "inet", "hostfw") != []

    sets = netns.nft_sets(third)
    assert sets["inet", TABLE, "acr_v4"] == want_v4
    assert sets["inet", TABLE, "acr_v6"] == want_v6
    assert len(want_v4) + len(want_v6) > 50  # a real file, not a toy

    allow = netns.nft_rules(third, "inet", TABLE, "acr_allow")
    # One rule per family, no copies.
    assert sorted(_set_refs(r) for r in allow) == [["@acr_v4"], ["@acr_v6"]]
    chains = netns.nft_chains(third, "inet", TABLE)
    if mode == "include":
        # No hook of ours; the host's base chain in our table survived every reload.
        assert set(chains) == {"acr_allow", "host_output"}
        assert "hook" not in chains["acr_allow"]
        assert len(netns.nft_rules(third, "inet", TABLE, "host_output")) == 3
    else:
        assert set(chains) == {"acr_allow", "acr_egress"}
        egress = chains["acr_egress"]
        assert (egress["type"], egress["hook"], egress["prio"], egress["policy"]) == ("filter", "output", 0, "drop")


@pytest.mark.parametrize("mode", ["include", "standalone"])
@pytest.mark.parametrize("cloud", CLOUDS)
def test_shared_nft_check_accepts_real_file_output(real_outputs, cloud, mode):
    need_kernel()
    nft_file, _ = real_outputs[cloud, mode]
    r = run_validator("nft_check.sh", nft_file, python=False)
    assert r.returncode == 0, r.stdout + r.stderr


def test_header_names_the_service_tags_file_cloud_and_change_number(real_outputs):
    nft_file, tags = real_outputs["AzureUSGovernment", "include"]
    data = json.loads(tags.read_text(encoding="utf-8"))
    header = [line for line in nft_file.read_text(encoding="utf-8").splitlines() if line.startswith("#")]
    assert header[0] == "#!/usr/sbin/nft -f"
    # The cloud and each tag used with its changeNumber, never the file's name or date (quiet weeks).
    at = header.index(f"# Service Tags of cloud {data['cloud']}, with the changeNumber of each tag used:")
    changes = {v["name"]: int(v["properties"]["changeNumber"]) for v in data["values"]}
    listed = [line[4:].rsplit(" ", 1) for line in header[at + 1 :] if line.startswith("#   ") and line[4:5] != " "]
    listed = listed[: next((i for i, x in enumerate(listed) if len(x) != 2 or not x[1].isdigit()), len(listed))]
    assert listed and all(changes[tag] == int(n) for tag, n in listed), listed
    text = nft_file.read_text(encoding="utf-8")
    assert tags.name not in text and str(tags.parent) not in text  # no file name, no path


# ---- reload semantics: switching modes, host objects ------------------------------------------


def test_switching_modes_on_reload(tmp_path):
    """standalone -> include removes our output hook (no drop policy left behind);
    include -> standalone adds it again and keeps the host's chain in our table; other tables always survive."""
    need_kernel()
    tags = netns.write_service_tags(tmp_path / servicetags_name(7), netns.DOC_TAGS)
    include = render(tmp_path / "inc", netns.doc_description("nftables", "{mode: include}"), tags)
    standalone = render(tmp_path / "sa", netns.doc_description("nftables", "{mode: standalone}"), tags)
    host = tmp_path / "host.nft"
    host.write_text(HOST_TABLE, encoding="utf-8")
    chain = tmp_path / "chain.nft"
    chain.write_text(host_chain(), encoding="utf-8")
    results = ok(
        netns.run(
            [
                cmd("nft", "-f", str(host)),
                LIST,
                cmd("nft", "-f", str(standalone)),
                LIST,
                cmd("nft", "-f", str(include)),
                LIST,
                cmd("nft", "-f", str(chain)),
                cmd("nft", "-f", str(standalone)),
                LIST,
            ]
        )
    )
    host_only, after_standalone, after_include, back_to_standalone = (
        netns.nft_objects(r["out"]) for r in results if r["out"]
    )
    assert set(netns.nft_chains(after_standalone, "inet", TABLE)) == {"acr_allow", "acr_egress"}
    assert set(netns.nft_chains(after_include, "inet", TABLE)) == {"acr_allow"}
    assert netns.nft_sets(after_include)["inet", TABLE, "acr_v4"] == {ipaddress.ip_network("192.0.2.0/24")}
    assert set(netns.nft_chains(back_to_standalone, "inet", TABLE)) == {"acr_allow", "acr_egress", "host_output"}
    assert [o for o in back_to_standalone if "host_output" not in json.dumps(o)] == after_standalone
    for state in (after_standalone, after_include, back_to_standalone):
        assert netns.nft_table(state, "inet", "hostfw") == netns.nft_table(host_only, "inet", "hostfw")


@pytest.mark.parametrize("mode", ["include", "standalone"])
def test_reload_with_a_newer_file_drops_prefixes_that_left_the_tags(tmp_path, mode):
    need_kernel()
    old_tags = netns.write_service_tags(
        tmp_path / servicetags_name(7),
        {**netns.DOC_TAGS, "Storage.EastUS": ["198.51.100.0/24", "2001:db8:5::/48"]},
    )
    new_tags = netns.write_service_tags(tmp_path / servicetags_name(), netns.DOC_TAGS)
    description = netns.doc_description("nftables", f"{{mode: {mode}}}")
    old_file = render(tmp_path / "old", description, old_tags)
    new_file = render(tmp_path / "new", description, new_tags)
    results = ok(netns.run([cmd("nft", "-f", str(old_file)), LIST, cmd("nft", "-f", str(new_file)), LIST]))
    before, after = (netns.nft_sets(netns.nft_objects(r["out"])) for r in results if r["out"])
    assert ipaddress.ip_network("198.51.100.0/24") in before["inet", TABLE, "acr_v4"]
    assert after["inet", TABLE, "acr_v4"] | after["inet", TABLE, "acr_v6"] == netns.DOC_ALLOWED


@pytest.mark.parametrize("empty", [4, 6])
@pytest.mark.parametrize("mode", ["include", "standalone"])
def test_a_family_without_prefixes_still_loads_with_an_empty_set(tmp_path, mode, empty):
    need_kernel()
    kept = {4: ["192.0.2.0/24"], 6: ["2001:db8::/48"]}[10 - empty]
    tags = netns.write_service_tags(
        tmp_path / servicetags_name(7), {"AzureContainerRegistry.EastUS": kept, "Storage.EastUS": kept}
    )
    nft_file = render(tmp_path, netns.doc_description("nftables", f"{{mode: {mode}}}"), tags)
    results = ok(netns.run([cmd("nft", "-f", str(nft_file)), cmd("nft", "-f", str(nft_file)), LIST]))
    sets = netns.nft_sets(netns.nft_objects(results[-1]["out"]))
    assert sets["inet", TABLE, f"acr_v{empty}"] == set()
    assert sets["inet", TABLE, f"acr_v{10 - empty}"] == {ipaddress.ip_network(kept[0])}


# ---- behaviour: the kernel enforces what the file says -------------------------------------


def _behaviour(tmp_path: Path, settings: str, extra: list[dict], sources: str = '["*"]') -> tuple[dict, dict, dict]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    tags = netns.write_service_tags(tmp_path / servicetags_name(7), netns.DOC_TAGS)
    nft_file = render(tmp_path, netns.doc_description("nftables", settings, sources), tags)
    probes = {"probe": netns.LISTEN}
    # The baseline probes filled the neighbour cache: empty it, so IPv6 must pass neighbour discovery again.
    forget_neighbours = cmd("ip", "neigh", "flush", "dev", "vA")
    results = netns.run(
        [probes, cmd("nft", "-f", str(nft_file)), *extra, forget_neighbours, LIST, probes], listen=netns.LISTEN
    )
    baseline, *steps, listing, after = results
    ok(steps)
    assert set(baseline["probe"].values()) == {"connected"}, f"test setup broken: {baseline}"
    return after["probe"], netns.nft_sets(netns.nft_objects(listing["out"])), baseline


def documented_host_chain(nft_file: Path) -> str:
    """The example base chain the include-mode file's comment tells a host to add, uncommented."""
    lines = nft_file.read_text(encoding="utf-8").splitlines()
    start = lines.index("#   table inet acrrules {")
    end = lines.index("#   }", start)
    return "\n".join(line[len("#   ") :] for line in lines[start : end + 1]) + "\n"


def test_include_mode_behaviour_with_the_documented_host_chain(tmp_path):
    need_kernel()
    tags = netns.write_service_tags(tmp_path / servicetags_name(7), netns.DOC_TAGS)
    chain = tmp_path / "chain.nft"
    chain.write_text(
        documented_host_chain(render(tmp_path / "doc", netns.doc_description("nftables", "{}"), tags)), encoding="utf-8"
    )
    got, sets, _ = _behaviour(tmp_path, "{mode: include}", [cmd("nft", "-f", str(chain))])
    assert sets["inet", TABLE, "acr_v4"] | sets["inet", TABLE, "acr_v6"] == netns.DOC_ALLOWED
    for t in netns.ALLOWED_PROBES:
        assert got[t] == "connected", (t, got)
    for t in netns.DENIED_PROBES + netns.DNS_PROBES:  # include mode allows no DNS: the host's chain decides
        assert got[t] != "connected", (t, got)


def test_include_mode_changes_no_traffic_by_itself(tmp_path):
    need_kernel()
    got, _, _ = _behaviour(tmp_path, "{mode: include}", [])
    assert set(got.values()) == {"connected"}, got


def test_standalone_mode_behaviour(tmp_path):
    need_kernel()
    resolvers = ", ".join(f"'{r}'" for r in netns.RESOLVERS)
    got, sets, _ = _behaviour(tmp_path, f"{{mode: standalone, resolvers: [{resolvers}]}}", [])
    assert sets["inet", TABLE, "acr_v4"] | sets["inet", TABLE, "acr_v6"] == netns.DOC_ALLOWED
    for t in netns.ALLOWED_PROBES + netns.DNS_PROBES:
        assert got[t] == "connected", (t, got)
    for t in netns.DENIED_PROBES:
        assert got[t] != "connected", (t, got)


def test_sources_restrict_the_clients(tmp_path):
    """The probing client is 203.0.113.1 / 2001:db8:ffff::1: listing only its IPv4 address lets IPv4 through
    and no IPv6 client at all."""
    need_kernel()
    v4_client = netns.CLIENT_ADDRESSES[0]
    got, _, _ = _behaviour(tmp_path, "{mode: standalone}", [], sources=f'["{v4_client}/32", "198.51.100.0/24"]')
    assert got["192.0.2.10:443"] == "connected"
    assert got["[2001:db8::10]:443"] != "connected"
    got, _, _ = _behaviour(tmp_path / "other", "{mode: standalone}", [], sources='["198.51.100.0/24"]')
    assert got["192.0.2.10:443"] != "connected"


# ---- determinism and samples ---------------------------------------------------------------


def test_rendering_is_byte_identical_across_runs(tmp_path):
    outputs = netns.render_with_seeds(tmp_path, "nftables")
    assert list(outputs[0]) == ["acrrules.nft"]
    assert outputs[0]["acrrules.nft"] == outputs[1]["acrrules.nft"]


@pytest.mark.parametrize("spec", sample_specs(), ids=lambda p: p.stem)
@pytest.mark.parametrize("mode", ["include", "standalone"])
def test_every_sample_renders_a_file_nft_accepts(tmp_path, spec, mode):
    """Each sample with the newest Service Tags file of its cloud, in both modes: `nft -c` in a private namespace."""
    need_kernel()
    import yaml

    data = yaml.safe_load(spec.read_text(encoding="utf-8"))
    data.setdefault("targets", {}).setdefault("nftables", {})["mode"] = mode
    tags = latest_servicetags(CLOUD_FILE_KIND[data.get("cloud", "AzureCloud")])
    nft_file = render(tmp_path, yaml.safe_dump(data), tags, name=spec.name)
    results = netns.run([cmd("nft", "-c", "-f", str(nft_file))])
    assert results[0]["rc"] == 0, results[0]["err"]


# ---- names nft cannot read ------------------------------------------------------------------


def test_a_keyword_as_table_name_is_refused_with_a_located_message(tmp_path):
    tags = netns.write_service_tags(tmp_path / servicetags_name(7), netns.DOC_TAGS)
    spec = tmp_path / "spec.yaml"
    spec.write_text(netns.doc_description("nftables", "{mode: include, table: set}"), encoding="utf-8")
    r = run_cli("render", spec, "--target", "nftables", "--service-tags", tags, "--out", tmp_path / "out")
    assert r.code == 2
    line = spec.read_text(encoding="utf-8").splitlines().index("  nftables: {mode: include, table: set}") + 1
    assert r.err.startswith(f"{spec}:{line}:"), r.err
    assert "keyword" in r.err and "Traceback" not in r.err
    assert not (tmp_path / "out").exists()


def test_table_names_next_to_keywords_render_files_nft_reads(tmp_path):
    """Other case, words that are keywords only inside an expression, ordinary words: all load (in mode
    include, where the host's own table names such as `filter` are allowed)."""
    need_kernel()
    from acrrules.catalog import NFT_KEYWORDS

    tags = netns.write_service_tags(tmp_path / servicetags_name(7), netns.DOC_TAGS)
    names = ["Set", "TABLE", "Accept", "filter", "nat", "input", "output", "l4proto", "saddr", "dport", "egress", "x"]
    assert not NFT_KEYWORDS & set(names)
    steps = []
    for name in names:
        nft_file = render(tmp_path / name, netns.doc_description("nftables", f"{{mode: include, table: {name}}}"), tags)
        steps.append(cmd("nft", "-c", "-f", str(nft_file)))
    for name, result in zip(names, netns.run(steps)):
        assert result["rc"] == 0, (name, result["err"])


# ---- the host's own firewall: standalone never opens it (issue 13, finding 4) ---------------


# A host's inbound policy: drop, but SSH. Written as the distributions' sample ruleset does
# (`table inet filter`), and once more in a table whose name acrrules cannot know.
def host_inbound(table: str) -> str:
    return f"""\
table inet {table} {{
	chain input {{
		type filter hook input priority filter; policy drop;
		ct state established,related accept
		iif "lo" accept
		meta l4proto ipv6-icmp accept
		tcp dport 22 accept
	}}
}}
"""


INBOUND_OPEN = ["203.0.113.1:22", "[2001:db8:ffff::1]:22"]  # the SSH allow
INBOUND_CLOSED = ["203.0.113.1:2222", "[2001:db8:ffff::1]:2222"]  # the drop policy


def test_standalone_keeps_the_hosts_inbound_policy_and_ssh_allow(tmp_path):
    """The host's `inet filter` and `inet hostfw` tables (policy drop + SSH) survive standalone files loaded twice,
    one of them named like the host's own table: listed before and after, and probed inbound."""
    need_kernel()
    tags = netns.write_service_tags(tmp_path / servicetags_name(7), netns.DOC_TAGS)
    resolvers = ", ".join(f"'{r}'" for r in netns.RESOLVERS)
    ours = render(
        tmp_path / "ours", netns.doc_description("nftables", f"{{mode: standalone, resolvers: [{resolvers}]}}"), tags
    )
    same_name = render(
        tmp_path / "same",
        netns.doc_description("nftables", f"{{mode: standalone, table: hostfw, resolvers: [{resolvers}]}}"),
        tags,
    )
    host = tmp_path / "host.nft"
    host.write_text(host_inbound("filter") + host_inbound("hostfw"), encoding="utf-8")
    probe_in = {"probe_in": INBOUND_OPEN + INBOUND_CLOSED}
    steps = [cmd("nft", "-f", str(host)), LIST, probe_in]
    for f in (ours, same_name, ours, same_name):
        steps.append(cmd("nft", "-f", str(f)))
    steps += [LIST, probe_in, {"probe": netns.ALLOWED_PROBES + netns.DENIED_PROBES}]
    results = netns.run(steps, listen=netns.LISTEN)
    ok(results)
    before, after = (netns.nft_objects(r["out"]) for r in results if r.get("out"))
    baseline, inbound = (r["probe_in"] for r in results if "probe_in" in r)
    assert baseline == {**dict.fromkeys(INBOUND_OPEN, "connected"), **dict.fromkeys(INBOUND_CLOSED, "timeout")}, (
        baseline
    )

    # The host's inbound chains, with their policy and rules, are exactly as before.
    assert netns.nft_table(after, "inet", "filter") == netns.nft_table(before, "inet", "filter") != []
    host_chain_after = [o for o in netns.nft_table(after, "inet", "hostfw") if "acr_" not in json.dumps(o)]
    assert host_chain_after == netns.nft_table(before, "inet", "hostfw")
    assert netns.nft_chains(after, "inet", "hostfw")["input"]["policy"] == "drop"
    assert inbound == baseline, inbound
    # ... and the egress policy is in force (acrrules' chains in both tables).
    outbound = results[-1]["probe"]
    assert {outbound[t] for t in netns.ALLOWED_PROBES} == {"connected"}, outbound
    assert "connected" not in {outbound[t] for t in netns.DENIED_PROBES}, outbound
    assert set(netns.nft_chains(after, "inet", "hostfw")) == {"input", "acr_allow", "acr_egress"}


def _render_cli(tmp_path: Path, settings: str, *, name: str | None = None, command: str = "render"):
    tmp_path.mkdir(parents=True, exist_ok=True)
    tags = netns.write_service_tags(tmp_path / servicetags_name(7), netns.DOC_TAGS)
    spec = tmp_path / "spec.yaml"
    text = netns.doc_description("nftables", settings)
    if name is not None:
        text = f"name: {name}\n" + text
    spec.write_text(text, encoding="utf-8")
    out = tmp_path / "out"
    if command == "validate":
        return spec, out, run_cli("validate", spec, "--target", "nftables")
    return spec, out, run_cli("render", spec, "--target", "nftables", "--service-tags", tags, "--out", out)


@pytest.mark.parametrize("table", ["filter", "nat", "mangle", "raw", "security", "firewalld", "fw4", "libvirt_network"])
@pytest.mark.parametrize("where", ["table", "name"])
def test_standalone_refuses_the_hosts_and_the_distributions_tables(tmp_path, table, where):
    """On main, `table: filter` rendered a file whose load deleted the host's `inet filter` table."""
    settings = f"{{mode: standalone, table: {table}}}" if where == "table" else "{mode: standalone}"
    name = table.replace("_", "-")  # a description's name has '-' where nft has '_'
    spec, out, r = _render_cli(tmp_path, settings, name=name if where == "name" else None)
    assert r.code == 2, r.err
    lines = spec.read_text(encoding="utf-8").splitlines()
    line = (lines.index(f"  nftables: {settings}") if where == "table" else lines.index(f"name: {name}")) + 1
    assert r.err.startswith(f"{spec}:{line}:"), r.err
    assert len(r.err.strip().splitlines()) == 1 and "Traceback" not in r.err
    assert f"'acr_{table}'" in r.err  # the fix
    if where == "name":
        assert "set targets.nftables.table" in r.err
    assert not out.exists()


@pytest.mark.parametrize("table", ["filter", "nat"])
def test_include_mode_may_use_the_hosts_table(tmp_path, table):
    """Include mode adds only acr_* objects and changes no traffic: joining the host's own table is how a host
    chain there reaches `jump acr_allow`; a daemon's table is refused in both modes."""
    _, out, r = _render_cli(tmp_path, f"{{mode: include, table: {table}}}")
    assert r.code == 0, r.err
    assert (out / "acrrules.nft").exists()
    _, _, r = _render_cli(tmp_path / "daemon", "{mode: include, table: firewalld}")
    assert r.code == 2 and "firewalld" in r.err


def test_host_table_names_are_valid_table_names():
    """Every name on the lists could be written as a table name (else listing it protects nothing)."""
    import re

    from acrrules.catalog import NFT_HOST_TABLES, NFT_KEYWORDS, NFT_TOOL_TABLES
    from acrrules.validate import ecma_pattern, registry_schema

    pattern = ecma_pattern(registry_schema()["$defs"]["netfilterName"]["pattern"])
    for name in NFT_HOST_TABLES | NFT_TOOL_TABLES:
        assert re.fullmatch(pattern, name) and name not in NFT_KEYWORDS, name


@pytest.mark.parametrize("command", ["validate", "render"])
def test_standalone_without_resolvers_warns_located_that_dns_is_blocked(tmp_path, command):
    settings = "{mode: standalone}"
    spec, out, r = _render_cli(tmp_path, settings, command=command)
    assert r.code == 0, r.err
    line = spec.read_text(encoding="utf-8").splitlines().index(f"  nftables: {settings}") + 1
    warnings = [w for w in r.err.splitlines() if "warning:" in w and "resolvers" in w]
    assert len(warnings) == 1 and warnings[0].startswith(f"{spec}:{line}:"), r.err
    assert "DNS" in warnings[0] and "targets.nftables.resolvers" in warnings[0]
    for quiet in ("{mode: standalone, resolvers: [192.0.2.53]}", "{mode: include}"):
        _, _, r = _render_cli(tmp_path / str(len(quiet)), quiet, command=command)
        assert r.code == 0 and "resolvers" not in r.err, r.err
