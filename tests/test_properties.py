"""Property tests: random valid descriptions -> every output passes its real consumer.

Hypothesis draws descriptions (tests/strategies.py: all three clouds, 1-50
registries, every feature combination, sources, every target setting).  Each
one runs through the real pipeline (load, validate, plan, render) with the
newest real Service Tags file of its cloud, and its outputs are checked in
process against invariants computed by an oracle written here from the spec
(§2 endpoints, service tags, merged prefixes) and against the platform rules
(NSG priorities/names/descriptions, no duplicate rules).  The files are kept,
one folder per example, and then handed in batches to the real consumers:
`terraform fmt -check` and `tf_schema_check.py --strict` over all .tf files,
`arm_check.py` over all ARM templates, `k8s_check.py --strict` over the Kubernetes files, and for every nft / iptables example a
real load and reload in a fresh network namespace.  Finally the same examples
are rendered again in subprocesses with different PYTHONHASHSEED values and
must come out byte-identical.

Default: 25 examples (a few seconds).  More: ACRRULES_FUZZ_EXAMPLES=500.
"""
from __future__ import annotations

import functools
import hashlib
import ipaddress
import itertools
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings, strategies as st

from conftest import (CLOUD_FILE_KIND, REPO, latest_servicetags, need_root_netns, need_shared, need_tool,
                      run_validator, terraform_fmt_check)
from strategies import descriptions
import oracles
from oracles import SPEC_SUFFIXES, endpoints as oracle_endpoints, tags as oracle_tags

from acrrules import catalog, pipeline, plan as planning, servicetags
from acrrules.errors import InputError
from acrrules.targets import TARGETS

FUZZ_EXAMPLES = int(os.environ.get("ACRRULES_FUZZ_EXAMPLES", "25"))

# ---- the oracle: spec §2, spelled out here independently of acrrules.catalog ------------------

def oracle_prefixes(tags: set[str], raw_values: dict[str, list[str]]) -> dict[int, list]:
    nets = [ipaddress.ip_network(p) for t in tags for p in raw_values[t]]
    return {v: list(ipaddress.collapse_addresses(n for n in nets if n.version == v)) for v in (4, 6)}


# ---- reading outputs back ------------------------------------------------------------------

HOST_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
NSG_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def valid_fqdn(fqdn: str, cloud: str) -> bool:
    name = fqdn[2:] if fqdn.startswith("*.") else fqdn
    login, storage, mcr_pair = oracles.SPEC_SUFFIXES[cloud]
    suffixes = (login, storage[2:], *(m.lstrip("*.") for m in mcr_pair))
    return (len(name) <= 253 and all(HOST_LABEL.match(label) for label in name.split("."))
            and any(name == s or name.endswith("." + s) for s in suffixes))


def hcl_unquote(literal: str) -> str:
    """The value of an HCL quoted string as python-hcl2 8 returns it (quotes and escapes kept).

    Raises ValueError on an interpolation (`${`) or template directive (`%{`): a
    value written by acrrules must always be a plain literal.
    """
    if not (len(literal) >= 2 and literal[0] == '"' and literal[-1] == '"'):
        raise ValueError(f"not a quoted string: {literal!r}")
    s, out, i = literal[1:-1], [], 0
    simple = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\"}
    while i < len(s):
        c = s[i]
        if c == "\\":
            e = s[i + 1]
            if e in simple:
                out.append(simple[e])
                i += 2
            elif e in "uU":
                width = 4 if e == "u" else 8
                out.append(chr(int(s[i + 2:i + 2 + width], 16)))
                i += 2 + width
            else:
                raise ValueError(f"unknown escape \\{e} in {literal!r}")
        elif s.startswith(("$${", "%%{"), i):
            out.append(c + "{")
            i += 3
        elif s.startswith(("${", "%{"), i):
            raise ValueError(f"interpolation or directive in {literal!r}")
        else:
            out.append(c)
            i += 1
    return "".join(out)


def parse_tf(text: str) -> dict:
    import hcl2
    from hcl2.utils import SerializationOptions

    return hcl2.loads(text, serialization_options=SerializationOptions(with_comments=False, explicit_blocks=True))


def tf_resources(doc: dict) -> list[tuple[str, str, dict]]:
    """(type, label, body) of every resource, quotes removed from type and label."""
    out = []
    for block in doc.get("resource", []):
        for rtype, by_label in block.items():
            for label, body in by_label.items():
                out.append((hcl_unquote(rtype), hcl_unquote(label), body))
    return out


def nft_elements(text: str) -> dict[int, list]:
    """The prefixes in the filled `set acr_v4` / `set acr_v6` declarations of an nft file."""
    out = {4: [], 6: []}
    for m in re.finditer(r"type (ipv4_addr|ipv6_addr)\s+flags interval\s+elements = \{([^}]*)\}", text):
        version = 4 if m.group(1) == "ipv4_addr" else 6
        out[version] += [ipaddress.ip_network(e.strip()) for e in m.group(2).replace("\n", " ").split(",")
                         if e.strip()]
    return out


def ipset_elements(text: str) -> dict[int, list]:
    """The prefixes `add`ed to the live sets' temporary twins in ipset.rules."""
    out = {4: [], 6: []}
    for line in text.splitlines():
        parts = line.split()
        if parts[:1] == ["add"]:
            net = ipaddress.ip_network(parts[2])
            out[net.version].append(net)
    return out


# ---- the invariants, per example -------------------------------------------------------------

def check_endpoints(data: dict, rule_plan) -> None:
    got = [(e.kind, e.fqdn, e.registry, e.region) for e in rule_plan.endpoints]
    assert len(got) == len(set(got)), "duplicate endpoints"
    assert set(got) == oracle_endpoints(data)
    assert list(rule_plan.endpoints) == sorted(rule_plan.endpoints)
    cloud = data.get("cloud", "AzureCloud")
    for _, fqdn, _, _ in got:
        assert valid_fqdn(fqdn, cloud), fqdn


def check_azure_firewall(text: str, data: dict, tags: set[str]) -> None:
    resources = tf_resources(parse_tf(text))
    assert resources and {r[0] for r in resources} == {"azurerm_firewall_policy_rule_collection_group"}
    want_sources = data.get("sources", ["*"])
    fqdns, net_tags, group_names, group_priorities = [], [], [], []
    for _, _, body in resources:
        group_names.append(hcl_unquote(body["name"]))
        group_priorities.append(body["priority"])
        assert catalog.FIREWALL_PRIORITY_MIN <= body["priority"] <= catalog.FIREWALL_PRIORITY_MAX
        collections = body.get("application_rule_collection", []) + body.get("network_rule_collection", [])
        assert len({hcl_unquote(c["name"]) for c in collections}) == len(collections)
        for c in collections:
            names = [hcl_unquote(r["name"]) for r in c["rule"]]
            assert len(names) == len(set(names)), f"duplicate rule names in {c['name']}"
            for rule in c["rule"]:
                assert [hcl_unquote(s) for s in rule["source_addresses"]] == want_sources
                if "destination_fqdns" in rule:
                    rule_fqdns = [hcl_unquote(f) for f in rule["destination_fqdns"]]
                    assert len(rule_fqdns) == len(set(rule_fqdns)), "duplicate FQDN in a rule"
                    fqdns += rule_fqdns
                else:
                    net_tags += [hcl_unquote(t) for t in rule["destination_addresses"]]
    assert len(set(group_names)) == len(group_names) and len(set(group_priorities)) == len(group_priorities)
    assert sorted(set(fqdns)) == sorted({e[1] for e in oracle_endpoints(data)})
    if data.get("targets", {}).get("azure-firewall", {}).get("network_rules"):
        assert sorted(net_tags) == sorted(tags)
    else:
        assert net_tags == []


def check_nsg_rules(rules: list[dict], data: dict, tags: set[str], first_priority: int) -> None:
    """rules: name, description, priority, destination (one tag) of each security rule."""
    priorities = [r["priority"] for r in rules]
    assert len(set(priorities)) == len(priorities), "NSG priorities must be unique"
    assert all(catalog.NSG_PRIORITY_MIN <= p <= catalog.NSG_PRIORITY_MAX for p in priorities)
    cloud = data.get("cloud", catalog.DEFAULT_CLOUD)
    assert {r["destination"]: r["priority"] for r in rules} == \
        {r["destination"]: first_priority + oracles.nsg_slot(cloud, r["destination"]) for r in rules}, \
        "each rule at its tag's fixed slot"
    names = [r["name"] for r in rules]
    assert len(set(names)) == len(names)
    for r in rules:
        assert len(r["name"]) <= 80 and NSG_NAME.match(r["name"]), r["name"]
        assert len(r["description"]) <= 140, r["description"]
    assert sorted(r["destination"] for r in rules) == sorted(tags), "one rule per tag, each tag once"


def check_nsg_arm(text: str, data: dict, tags: set[str]) -> None:
    template = json.loads(text)
    rules = []
    for res in template["resources"]:
        p = res["properties"]
        assert "destinationAddressPrefixes" not in p
        rules.append({"name": re.search(r"'((?:[^']|'')*)'\)\]$", res["name"]).group(1).replace("''", "'"),
                      "description": p["description"], "priority": p["priority"],
                      "destination": p["destinationAddressPrefix"]})
    first = data.get("targets", {}).get("nsg-arm", {}).get("priority", 100)
    check_nsg_rules(rules, data, tags, first)


def check_nsg_tf(text: str, data: dict, tags: set[str]) -> None:
    resources = tf_resources(parse_tf(text))
    labels = [r[1] for r in resources]
    assert len(set(labels)) == len(labels)
    rules = [{"name": hcl_unquote(b["name"]), "description": hcl_unquote(b["description"]),
              "priority": b["priority"], "destination": hcl_unquote(b["destination_address_prefix"])}
             for t, _, b in resources if t == "azurerm_network_security_rule"]
    first = data.get("targets", {}).get("nsg-tf", {}).get("priority", 100)
    check_nsg_rules(rules, data, tags, first)


def check_squid(text: str, data: dict) -> None:
    """dstdomain: every endpoint (*.x as .x; descriptions cannot make one cover another); src: `sources`
    without the networks another covers; one http_access line of the ACLs named after the prefix."""
    prefix = data.get("targets", {}).get("squid", {}).get("acl_prefix", data.get("name", "acrrules"))
    acls: dict[tuple[str, str], list[str]] = {}
    for line in text.splitlines():
        words = line.split()
        if words[:1] == ["acl"]:
            acls.setdefault((words[1], words[2]), []).extend(words[3:])
    fqdns = {e[1] for e in oracle_endpoints(data)}
    assert acls.pop((f"{prefix}_dst", "dstdomain")) == sorted("." + f[2:] if f.startswith("*.") else f for f in fqdns)
    assert acls.pop((f"{prefix}_port", "port")) == ["443"]
    assert acls.pop((f"{prefix}_connect", "method")) == ["CONNECT"]
    sources = data.get("sources", ["*"])
    nets = {s: ipaddress.ip_network(s) for s in sources if s != "*"}
    kept = [s for s, n in nets.items() if not any(o != n and o.version == n.version and n.subnet_of(o)
                                                  for o in nets.values())]
    src = [f"{prefix}_src"] if kept else []
    if kept:
        got = acls.pop((f"{prefix}_src", "src"))
        assert got == sorted(kept, key=lambda s: (nets[s].version, int(nets[s].network_address)))
    assert acls == {}
    assert [line for line in text.splitlines() if line.startswith("http_access")] == \
        [" ".join(["http_access", "allow", f"{prefix}_connect", f"{prefix}_port", *src, f"{prefix}_dst"])]
def check_cilium(text: str, data: dict) -> None:
    """One policy of the chosen scope, named and selecting as the settings say, allowing exactly the
    endpoints' FQDNs (exact names as matchName, wildcards as matchPattern) plus DNS to the cluster DNS."""
    (policy,) = [d for d in yaml.safe_load_all(text) if d is not None]
    settings = data.get("targets", {}).get("cilium", {})
    name = data.get("name", catalog.DEFAULT_NAME)
    cluster = settings.get("scope") == "cluster"
    assert policy["kind"] == ("CiliumClusterwideNetworkPolicy" if cluster else "CiliumNetworkPolicy")
    assert policy["metadata"]["name"] == settings.get("name", name)
    assert policy["metadata"].get("namespace") == (None if cluster else settings.get("namespace", "default"))
    selector = settings.get("endpoint_selector", {f"acrrules/egress-{name}": "allow"})
    assert policy["spec"]["endpointSelector"] == ({"matchLabels": selector} if selector else {})
    dns, fqdn = policy["spec"]["egress"]
    assert dns["toEndpoints"] == [{"matchLabels": {**settings.get("dns_selector", {"k8s-app": "kube-dns"}),
                                                   "io.kubernetes.pod.namespace":
                                                       settings.get("dns_namespace", "kube-system")}}]
    assert {p["port"] for p in dns["toPorts"][0]["ports"]} == {"53"}
    selectors = [tuple(s.items())[0] for s in fqdn["toFQDNs"]]
    assert len(selectors) == len(set(selectors))
    assert {v for _, v in selectors} == {e[1] for e in oracle_endpoints(data)}
    assert all((k == "matchPattern") == v.startswith("*.") for k, v in selectors)
    assert fqdn["toPorts"] == [{"ports": [{"port": "443", "protocol": "TCP"}]}]


def check_calico(text: str, data: dict, want: dict[int, list]) -> None:
    """Network sets holding exactly the merged prefixes (each set one IP family, at most NETS_PER_SET nets,
    named and labelled from the settings) and one policy selecting the settings' pods that allows DNS and
    TCP 443 to the sets by their label."""
    from acrrules.targets.calico import NETS_PER_SET

    docs = [d for d in yaml.safe_load_all(text) if d is not None]
    *sets, policy = docs
    settings = data.get("targets", {}).get("calico", {})
    name = settings.get("name", data.get("name", catalog.DEFAULT_NAME))
    labels = {"app.kubernetes.io/managed-by": "acrrules", "acrrules/policy": name}
    got: dict[int, list] = {4: [], 6: []}
    for d in sets:
        assert d["kind"] == "GlobalNetworkSet" and d["metadata"]["labels"] == labels
        nets = [ipaddress.ip_network(n) for n in d["spec"]["nets"]]
        (version,) = {n.version for n in nets}
        assert re.fullmatch(rf"{re.escape(name)}-v{version}-\d\d+", d["metadata"]["name"])
        assert len(nets) <= NETS_PER_SET
        got[version] += nets
    assert got == want, "the sets' nets are not the merged prefixes"
    assert policy["kind"] == "GlobalNetworkPolicy" and policy["metadata"] == {"name": name, "labels": labels}
    spec = policy["spec"]
    selector = settings.get("selector", {f"acrrules/egress-{data.get('name', catalog.DEFAULT_NAME)}": "allow"})
    assert spec["selector"] == " && ".join(f"{k} == '{v}'" for k, v in sorted(selector.items()))
    assert spec.get("order") == settings.get("order")
    assert spec.get("namespaceSelector") == (f"projectcalico.org/name == '{settings['namespace']}'"
                                             if "namespace" in settings else None)
    assert spec["types"] == ["Egress"] and [r["protocol"] for r in spec["egress"]] == ["UDP", "TCP", "TCP"]
    assert spec["egress"][2]["destination"] == {"selector": f"acrrules/policy == '{name}'", "ports": [443]}


def check_prefixes(got: dict[int, list], want: dict[int, list]) -> None:
    for v in (4, 6):
        assert list(ipaddress.collapse_addresses(got[v])) == want[v], f"IPv{v} prefixes differ from the tags'"
        assert len(got[v]) == len(want[v]), f"IPv{v} prefixes are not the fewest CIDRs"


# ---- the test ---------------------------------------------------------------------------------

class Example:
    def __init__(self, folder: Path, data: dict, tags_path: Path | None, targets: list[str]):
        self.folder, self.data, self.tags_path, self.targets = folder, data, tags_path, targets
        self.files: dict[str, bytes] = {}


@pytest.fixture(scope="module")
def tags_by_cloud() -> dict[str, tuple[Path, servicetags.ServiceTagsFile, dict[str, list[str]]]]:
    """cloud -> (newest real Service Tags file, loaded, tag -> raw prefixes read straight from the JSON)."""
    need_shared()
    out = {}
    for cloud, kind in CLOUD_FILE_KIND.items():
        path = latest_servicetags(kind)
        raw = json.loads(path.read_text(encoding="utf-8"))
        out[cloud] = (path, servicetags.load(str(path)),
                      {v["name"]: v["properties"]["addressPrefixes"] for v in raw["values"]})
    return out


def _usable_locations(tags_by_cloud) -> dict[str, list[str]]:
    """Catalog locations that the Service Tags file of the cloud has both tags for."""
    out = {}
    for cloud, (_, tags_file, _) in tags_by_cloud.items():
        both = set(tags_file.regions(catalog.TAG_ACR)) & set(tags_file.regions(catalog.TAG_STORAGE))
        out[cloud] = sorted(set(catalog.CLOUDS[cloud].locations) & both)
    return out


# iptables names a user chain may not take: built-in chains, verdicts and target extensions.
IPTABLES_TAKEN = frozenset("""
    INPUT OUTPUT FORWARD PREROUTING POSTROUTING ACCEPT DROP RETURN QUEUE ERROR AUDIT CHECKSUM CLASSIFY
    CLUSTERIP CONNMARK CONNSECMARK CT DNAT DNPT DSCP ECN HL HMARK IDLETIMER LED LOG MARK MASQUERADE NETMAP
    NFLOG NFQUEUE NOTRACK RATEEST REDIRECT REJECT SECMARK SET SNAT SNPT SYNPROXY TCPMSS TCPOPTSTRIP TEE TOS
    TPROXY TRACE TTL ULOG
""".split())


@functools.cache
def _features(tags_path: Path) -> dict[str, list[str] | None]:
    """Each tag's networkFeatures, read straight from the file."""
    values = json.loads(tags_path.read_text(encoding="utf-8"))["values"]
    return {v["name"]: v["properties"].get("networkFeatures") for v in values}


def refusals(data: dict, tags_path: Path | None = None, tags: set[str] = frozenset()) -> dict[str, list[tuple]]:
    """target -> the keys it may point at when it refuses this valid description (platform limits)."""
    out = {}
    if tags_path is not None and data.get("targets", {}).get("azure-firewall", {}).get("network_rules"):
        features = _features(tags_path)
        if any(features[t] is not None and "FW" not in features[t] for t in tags):   # e.g. China, USGovIowa
            out["azure-firewall"] = [("targets", "azure-firewall", "network_rules")]
    sources = data.get("sources", [])
    v6 = [("sources", i) for i, s in enumerate(sources) if s != "*" and ipaddress.ip_network(s).version == 6]
    if v6:  # Azure Firewall takes IPv4 sources only
        out["azure-firewall"] = out.get("azure-firewall", []) + v6
    mapped = ipaddress.ip_network("::ffff:0:0/96")   # squid matches IPv4 clients in this form
    reaching = [("sources", i) for i, s in enumerate(sources) if s != "*"
                and ipaddress.ip_network(s).version == 6 and ipaddress.ip_network(s).overlaps(mapped)]
    if reaching:
        out["squid"] = reaching
    if data.get("targets", {}).get("iptables", {}).get("chain") in IPTABLES_TAKEN:
        out["iptables"] = [("targets", "iptables", "chain")]
    return out


def render_example(folder: Path, data: dict, tags_by_cloud) -> Example:
    """Write the description, render every target through the real pipeline, check invariants in process."""
    folder.mkdir()
    spec = folder / "description.yaml"
    spec.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    cloud = data.get("cloud", "AzureCloud")
    tags_path, tags_file, raw_values = tags_by_cloud[cloud]
    loaded = pipeline.load_description(str(spec), tags_file)
    rule_plan = planning.build(loaded.description, tags_file)
    check_endpoints(data, rule_plan)
    tags = oracle_tags(data, set(raw_values))
    assert {t.tag for t in rule_plan.tags} == tags

    targets, files = [], {}
    allowed_refusals = refusals(data, tags_path, tags)
    for target in TARGETS:
        try:
            files.update(pipeline.render(rule_plan, [target], loaded.doc))
            targets.append(target)
        except InputError as refused:
            # Only where a platform cannot take the description, and then located at the reason.
            keys = allowed_refusals.get(target)
            assert keys, f"{target} refused a valid description: {refused.lines()}"
            at = tuple(f"{spec}:{m.line}:{m.column}: " for m in map(loaded.doc.mark, keys))
            assert all(line.startswith(at) for line in refused.lines()), (keys, refused.lines())
            assert target != "azure-firewall" or not data.get("targets", {}).get("azure-firewall", {}).get(
                "network_rules") or any("FW" in line or "IPv6" in line for line in refused.lines())
    ex = Example(folder, data, tags_path, targets)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
        ex.files[name] = text.encode("utf-8")

    want_prefixes = oracle_prefixes(tags, raw_values)
    for name, text in files.items():
        if name == "azure-firewall.tf":
            check_azure_firewall(text, data, tags)
        elif name == "nsg.json":
            check_nsg_arm(text, data, tags)
        elif name == "nsg.tf":
            check_nsg_tf(text, data, tags)
        elif name.endswith(".nft"):
            check_prefixes(nft_elements(text), want_prefixes)
        elif name == "ipset.rules":
            check_prefixes(ipset_elements(text), want_prefixes)
        elif name == "acrrules-squid.conf":
            check_squid(text, data)
        elif name == "no_proxy.txt":
            assert text == (",".join(oracles.no_proxy(data)) + "\n" if oracles.no_proxy(data) else "")
        elif name == "edl-fqdn.txt":
            assert text == "".join(f"{fqdn}\n" for fqdn in sorted({e[1] for e in oracle_endpoints(data)}))
        elif name in ("edl-ipv4.txt", "edl-ipv6.txt"):
            version = 4 if name == "edl-ipv4.txt" else 6
            entries = [ipaddress.ip_network(line) for line in text.splitlines()]
            assert entries == want_prefixes[version], f"{name}: not the merged prefixes of the tags"
            if "acrrules.nft" in files:
                assert entries == nft_elements(files["acrrules.nft"])[version], f"{name} differs from the nft set"
        elif name == "cilium.yaml":
            check_cilium(text, data)
        elif name == "calico.yaml":
            check_calico(text, data, want_prefixes)
        if name.endswith((".nft", ".rules")):
            check_no_duplicate_rules(text)
    return ex


def check_no_duplicate_rules(text: str) -> None:
    """No rule twice in a chain (nft: per chain block; iptables-restore: -A lines; ipset: add lines)."""
    chain, seen = None, set()
    for line in text.splitlines():
        stripped = line.strip()
        if re.match(r"chain \S+ \{$", stripped):
            chain = stripped
        elif stripped.startswith(("-A ", "add ")) or (chain and stripped and not stripped.startswith(("#", "}"))
                                                       and not stripped.startswith(("type ", "policy "))):
            key = (chain if not stripped.startswith(("-A ", "add ")) else None, stripped)
            assert key not in seen, f"duplicate rule: {stripped}"
            seen.add(key)
        if stripped == "}":
            chain = None


def test_random_descriptions_pass_the_real_consumers(tmp_path_factory, tags_by_cloud):
    need_tool("terraform")
    need_root_netns()
    need_tool("nft", "iptables-restore", "ip6tables-restore", "ipset", "squid")
    root = tmp_path_factory.mktemp("fuzz")
    locations = _usable_locations(tags_by_cloud)
    examples: list[Example] = []
    numbers = itertools.count()  # failing examples (while shrinking) keep their folders: never reuse one

    @settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(st.data())
    def one(draw):
        data = draw.draw(descriptions(locations))
        examples.append(render_example(root / f"ex{next(numbers):04d}", data, tags_by_cloud))

    one()
    assert examples
    run_consumers(root, examples)
    check_hash_seed_independence(root, examples)


def run_consumers(root: Path, examples: list[Example]) -> None:
    tf = sorted(root.glob("*/*.tf"))
    arm = sorted(root.glob("*/nsg.json"))
    if tf:
        r = terraform_fmt_check(*tf)
        assert r.returncode == 0, r.stdout + r.stderr
        r = run_validator("tf_schema_check.py", "--strict", *tf)
        assert r.returncode == 0, r.stdout + r.stderr
    if arm:
        r = run_validator("arm_check.py", *arm)
        assert r.returncode == 0, r.stdout + r.stderr
    for conf in sorted(root.glob("*/acrrules-squid.conf")):   # one at a time: the ACL names repeat
        r = run_validator("squid_check.sh", conf, python=False)
        assert r.returncode == 0 and "WARNING" not in r.stdout, r.stdout + r.stderr
    kubernetes = sorted(root.glob("*/cilium.yaml")) + sorted(root.glob("*/calico.yaml"))
    if kubernetes:   # the real CRD schemas
        r = run_validator("k8s_check.py", "--strict", *kubernetes)
        assert r.returncode == 0, r.stdout + r.stderr
    netfilter_loads(examples)


# Loads every example's nft file and iptables files for real, each in its own fresh network
# namespace, twice (the reload must work the same), and prints one line per failure.
NETFILTER_SCRIPT = textwrap.dedent("""\
    set -u
    for ex in "$@"; do
      dir=${ex%:*}; modes=${ex##*:}; nft_mode=${modes%,*}; ipt_mode=${modes#*,}
      if [ -f "$dir/acrrules.nft" ]; then
        unshare -n sh -c 'nft -f "$1" && nft -f "$1"' sh "$dir/acrrules.nft" 2>&1 | sed "s|^|$dir nft: |"
        [ "${PIPESTATUS[0]}" -eq 0 ] || echo "FAIL $dir/acrrules.nft"
      fi
      if [ -f "$dir/ipset.rules" ]; then
        if [ "$ipt_mode" = include ]; then flags=--noflush; else flags=; fi
        unshare -n sh -c '
          set -e; d=$1; f=$2
          for round in 1 2; do
            ipset restore -f "$d/ipset.rules"
            iptables-restore $f "$d/iptables.rules"
            ip6tables-restore $f "$d/ip6tables.rules"
          done' sh "$dir" "$flags" 2>&1 | sed "s|^|$dir iptables: |"
        [ "${PIPESTATUS[0]}" -eq 0 ] || echo "FAIL $dir/iptables"
      fi
    done
""")


def netfilter_loads(examples: list[Example]) -> None:
    args = []
    for ex in examples:
        t = ex.data.get("targets", {})
        args.append(f"{ex.folder}:{t.get('nftables', {}).get('mode', 'include')},"
                    f"{t.get('iptables', {}).get('mode', 'include')}")
    r = subprocess.run(["bash", "-c", NETFILTER_SCRIPT, "netfilter", *args], capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0 and "FAIL" not in r.stdout, r.stdout + r.stderr


# Renders every example again through the CLI's pipeline (file paths, Service Tags file loaded
# from disk) and prints the sha256 of each output.
RERENDER = textwrap.dedent("""\
    import hashlib, json, sys
    from acrrules import pipeline
    out = {}
    for folder, tags, targets in json.loads(sys.argv[1]):
        files = pipeline.run(folder + "/description.yaml", targets, tags).files
        out[folder] = {n: hashlib.sha256(t.encode("utf-8")).hexdigest() for n, t in files.items()}
    print(json.dumps(out))
""")


def check_hash_seed_independence(root: Path, examples: list[Example]) -> None:
    want = {str(ex.folder): {n: hashlib.sha256(b).hexdigest() for n, b in ex.files.items()} for ex in examples}
    job = json.dumps([[str(ex.folder), str(ex.tags_path), ex.targets] for ex in examples])
    for seed in ("0", "1", "4242"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        r = subprocess.run([sys.executable, "-c", RERENDER, job], capture_output=True, text=True, env=env,
                           cwd=REPO, timeout=600)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout) == want, f"output differs under PYTHONHASHSEED={seed}"
