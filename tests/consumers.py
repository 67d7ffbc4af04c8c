"""The consumers of every output: one registry, keyed by target id, that the tests iterate over.

For each target of acrrules.targets.TARGETS, CONSUMERS says which files it writes (and which of them
come from the Service Tags file, which carry no header), and for each file:

- `read`: the file parsed into data (HCL, JSON, nft set elements, ipset lines, iptables-restore
  tables, squid.conf directives, YAML documents, plain lines), for the invariant checks;
- `checker`: the real consumer that must accept it (terraform fmt + tf_schema_check.py, arm_check.py,
  nft / ipset / iptables-restore loads in fresh network namespaces, squid_check.sh, k8s_check.py
  --strict, ...), run on a batch of files by `check()`;
- `oracle`: its invariants, computed from the spec independently of acrrules (tests/test_properties.py);
- `format`, `reaches`, `key_fields`: how tests/test_hostile_strings.py compares its structure with a
  harmless render's, and which hostile fields may reach its data (anything else may change comments only);
- `spoil`: a broken copy its checker must reject (tests/test_consumers.py), so no checker is vacuous.

A target also says the settings the hostile-string test sets for it (`hostile_fields`,
`hostile_settings`) and where a valid description may be refused by it (`refusals`, the platform limits
the property test allows).  Adding a target: one `Consumer` entry here (and its own test file); the
tests that run every output through its consumer, or list the outputs, read them from here.
"""

from __future__ import annotations

import ipaddress
import json
import re
import subprocess
import textwrap
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import oracles
import yaml
from conftest import REQUIRE_TOOLS, need_root_netns, need_tool, run_validator, terraform_fmt_check

from acrrules import catalog
from acrrules.escape import comment, squid_comment, yaml_comment
from acrrules.targets import TARGETS

# ---- readers: one output file -> data ---------------------------------------------------------


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
                out.append(chr(int(s[i + 2 : i + 2 + width], 16)))
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
        out[version] += [ipaddress.ip_network(e.strip()) for e in m.group(2).replace("\n", " ").split(",") if e.strip()]
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


def code_lines(text: str) -> list[str]:
    """The lines of a `#`-comment language that are not comments."""
    return [line for line in text.splitlines() if not line.lstrip().startswith("#")]


def restore_tables(text: str) -> dict[str, dict]:
    """An iptables-restore file: table -> {"chains": {chain: policy}, "rules": [rule lines]}."""
    tables: dict[str, dict] = {}
    current = None
    for line in code_lines(text):
        s = line.strip()
        if not s:
            continue
        if s.startswith("*"):
            current = tables.setdefault(s[1:], {"chains": {}, "rules": []})
        elif s == "COMMIT":
            current = None
        elif s.startswith(":"):
            name, policy = s[1:].split()[:2]
            current["chains"][name] = policy
        else:
            current["rules"].append(s)
    return tables


def squid_directives(text: str) -> list[list[str]]:
    """The directives of a squid.conf fragment, each as its words (comments and blank lines dropped)."""
    return [line.split() for line in code_lines(text) if line.strip()]


def plain_lines(text: str) -> list[str]:
    return text.splitlines()


def plain_networks(text: str) -> list:
    return [ipaddress.ip_network(line) for line in text.splitlines()]


def comma_list(text: str) -> list[str]:
    return text.rstrip("\n").split(",") if text else []


YAML_LOADERS = [yaml.SafeLoader] + ([yaml.CSafeLoader] if hasattr(yaml, "CSafeLoader") else [])


def yaml_reads(text: str):
    """What PyYAML's pure-Python reader and libyaml (when present) make of `text`: they must agree."""
    docs = [list(yaml.load_all(text, Loader=loader)) for loader in YAML_LOADERS]
    assert all(d == docs[0] for d in docs), docs
    return docs[0]


def yaml_documents(text: str) -> list:
    """Every document of a YAML file, as PyYAML and libyaml read it (they must agree)."""
    return [d for d in yaml_reads(text) if d is not None]


# ---- structure, for the hostile-string test ---------------------------------------------------

# ARM: a string starting with '[' and ending with ']' is an expression; '[[' escapes it (arm_check.py's rule).
ARM_EXPRESSION = re.compile(r"^\[([^\[].*)?\]$", re.S)


def arm_reads(value: str) -> str:
    """What ARM makes of a JSON string: the literal, or an error for an expression."""
    if value.startswith("[") and value.endswith("]"):
        if value.startswith("[["):
            return value[1:]
        raise AssertionError(f"ARM would evaluate {value!r} as an expression")
    return value


def arm_expression_literals(expression: str) -> list[str]:
    """The single-quoted string literals of an ARM expression, unescaped ('' -> ')."""
    assert ARM_EXPRESSION.match(expression), expression
    out, i, body = [], 0, expression[1:-1]
    while i < len(body):
        if body[i] == "'":
            j, chars = i + 1, []
            while True:
                if body[j] == "'" and body[j + 1 : j + 2] == "'":
                    chars.append("'")
                    j += 2
                elif body[j] == "'":
                    break
                else:
                    chars.append(body[j])
                    j += 1
            out.append("".join(chars))
            i = j + 1
        else:
            i += 1
    return out


def readable(value: str) -> str:
    """What a value becomes in an output: lone surrogates (undecodable file-name bytes) as U+FFFD."""
    return re.sub("[\ud800-\udfff]", "\ufffd", value)


def shape(value, arm: bool = False):
    """The structure of parsed output: keys, list lengths and which strings are ARM expressions."""
    if isinstance(value, dict):
        return {k: shape(v, arm) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v, arm) for v in value]
    if isinstance(value, str):
        return "expression" if arm and ARM_EXPRESSION.match(value) else "string"
    return type(value).__name__


def tf_strings(value) -> list[str]:
    """Every quoted string of a python-hcl2 document, decoded (raises on an interpolation)."""
    if isinstance(value, dict):  # keys are attribute names, or quoted block labels
        return [s for k, v in value.items() for s in (tf_strings(k) if k.startswith('"') else []) + tf_strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in tf_strings(v)]
    if isinstance(value, str) and value.startswith('"'):
        return [hcl_unquote(value)]
    if isinstance(value, str):  # the only unquoted values the templates write
        assert value == "string" or re.fullmatch(r"\$\{var\.[a-z_]+\}", value), f"unexpected expression {value!r}"
    return []


def arm_strings(value) -> list[str]:
    """Every string value of an ARM template as ARM reads it: an expression's literals, else the literal."""
    if isinstance(value, dict):
        return [s for v in value.values() for s in arm_strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in arm_strings(v)]
    if isinstance(value, str):
        return arm_expression_literals(value) if ARM_EXPRESSION.match(value) else [arm_reads(value)]
    return []


def yaml_strings(value) -> list[str]:
    """Every string of parsed YAML, keys included."""
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in yaml_strings(k) + yaml_strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in yaml_strings(v)]
    return [value] if isinstance(value, str) else []


def rename_keys(value, names: dict):
    """Parsed YAML with the mapping keys in `names` renamed (a label key is both a key and a value here)."""
    if isinstance(value, dict):
        return {names.get(k, k): rename_keys(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [rename_keys(v, names) for v in value]
    return value


def line_shape(lines: list[str]) -> list[int]:
    """A line format's structure: the number of lines and of words on each."""
    return [len(line.split()) for line in lines]


@dataclass(frozen=True)
class HostileCase:
    """One hostile value in one field of the description (tests/test_hostile_strings.py)."""

    field: str
    value: str
    benign: str  # the field's harmless value, that the baseline render has


def _arm_extra(doc: dict, text: str, case: HostileCase) -> None:
    for res in doc["resources"]:
        p = res["properties"]
        for v in [p["description"], p.get("sourceAddressPrefix", "x"), *p.get("sourceAddressPrefixes", [])]:
            arm_reads(v)
        *_, rule = arm_expression_literals(res["name"])
        assert rule.startswith("acrrules-")
    if case.field == "source":
        assert arm_reads(doc["resources"][0]["properties"]["sourceAddressPrefix"]) == readable(case.value)
    if case.field == "source_name":
        assert readable(case.value) in doc["metadata"]["description"]


@dataclass(frozen=True)
class Format:
    """An output language as the hostile-string test compares it: `structure` is the file's data with
    comments dropped, `shape` what must not change, `strings` the decoded strings a value can reach."""

    name: str
    structure: Callable[[str], Any]
    shape: Callable[[Any], Any]
    strings: Callable[[Any], list[str]]
    extra: Callable[[Any, str, HostileCase], None] = lambda structure, text, case: None


HCL = Format("HCL", parse_tf, shape, tf_strings)
ARM = Format("ARM JSON", json.loads, lambda doc: shape(doc, arm=True), arm_strings, _arm_extra)
YAML = Format("YAML", yaml_documents, shape, yaml_strings)
LINES = Format("lines", code_lines, line_shape, list)  # nft, iptables-restore, ipset, squid.conf
PLAIN = Format("plain lines", plain_lines, line_shape, list)  # no comment syntax: every line is data


# ---- the real consumers ------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Checker:
    """A real consumer: `run` asserts that it accepts every file of a batch."""

    name: str
    run: Callable[[list[Path]], None]
    tools: tuple[str, ...] = ()
    root_netns: bool = False  # loads into the kernel, in fresh network namespaces

    def need(self) -> None:
        need_tool(*self.tools)
        if self.root_netns:
            need_root_netns()

    def __repr__(self) -> str:
        return self.name


def _terraform(paths: list[Path]) -> None:
    r = terraform_fmt_check(*paths)
    assert r.returncode == 0, r.stdout + r.stderr
    r = run_validator("tf_schema_check.py", "--strict", *paths)
    assert r.returncode == 0 and " 0 error(s)" in r.stdout, r.stdout + r.stderr


def _arm(paths: list[Path]) -> None:
    r = run_validator("arm_check.py", *paths)
    assert r.returncode == 0, r.stdout + r.stderr


# Loads each nft file in its own fresh network namespace, twice (the reload must work the same).
NFT_LOADS = textwrap.dedent("""\
    for f in "$@"; do
      unshare -n sh -c 'nft -f "$1" && nft -f "$1"' sh "$f" 2>&1 | sed "s|^|$f: |"
      [ "${PIPESTATUS[0]}" -eq 0 ] || echo "FAIL $f"
    done
""")


def _nft(paths: list[Path]) -> None:
    r = subprocess.run(["bash", "-c", NFT_LOADS, "nft", *map(str, paths)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0 and "FAIL" not in r.stdout, r.stdout + r.stderr


# Loads each directory's ipset.rules, iptables.rules and ip6tables.rules in its own fresh network
# namespace, twice, with --noflush for include-mode files (as their headers say to load them).
IPTABLES_LOADS = textwrap.dedent("""\
    for arg in "$@"; do
      dir=${arg%:*}; mode=${arg##*:}
      if [ "$mode" = include ]; then flags=--noflush; else flags=; fi
      unshare -n sh -c '
        set -e; d=$1; f=$2
        for round in 1 2; do
          ipset restore -f "$d/ipset.rules"
          iptables-restore $f "$d/iptables.rules"
          ip6tables-restore $f "$d/ip6tables.rules"
        done' sh "$dir" "$flags" 2>&1 | sed "s|^|$dir: |"
      [ "${PIPESTATUS[0]}" -eq 0 ] || echo "FAIL $dir"
    done
""")


def iptables_mode(text: str) -> str:
    """standalone when the file owns the filter table's OUTPUT chain (its policy), else include."""
    return "standalone" if "OUTPUT" in restore_tables(text).get("filter", {}).get("chains", {}) else "include"


def _iptables(paths: list[Path]) -> None:
    args = []
    for d in sorted({p.parent for p in paths}):
        modes = {iptables_mode((d / n).read_text(encoding="utf-8")) for n in ("iptables.rules", "ip6tables.rules")}
        assert (d / "ipset.rules").is_file() and len(modes) == 1, (d, modes)
        args.append(f"{d}:{modes.pop()}")
    r = subprocess.run(["bash", "-c", IPTABLES_LOADS, "iptables", *args], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0 and "FAIL" not in r.stdout, r.stdout + r.stderr


def _squid(paths: list[Path]) -> None:
    for conf in paths:  # one at a time: every file defines the same ACL names
        r = run_validator("squid_check.sh", conf, python=False)
        assert r.returncode == 0 and "WARNING" not in r.stdout and "FAIL" not in r.stdout, r.stdout + r.stderr


CEL_NOTE = "CEL rules (x-kubernetes-validations) not evaluated"


def _k8s(paths: list[Path]) -> None:
    r = run_validator("k8s_check.py", "--strict", *paths)
    assert r.returncode == 0, r.stdout + r.stderr
    if REQUIRE_TOOLS:
        assert CEL_NOTE not in r.stderr, "install the test extra: common-expression-language evaluates Calico's CEL"


# One host name (PAN-OS, FortiGate: a wildcard only as a leading `*.` of its own).
HOST_NAME = re.compile(r"([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
ENV_STRING_MAX = 131072  # Linux's MAX_ARG_STRLEN: one NAME=value string, its NUL included


def plain_lines(path: Path) -> list[str]:
    """The entries of a plain list: ASCII, newline-terminated, no blank or comment line, no space."""
    data = path.read_bytes()
    assert data.isascii() and b"\r" not in data and b"\t" not in data and b" " not in data, path
    assert data == b"" or data.endswith(b"\n"), path
    out = data.decode("ascii").split("\n")[:-1] if data else []
    assert all(line and not line.startswith("#") for line in out), path
    return out


def _lists(paths: list[Path]) -> None:
    """No installable consumer reads these (PAN-OS, FortiGate): their documented format, line by line."""
    for path in paths:
        entries = plain_lines(path)
        for entry in entries:
            assert len(entry) <= 255, (path, entry)  # PAN-OS: 255 characters per entry
            if "/" in entry:  # an IP list: networks in canonical form, one family per file
                assert str(ipaddress.ip_network(entry)) == entry, (path, entry)
            else:
                assert HOST_NAME.fullmatch(entry.removeprefix("*.")), (path, entry)
        assert len({ipaddress.ip_network(e).version for e in entries if "/" in e}) <= 1, path
        assert all("/" in e for e in entries) or not any("/" in e for e in entries), path


def _no_proxy(paths: list[Path]) -> None:
    """Python's NO_PROXY reader (urllib, also used by requests): one line of host names, each bypassed."""
    from urllib.request import proxy_bypass_environment

    for path in paths:
        data = path.read_bytes()
        assert data == b"" or (data.endswith(b"\n") and data.count(b"\n") == 1), path
        value = plain_lines(path)[0] if data else ""
        assert len("NO_PROXY=") + len(value) + 1 <= ENV_STRING_MAX, path
        hosts = value.split(",") if value else []
        assert all(HOST_NAME.fullmatch(h) for h in hosts) and len(set(hosts)) == len(hosts), (path, hosts)
        assert all(proxy_bypass_environment(h, {"no": value}) for h in hosts), path
        assert not proxy_bypass_environment("acrrules-unlisted.invalid", {"no": value}), path


TERRAFORM = Checker("terraform fmt + tf_schema_check.py --strict", _terraform, ("terraform",))
ARM_CHECK = Checker("arm_check.py", _arm)
NFT = Checker("nft -f, twice, in a fresh network namespace", _nft, ("nft",), root_netns=True)
IPTABLES = Checker(
    "ipset restore + iptables-restore + ip6tables-restore, twice, in a fresh network namespace",
    _iptables,
    ("ipset", "iptables-restore", "ip6tables-restore"),
    root_netns=True,
)
SQUID = Checker("squid_check.sh (squid -k parse), one file at a time", _squid, ("squid",))
K8S = Checker("k8s_check.py --strict (the real CRD schemas)", _k8s)
PLAIN_LISTS = Checker("the plain-list format of PAN-OS and FortiGate (no installable consumer)", _lists)
NO_PROXY = Checker("urllib's NO_PROXY reader", _no_proxy)


# ---- the oracle: invariants of each file, from the spec ----------------------------------------


@dataclass
class OracleCase:
    """One rendered example of the property test: the description, the oracle's tags and merged
    prefixes for it, and every file rendered (name -> text)."""

    data: dict
    tags: set[str]
    prefixes: dict[int, list]
    files: dict[str, str]

    def read(self, name: str):
        return FILES[name].read(self.files[name])

    def settings(self, target: str) -> dict:
        return self.data.get("targets", {}).get(target, {})


NSG_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def check_azure_firewall(doc: dict, data: dict, tags: set[str]) -> None:
    resources = tf_resources(doc)
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
    assert sorted(set(fqdns)) == sorted({e[1] for e in oracles.endpoints(data)})
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
    assert {r["destination"]: r["priority"] for r in rules} == {
        r["destination"]: first_priority + oracles.nsg_slot(cloud, r["destination"]) for r in rules
    }, "each rule at its tag's fixed slot"
    names = [r["name"] for r in rules]
    assert len(set(names)) == len(names)
    for r in rules:
        assert len(r["name"]) <= 80 and NSG_NAME.match(r["name"]), r["name"]
        assert len(r["description"]) <= 140, r["description"]
    assert sorted(r["destination"] for r in rules) == sorted(tags), "one rule per tag, each tag once"


def check_nsg_arm(template: dict, data: dict, tags: set[str]) -> None:
    rules = []
    for res in template["resources"]:
        p = res["properties"]
        assert "destinationAddressPrefixes" not in p
        rules.append(
            {
                "name": re.search(r"'((?:[^']|'')*)'\)\]$", res["name"]).group(1).replace("''", "'"),
                "description": p["description"],
                "priority": p["priority"],
                "destination": p["destinationAddressPrefix"],
            }
        )
    first = data.get("targets", {}).get("nsg-arm", {}).get("priority", 100)
    check_nsg_rules(rules, data, tags, first)


def check_nsg_tf(doc: dict, data: dict, tags: set[str]) -> None:
    resources = tf_resources(doc)
    labels = [r[1] for r in resources]
    assert len(set(labels)) == len(labels)
    rules = [
        {
            "name": hcl_unquote(b["name"]),
            "description": hcl_unquote(b["description"]),
            "priority": b["priority"],
            "destination": hcl_unquote(b["destination_address_prefix"]),
        }
        for t, _, b in resources
        if t == "azurerm_network_security_rule"
    ]
    first = data.get("targets", {}).get("nsg-tf", {}).get("priority", 100)
    check_nsg_rules(rules, data, tags, first)


def check_terraform_versions(doc: dict) -> None:
    """versions.tf makes the directory a module: one terraform block requiring hashicorp/azurerm."""
    (block,) = doc["terraform"]
    assert hcl_unquote(block["required_version"]).startswith(">=")
    (providers,) = block["required_providers"]
    assert hcl_unquote(providers["azurerm"]["source"]) == "hashicorp/azurerm"


def check_squid(directives: list[list[str]], data: dict) -> None:
    """dstdomain: every endpoint (*.x as .x; descriptions cannot make one cover another); src: `sources`
    without the networks another covers; one http_access line of the ACLs named after the prefix."""
    prefix = data.get("targets", {}).get("squid", {}).get("acl_prefix", data.get("name", "acrrules"))
    acls: dict[tuple[str, str], list[str]] = {}
    for words in directives:
        if words[:1] == ["acl"]:
            acls.setdefault((words[1], words[2]), []).extend(words[3:])
    fqdns = {e[1] for e in oracles.endpoints(data)}
    assert acls.pop((f"{prefix}_dst", "dstdomain")) == sorted("." + f[2:] if f.startswith("*.") else f for f in fqdns)
    assert acls.pop((f"{prefix}_port", "port")) == ["443"]
    assert acls.pop((f"{prefix}_connect", "method")) == ["CONNECT"]
    sources = data.get("sources", ["*"])
    nets = {s: ipaddress.ip_network(s) for s in sources if s != "*"}
    kept = [
        s
        for s, n in nets.items()
        if not any(o != n and o.version == n.version and n.subnet_of(o) for o in nets.values())
    ]
    src = [f"{prefix}_src"] if kept else []
    if kept:
        got = acls.pop((f"{prefix}_src", "src"))
        assert got == sorted(kept, key=lambda s: (nets[s].version, int(nets[s].network_address)))
    assert acls == {}
    assert [words for words in directives if words[0] == "http_access"] == [
        ["http_access", "allow", f"{prefix}_connect", f"{prefix}_port", *src, f"{prefix}_dst"]
    ]


def check_cilium(docs: list, data: dict) -> None:
    """One policy of the chosen scope, named and selecting as the settings say, allowing exactly the
    endpoints' FQDNs (exact names as matchName, wildcards as matchPattern) plus DNS to the cluster DNS."""
    (policy,) = docs
    settings = data.get("targets", {}).get("cilium", {})
    name = data.get("name", catalog.DEFAULT_NAME)
    cluster = settings.get("scope") == "cluster"
    assert policy["kind"] == ("CiliumClusterwideNetworkPolicy" if cluster else "CiliumNetworkPolicy")
    assert policy["metadata"]["name"] == settings.get("name", name)
    assert policy["metadata"].get("namespace") == (None if cluster else settings.get("namespace", "default"))
    selector = settings.get("endpoint_selector", {f"acrrules/egress-{name}": "allow"})
    assert policy["spec"]["endpointSelector"] == ({"matchLabels": selector} if selector else {})
    dns, fqdn = policy["spec"]["egress"]
    assert dns["toEndpoints"] == [
        {
            "matchLabels": {
                **settings.get("dns_selector", {"k8s-app": "kube-dns"}),
                "io.kubernetes.pod.namespace": settings.get("dns_namespace", "kube-system"),
            }
        }
    ]
    assert {p["port"] for p in dns["toPorts"][0]["ports"]} == {"53"}
    selectors = [tuple(s.items())[0] for s in fqdn["toFQDNs"]]
    assert len(selectors) == len(set(selectors))
    assert {v for _, v in selectors} == {e[1] for e in oracles.endpoints(data)}
    assert all((k == "matchPattern") == v.startswith("*.") for k, v in selectors)
    assert fqdn["toPorts"] == [{"ports": [{"port": "443", "protocol": "TCP"}]}]


def check_calico(docs: list, data: dict, want: dict[int, list]) -> None:
    """Network sets holding exactly the merged prefixes (each set one IP family, at most NETS_PER_SET nets,
    named and labelled from the settings) and one policy selecting the settings' pods that allows DNS and
    TCP 443 to the sets by their label."""
    from acrrules.targets.calico import NETS_PER_SET

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
    assert spec.get("namespaceSelector") == (
        f"projectcalico.org/name == '{settings['namespace']}'" if "namespace" in settings else None
    )
    assert spec["types"] == ["Egress"] and [r["protocol"] for r in spec["egress"]] == ["UDP", "TCP", "TCP"]
    # global(): only the GlobalNetworkSets, never a pod someone labels like them (test_kubernetes.py)
    assert spec["egress"][2]["destination"] == {
        "selector": f"acrrules/policy == '{name}'",
        "namespaceSelector": "global()",
        "ports": [443],
    }


def check_prefixes(got: dict[int, list], want: dict[int, list]) -> None:
    for v in (4, 6):
        assert list(ipaddress.collapse_addresses(got[v])) == want[v], f"IPv{v} prefixes differ from the tags'"
        assert len(got[v]) == len(want[v]), f"IPv{v} prefixes are not the fewest CIDRs"


def check_no_duplicate_rules(text: str) -> None:
    """No rule twice in a chain (nft: per chain block; iptables-restore: -A lines; ipset: add lines)."""
    chain, seen = None, set()
    for line in text.splitlines():
        stripped = line.strip()
        if re.match(r"chain \S+ \{$", stripped):
            chain = stripped
        elif stripped.startswith(("-A ", "add ")) or (
            chain and stripped and not stripped.startswith(("#", "}")) and not stripped.startswith(("type ", "policy "))
        ):
            key = (chain if not stripped.startswith(("-A ", "add ")) else None, stripped)
            assert key not in seen, f"duplicate rule: {stripped}"
            seen.add(key)
        if stripped == "}":
            chain = None


def _nft_oracle(case: OracleCase, name: str) -> None:
    text = case.files[name]
    check_prefixes(case.read(name), case.prefixes)
    check_no_duplicate_rules(text)
    standalone = any("policy drop;" in line for line in code_lines(text))
    assert standalone == (case.settings("nftables").get("mode", "include") == "standalone"), "not the mode asked for"


def _ipset_oracle(case: OracleCase, name: str) -> None:
    check_prefixes(case.read(name), case.prefixes)
    check_no_duplicate_rules(case.files[name])


def _iptables_oracle(case: OracleCase, name: str) -> None:
    check_no_duplicate_rules(case.files[name])
    assert iptables_mode(case.files[name]) == case.settings("iptables").get("mode", "include"), "not the mode asked for"


def _edl_prefixes_oracle(version: int) -> Callable[[OracleCase, str], None]:
    def oracle(case: OracleCase, name: str) -> None:
        entries = case.read(name)
        assert entries == case.prefixes[version], f"{name}: not the merged prefixes of the tags"
        if "acrrules.nft" in case.files:
            assert entries == case.read("acrrules.nft")[version], f"{name} differs from the nft set"

    return oracle


def _no_proxy_oracle(case: OracleCase, name: str) -> None:
    hosts = oracles.no_proxy(case.data)
    assert case.files[name] == (",".join(hosts) + "\n" if hosts else ""), f"{name}: not the private-link FQDNs"


def _edl_fqdn_oracle(case: OracleCase, name: str) -> None:
    assert case.files[name] == "".join(f"{fqdn}\n" for fqdn in sorted({e[1] for e in oracles.endpoints(case.data)})), (
        f"{name}: not the endpoints' FQDNs"
    )


# ---- where a valid description may be refused (platform limits), for the property test -----------


@dataclass(frozen=True)
class Refusal:
    keys: tuple[tuple, ...]  # the description's keys the refusal may point at
    says: tuple[str, ...] = ()  # one of these words must be in its message (when given)


# iptables names a user chain may not take: built-in chains, verdicts and target extensions.
IPTABLES_TAKEN = frozenset(
    """
    INPUT OUTPUT FORWARD PREROUTING POSTROUTING ACCEPT DROP RETURN QUEUE ERROR AUDIT CHECKSUM CLASSIFY
    CLUSTERIP CONNMARK CONNSECMARK CT DNAT DNPT DSCP ECN HL HMARK IDLETIMER LED LOG MARK MASQUERADE NETMAP
    NFLOG NFQUEUE NOTRACK RATEEST REDIRECT REJECT SECMARK SET SNAT SNPT SYNPROXY TCPMSS TCPOPTSTRIP TEE TOS
    TPROXY TRACE TTL ULOG
""".split()
)


def _ip_sources(data: dict) -> list[tuple[int, Any]]:
    return [(i, ipaddress.ip_network(s)) for i, s in enumerate(data.get("sources", [])) if s != "*"]


def _firewall_refusals(data: dict, tags: set[str], features: dict[str, list[str] | None]) -> Refusal | None:
    keys = []
    network_rules = data.get("targets", {}).get("azure-firewall", {}).get("network_rules")
    if network_rules and any(features[t] is not None and "FW" not in features[t] for t in tags):
        keys.append(("targets", "azure-firewall", "network_rules"))  # e.g. China, USGovIowa
    keys += [("sources", i) for i, n in _ip_sources(data) if n.version == 6]  # IPv4 sources only
    return Refusal(tuple(keys), ("FW", "IPv6") if network_rules else ()) if keys else None


def _squid_refusals(data: dict, tags: set[str], features) -> Refusal | None:
    mapped = ipaddress.ip_network("::ffff:0:0/96")  # squid matches IPv4 clients in this form
    keys = tuple(("sources", i) for i, n in _ip_sources(data) if n.version == 6 and n.overlaps(mapped))
    return Refusal(keys) if keys else None


# nft tables the nftables target refuses (README, nftables): the host's own firewall tables in mode
# standalone, and tables a daemon rebuilds on its own reload in both modes.
NFT_HOST_TABLES = frozenset({"filter", "nat", "mangle", "raw", "security"})
NFT_DAEMON_TABLES = frozenset(
    {"firewalld", "fw4", "lxd", "incus", "netavark", "libvirt_network", "crowdsec", "crowdsec6"}
)


def _nft_refusals(data: dict, tags: set[str], features) -> Refusal | None:
    settings = data.get("targets", {}).get("nftables", {})
    given = "table" in settings
    table = settings["table"] if given else data.get("name", "acrrules").replace("-", "_")
    standalone = settings.get("mode", "include") == "standalone"
    if table in NFT_DAEMON_TABLES or (standalone and table in NFT_HOST_TABLES):
        return Refusal((("targets", "nftables", "table") if given else ("name",),), ("table",))
    return None


def _iptables_refusals(data: dict, tags: set[str], features) -> Refusal | None:
    if data.get("targets", {}).get("iptables", {}).get("chain") in IPTABLES_TAKEN:
        return Refusal((("targets", "iptables", "chain"),))
    return None


# ---- the registry -------------------------------------------------------------------------------


def _replace(old: str, new: str, count: int = 1) -> Callable[[str], str]:
    return lambda text: text.replace(old, new, count)


def _arm_priority_5000(text: str) -> str:
    template = json.loads(text)
    template["resources"][0]["properties"]["priority"] = 5000  # past Azure's 4096
    return json.dumps(template, indent=2)


@dataclass(frozen=True)
class OutputFile:
    name: str
    format: Format
    checker: Checker
    oracle: Callable[[OracleCase, str], None]
    spoil: Callable[[str], str]  # a broken copy that `checker` must reject
    read: Callable[[str], Any] | None = None  # default: the format's structure
    prefix: bool = False  # built from the Service Tags file (needs --service-tags)
    plain: bool = False  # no header: every line is data
    reaches: frozenset[str] = frozenset()  # hostile fields that may reach its data, not only comments
    key_fields: tuple[str, ...] = ()  # fields whose value is also a mapping key
    header_comment: Callable[[str], str] | None = None  # the filter its header's comment lines go through

    def __post_init__(self):
        if self.read is None:
            object.__setattr__(self, "read", self.format.structure)


@dataclass(frozen=True)
class Consumer:
    target: str
    files: tuple[OutputFile, ...]
    terraform: bool = False  # its directory also gets versions.tf (a Terraform module)
    refusals: Callable[[dict, set, dict], Refusal | None] = lambda data, tags, features: None
    hostile_fields: dict[str, str] = field(default_factory=dict)  # field -> its harmless value
    hostile_settings: Callable[[dict], dict] = lambda values: {}  # targets.<id> from the fields' values

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.files)

    @property
    def needs_service_tags(self) -> bool:
        return all(f.prefix for f in self.files)


def _tf(name: str, oracle, spoil, reaches=()) -> OutputFile:
    return OutputFile(name, HCL, TERRAFORM, oracle, spoil, reaches=frozenset(reaches), header_comment=comment)


VERSIONS_TF = _tf(
    "versions.tf",
    lambda case, name: check_terraform_versions(case.read(name)),
    _replace("required_providers {", "required_providers {{"),
)

K8S_FIELDS = {"k8s_name": "acr-egress", "k8s_namespace": "build", "k8s_label_key": "app", "k8s_label_value": "builder"}


def _kubernetes_settings(v: dict) -> dict:
    labels = {v["k8s_label_key"]: v["k8s_label_value"]}
    return {
        "name": v["k8s_name"],
        "dns_selector": labels,
        "namespace": v["k8s_namespace"],
        "dns_namespace": v["k8s_namespace"],
    }


def _k8s_yaml(name: str, oracle, spoil, prefix: bool, reaches) -> OutputFile:
    return OutputFile(
        name,
        YAML,
        K8S,
        oracle,
        spoil,
        prefix=prefix,
        reaches=frozenset(reaches),
        key_fields=("k8s_label_key",),
        header_comment=yaml_comment,
    )


def _netfilter(name: str, checker: Checker, oracle, spoil, read, reaches) -> OutputFile:
    return OutputFile(
        name, LINES, checker, oracle, spoil, read=read, prefix=True, reaches=frozenset(reaches), header_comment=comment
    )


def _edl(name: str, oracle, read, prefix: bool, reaches=()) -> OutputFile:
    return OutputFile(
        name,
        PLAIN,
        PLAIN_LISTS,
        oracle,
        lambda text: "# acrrules\n" + text,
        read=read,
        prefix=prefix,
        plain=True,
        reaches=frozenset(reaches),
    )


_TABLE = (
    Consumer(
        "azure-firewall",
        terraform=True,
        files=(
            _tf(
                "azure-firewall.tf",
                lambda case, name: check_azure_firewall(case.read(name), case.data, case.tags),
                _replace('"Https"', '"HTTPS"'),
                reaches=("rule_collection_group", "source", "registry"),
            ),
        ),
        refusals=_firewall_refusals,
        hostile_fields={"rule_collection_group": "acrrules"},
        hostile_settings=lambda v: {"rule_collection_group": v["rule_collection_group"], "network_rules": True},
    ),
    Consumer(
        "nsg-arm",
        files=(
            OutputFile(
                "nsg.json",
                ARM,
                ARM_CHECK,
                lambda case, name: check_nsg_arm(case.read(name), case.data, case.tags),
                _arm_priority_5000,
                reaches=frozenset(("source", "source_name", "registry")),
            ),
        ),
    ),
    Consumer(
        "nsg-tf",
        terraform=True,
        files=(
            _tf(
                "nsg.tf",
                lambda case, name: check_nsg_tf(case.read(name), case.data, case.tags),
                _replace('"Outbound"', '"Egress"'),
                reaches=("source", "resource_group_name", "network_security_group_name"),
            ),
        ),
        hostile_fields={"resource_group_name": "rg", "network_security_group_name": "nsg"},
        hostile_settings=lambda v: {
            "resource_group_name": v["resource_group_name"],
            "network_security_group_name": v["network_security_group_name"],
        },
    ),
    Consumer(
        "nftables",
        files=(
            _netfilter(
                "acrrules.nft",
                NFT,
                _nft_oracle,
                _replace("flags interval", "", -1),
                nft_elements,
                ("nft_table", "source"),
            ),
        ),
        hostile_fields={"nft_table": "acrrules"},
        hostile_settings=lambda v: {"table": v["nft_table"]},
        refusals=_nft_refusals,
    ),
    Consumer(
        "iptables",
        files=(
            _netfilter(
                "ipset.rules",
                IPTABLES,
                _ipset_oracle,
                _replace("hash:net", "hash:nett"),
                ipset_elements,
                ("ipt_chain",),
            ),
            _netfilter(
                "iptables.rules",
                IPTABLES,
                _iptables_oracle,
                _replace("-j ACCEPT", "-j ACCEPTT"),
                restore_tables,
                ("ipt_chain", "source"),
            ),
            _netfilter(
                "ip6tables.rules",
                IPTABLES,
                _iptables_oracle,
                _replace("-j ACCEPT", "-j ACCEPTT"),
                restore_tables,
                ("ipt_chain", "source"),
            ),
        ),
        refusals=_iptables_refusals,
        hostile_fields={"ipt_chain": "ACRRULES"},
        hostile_settings=lambda v: {"chain": v["ipt_chain"], "mode": "include"},
    ),
    Consumer(
        "squid",
        files=(
            OutputFile(
                "acrrules-squid.conf",
                LINES,
                SQUID,
                lambda case, name: check_squid(case.read(name), case.data),
                lambda text: text.replace(" dstdomain ", " dstdomain *.example.com ", 1),
                read=squid_directives,
                reaches=frozenset(("squid_acl_prefix", "source", "registry")),
                header_comment=squid_comment,
            ),
            OutputFile(
                "no_proxy.txt",
                PLAIN,
                NO_PROXY,
                _no_proxy_oracle,
                _replace(",", ", "),
                read=comma_list,
                plain=True,
                reaches=frozenset(("registry",)),
            ),
        ),
        refusals=_squid_refusals,
        hostile_fields={"squid_acl_prefix": "acrrules"},
        hostile_settings=lambda v: {"acl_prefix": v["squid_acl_prefix"]},
    ),
    Consumer(
        "lists",
        files=(
            _edl("edl-fqdn.txt", _edl_fqdn_oracle, plain_lines, prefix=False, reaches=("registry",)),
            _edl("edl-ipv4.txt", _edl_prefixes_oracle(4), plain_networks, prefix=True),
            _edl("edl-ipv6.txt", _edl_prefixes_oracle(6), plain_networks, prefix=True),
        ),
    ),
    Consumer(
        "cilium",
        files=(
            _k8s_yaml(
                "cilium.yaml",
                lambda case, name: check_cilium(case.read(name), case.data),
                _replace("toFQDNs:", "toFQDN:"),
                prefix=False,
                reaches=(*K8S_FIELDS, "registry"),
            ),
        ),
        hostile_fields=K8S_FIELDS,
        hostile_settings=lambda v: {
            **_kubernetes_settings(v),
            "endpoint_selector": {v["k8s_label_key"]: v["k8s_label_value"]},
        },
    ),
    Consumer(
        "calico",
        files=(
            _k8s_yaml(
                "calico.yaml",
                lambda case, name: check_calico(case.read(name), case.data, case.prefixes),
                _replace("kind: GlobalNetworkSet", "kind: GlobalNetworkSett"),
                prefix=True,
                reaches=K8S_FIELDS,
            ),
        ),
        hostile_fields=K8S_FIELDS,
        hostile_settings=lambda v: {
            **_kubernetes_settings(v),
            "selector": {v["k8s_label_key"]: v["k8s_label_value"]},
            "order": 100,
        },
    ),
)


_missing = [t for t in TARGETS if t not in {c.target for c in _TABLE}]
if _missing:
    raise RuntimeError(
        f"no consumer for target(s) {', '.join(_missing)}: add an entry to _TABLE in tests/consumers.py "
        "(its files, reader, real consumer, oracle and hostile-string fields)"
    )
_unknown = [c.target for c in _TABLE if c.target not in TARGETS]
if _unknown:
    raise RuntimeError(
        f"tests/consumers.py has an entry for {', '.join(_unknown)}, which acrrules.targets does not have"
    )

CONSUMERS: dict[str, Consumer] = {tid: next(c for c in _TABLE if c.target == tid) for tid in TARGETS}
"""Every target's consumer, in the order of acrrules.targets.TARGETS (the order render writes them in)."""

FILES: dict[str, OutputFile] = {f.name: f for c in CONSUMERS.values() for f in c.files}
FILES[VERSIONS_TF.name] = VERSIONS_TF
assert len(FILES) == sum(len(c.files) for c in CONSUMERS.values()) + 1, "two targets write one file name"

CHECKERS: tuple[Checker, ...] = tuple(dict.fromkeys(f.checker for f in FILES.values()))


def output_files(targets: Iterable[str] | None = None, service_tags: bool = True) -> list[str]:
    """The files `acrrules render` writes for these targets (default: every target, less those that need
    a Service Tags file when there is none), in the order it writes them."""
    chosen = list(CONSUMERS) if targets is None else list(dict.fromkeys(targets))
    out = []
    for tid in chosen:
        c = CONSUMERS[tid]
        if c.needs_service_tags and not service_tags:
            if targets is not None:
                raise ValueError(f"{tid} needs a Service Tags file")
            continue
        out += [f.name for f in c.files if service_tags or not f.prefix]
    if any(CONSUMERS[tid].terraform and (service_tags or not CONSUMERS[tid].needs_service_tags) for tid in chosen):
        out.append(VERSIONS_TF.name)
    return out


def checker_of(path: Path | str) -> Checker:
    name = Path(path).name
    assert name in FILES, f"{name}: no consumer for this file in tests/consumers.py"
    return FILES[name].checker


def read(path: Path):
    """An output file parsed by its reader."""
    return FILES[path.name].read(path.read_text(encoding="utf-8"))


def check(paths: Iterable[Path]) -> dict[Checker, list[Path]]:
    """Every file through its real consumer, in one batch per consumer (the kernel loads last); returns
    the batches, so a caller can check that a consumer got the files it expects."""
    batches: dict[Checker, list[Path]] = {}
    for p in sorted(set(paths)):
        batches.setdefault(checker_of(p), []).append(p)
    for checker in sorted(batches, key=lambda c: c.root_netns):
        checker.need()
        checker.run(batches[checker])
    return batches


def check_dirs(*dirs: Path, skip: Iterable[str] = ()) -> dict[Checker, list[Path]]:
    """check() on every file of these output directories (except the names in `skip`)."""
    return check(p for d in dirs for p in d.iterdir() if p.name not in set(skip) and p.name != ".acrrules-manifest")


def hostile_structure(name: str, text: str, base: str, case: HostileCase) -> None:
    """A file rendered with a hostile value has the structure of the harmless render's (`base`), the value
    reaches only the data it may reach, intact, and every string reads back as a literal."""
    f = FILES[name]
    fmt = f.format
    doc, base_doc = fmt.structure(text), fmt.structure(base)
    renamed = rename_keys(doc, {readable(case.value): case.benign}) if case.field in f.key_fields else doc
    assert fmt.shape(renamed) == fmt.shape(base_doc), f"{name}: structure changed"
    strings = fmt.strings(doc)
    fmt.extra(doc, text, case)
    if case.field in f.reaches:
        assert any(readable(case.value) in s for s in strings), f"{case.value!r} did not reach {name} intact"
    else:
        assert doc == base_doc, f"{name}: {case.field} changed more than comments"
    if case.field == "source_name" and f.header_comment is not None:  # the header names the description
        assert f.header_comment(case.value) in header(text), f"{name}: the header does not name the description"


def header(text: str) -> str:
    """The comment lines a file starts with."""
    lines = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        lines.append(line)
    return "\n".join(lines)
