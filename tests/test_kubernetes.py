"""The Kubernetes targets (spec §6): cilium.yaml and calico.yaml, proven with their real consumers.

- Every sample renders a policy that ../shared's k8s_check.py accepts with --strict, against the
  real Cilium and Calico CRD schemas (unknown fields are errors; with the `cel` module installed,
  Calico's CEL rules are evaluated too; CI requires it), in every scope and setting shape.
- What the files allow is read back and compared with an independent source: the FQDNs of
  cilium.yaml with `acrrules endpoints --format json`, the nets of calico.yaml with the sets of
  acrrules.nft rendered from the same inputs.
- Broken copies of the outputs are rejected, so these tests can fail.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import NamedTuple

import pytest
import yaml
from conftest import (
    REQUIRE_TOOLS,
    SERVICETAGS,
    latest_servicetags,
    need_shared,
    run_cli,
    run_cli_process,
    run_validator,
    sample_specs,
)
from regen_golden import PINNED_SERVICETAGS, sample_cloud
from strategies import dump_description

CEL_NOTE = "CEL rules (x-kubernetes-validations) not evaluated"


def k8s_check(*files, strict: bool = True):
    """k8s_check.py on the files; under ACRRULES_REQUIRE_TOOLS=1 Calico's CEL rules must have been evaluated."""
    r = run_validator("k8s_check.py", *(["--strict"] if strict else []), *files)
    if REQUIRE_TOOLS:
        assert CEL_NOTE not in r.stderr, "install the test extra: common-expression-language evaluates Calico's CEL"
    return r


def write_spec(folder: Path, data: dict, name: str = "acr.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(dump_description(data), encoding="utf-8")
    return path


def sample_data(spec: Path) -> dict:
    return yaml.safe_load(spec.read_text(encoding="utf-8"))


def pinned_tags(spec: Path) -> Path:
    need_shared()
    return SERVICETAGS / PINNED_SERVICETAGS[sample_cloud(spec)]


def render(spec: Path, out: Path, *targets: str, tags: Path | None = None) -> dict[str, str]:
    args = ["render", spec, "--out", out, *[a for t in targets for a in ("--target", t)]]
    r = run_cli(*args, *(["--service-tags", tags] if tags else []))
    assert r.code == 0, r.err
    return {p.name: p.read_text(encoding="utf-8") for p in out.iterdir() if p.name != ".acrrules-manifest"}


def documents(text: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(text) if d is not None]


# ---- cilium ----------------------------------------------------------------------------------------

CILIUM_SCOPES = {
    "namespace": {},
    "namespace-set": {
        "namespace": "build",
        "endpoint_selector": {"app": "builder", "team.example.com/tier": "ci"},
        "name": "acr-egress",
    },
    "namespace-all-pods": {"endpoint_selector": {}},
    "cluster": {"scope": "cluster", "endpoint_selector": {"acr.example.com/pull": "true"}},
    "cluster-dns": {
        "scope": "cluster",
        "endpoint_selector": {"app": "x"},
        "dns_namespace": "openshift-dns",
        "dns_selector": {"dns.operator.openshift.io/daemonset-dns": "default"},
    },
}


@pytest.fixture(scope="module")
def cilium_files(tmp_path_factory) -> dict[tuple[str, str], Path]:
    """(sample, scope) -> the rendered cilium.yaml."""
    root = tmp_path_factory.mktemp("cilium")
    out = {}
    for spec in sample_specs():
        for scope, settings in CILIUM_SCOPES.items():
            data = sample_data(spec)
            if settings:
                data.setdefault("targets", {})["cilium"] = settings
            folder = root / spec.stem / scope
            render(write_spec(folder, data), folder / "out", "cilium")
            out[(spec.stem, scope)] = folder / "out" / "cilium.yaml"
    return out


def test_cilium_policies_pass_the_real_crd_schema(cilium_files):
    r = k8s_check(*cilium_files.values())
    assert r.returncode == 0, r.stdout + r.stderr
    oks = [line for line in r.stdout.splitlines() if line.endswith(": ok")]
    assert len(oks) == len(cilium_files), r.stdout
    for (_, scope), path in cilium_files.items():
        kind = "CiliumClusterwideNetworkPolicy" if scope.startswith("cluster") else "CiliumNetworkPolicy"
        assert f"{path}: doc1 {kind}/" in r.stdout


def fqdn_selectors(policy: dict) -> tuple[set[str], set[str]]:
    """(matchName values, matchPattern values) of the policy's TCP 443 toFQDNs rules."""
    names, patterns = set(), set()
    for rule in policy["spec"]["egress"]:
        if "toFQDNs" in rule:
            assert rule["toPorts"] == [{"ports": [{"port": "443", "protocol": "TCP"}]}]
            for selector in rule["toFQDNs"]:
                ((key, value),) = selector.items()
                (names if key == "matchName" else patterns).add(value)
    return names, patterns


@pytest.mark.parametrize("spec", sample_specs(), ids=lambda p: p.stem)
def test_cilium_allows_exactly_the_endpoints(spec, cilium_files):
    """The names in cilium.yaml are `acrrules endpoints --format json`'s FQDNs: exact names as matchName,
    wildcards as matchPattern, each once; plus the DNS rule to kube-dns that FQDN policies need."""
    r = run_cli("endpoints", spec, "--format", "json")
    assert r.code == 0, r.err
    want = {e["fqdn"] for e in json.loads(r.out)}
    for scope in CILIUM_SCOPES:
        (policy,) = documents(cilium_files[(spec.stem, scope)].read_text(encoding="utf-8"))
        names, patterns = fqdn_selectors(policy)
        assert names | patterns == want and not names & patterns
        assert all(p.startswith("*.") for p in patterns) and not any("*" in n for n in names)
        text = cilium_files[(spec.stem, scope)].read_text(encoding="utf-8")
        assert (
            sum(line.strip().startswith(("- matchName:", "- matchPattern:")) for line in text.splitlines())
            == len(want) + 1
        )  # + the DNS rule's "*"
        dns = policy["spec"]["egress"][0]
        assert dns["toPorts"] == [
            {
                "ports": [{"port": "53", "protocol": "UDP"}, {"port": "53", "protocol": "TCP"}],
                "rules": {"dns": [{"matchPattern": "*"}]},
            }
        ]
        settings = CILIUM_SCOPES[scope]
        dns_labels = {
            **settings.get("dns_selector", {"k8s-app": "kube-dns"}),
            "io.kubernetes.pod.namespace": settings.get("dns_namespace", "kube-system"),
        }
        assert dns["toEndpoints"] == [{"matchLabels": dns_labels}]


def test_cilium_settings_shape_the_policy(cilium_files):
    """Names from the description's `name` unless set; namespace and selectors from the settings."""
    (ns,) = documents(cilium_files[("geo-replicated-premium", "namespace")].read_text(encoding="utf-8"))
    assert ns["kind"] == "CiliumNetworkPolicy"
    assert ns["metadata"] == {
        "name": "acrrules",
        "namespace": "default",
        "labels": {"app.kubernetes.io/managed-by": "acrrules", "acrrules/policy": "acrrules"},
    }
    assert ns["spec"]["endpointSelector"] == {"matchLabels": {"acrrules/egress-acrrules": "allow"}}
    (ns_set,) = documents(cilium_files[("geo-replicated-premium", "namespace-set")].read_text(encoding="utf-8"))
    assert ns_set["metadata"]["name"] == "acr-egress" and ns_set["metadata"]["namespace"] == "build"
    assert ns_set["spec"]["endpointSelector"] == {"matchLabels": {"app": "builder", "team.example.com/tier": "ci"}}
    (all_pods,) = documents(cilium_files[("geo-replicated-premium", "namespace-all-pods")].read_text("utf-8"))
    assert all_pods["spec"]["endpointSelector"] == {}
    (cluster,) = documents(cilium_files[("geo-replicated-premium", "cluster")].read_text(encoding="utf-8"))
    assert cluster["kind"] == "CiliumClusterwideNetworkPolicy" and "namespace" not in cluster["metadata"]
    assert cluster["spec"]["endpointSelector"] == {"matchLabels": {"acr.example.com/pull": "true"}}


def test_cilium_names_come_from_the_description_name(tmp_path):
    data = {
        "version": 1,
        "name": "prod-eu",
        "registries": [{"name": "contosoprod", "sku": "Basic", "location": "westeurope"}],
    }
    (policy,) = documents(render(write_spec(tmp_path, data), tmp_path / "out", "cilium")["cilium.yaml"])
    assert policy["metadata"]["name"] == "prod-eu" and policy["metadata"]["labels"]["acrrules/policy"] == "prod-eu"
    assert policy["spec"]["endpointSelector"] == {"matchLabels": {"acrrules/egress-prod-eu": "allow"}}


def broken_copies(text: str) -> dict[str, tuple[str, str]]:
    """name -> (broken text, what k8s_check must say)."""
    dns_rule = re.search(r"    - toEndpoints:\n(?:      .*\n|        .*\n)+", text)
    assert dns_rule, text
    return {
        "misspelt-toFQDNs": (text.replace("    - toFQDNs:", "    - toFQDN:", 1), "did you mean 'toFQDNs'?"),
        "no-dns-rule": (text.replace(dns_rule.group(0), "", 1), "toFQDNs is used but no egress rule"),
        "wildcard-as-name": (re.sub(r'matchPattern: "\*\.', 'matchName: "*.', text, count=1), "matchName"),
        "namespace-on-cluster-kind": (
            text.replace('kind: "CiliumNetworkPolicy"', 'kind: "CiliumClusterwideNetworkPolicy"', 1),
            "must not be set on a cluster-scoped kind",
        ),
    }


def test_k8s_check_rejects_broken_cilium_policies(cilium_files, tmp_path):
    """Negative controls: the checker sees a misspelt field, a missing DNS rule, a wildcard in matchName
    and a namespace on the cluster-wide kind in copies of a real output, so the tests above can fail."""
    text = cilium_files[("migration-both", "namespace")].read_text(encoding="utf-8")
    for name, (broken, says) in broken_copies(text).items():
        assert broken != text, name
        path = tmp_path / f"{name}.yaml"
        path.write_text(broken, encoding="utf-8")
        r = k8s_check(path)
        assert r.returncode == 1 and says in r.stdout, (name, r.stdout)


def test_cilium_output_is_quiet_in_a_repository(tmp_path):
    """Header names the description relative to --out and no Service Tags file; the bytes do not change with
    the working directory, the Service Tags file or the hash seed."""
    spec = write_spec(tmp_path / "repo", sample_data(sample_specs()[0]))
    outs = []
    for i, (cwd, tags, seed) in enumerate(
        [
            (tmp_path, None, "0"),
            (tmp_path / "repo", latest_servicetags(), "1"),
            (Path("/"), latest_servicetags(), "4242"),
        ]
    ):
        out = tmp_path / "repo" / "rules" / str(i)
        args = ["render", spec, "--out", out, "--target", "cilium"] + (["--service-tags", tags] if tags else [])
        r = run_cli_process(*args, cwd=cwd, env={"PYTHONHASHSEED": seed})
        assert r.code == 0, r.err
        outs.append((out / "cilium.yaml").read_bytes())
    assert outs[0] == outs[1] == outs[2]
    header = outs[0].decode("utf-8").split("\napiVersion:")[0]
    assert "from ../../acr.yaml; do not edit." in header and "Service Tags" not in header
    assert all(line.startswith("#") for line in header.splitlines())


def test_readme_labels_pods_the_way_the_default_selector_selects_them():
    from acrrules.targets import kubernetes

    readme = (Path(__file__).resolve().parents[1] / "docs" / "targets.md").read_text(encoding="utf-8")
    snippet = re.search(r"```yaml\nspec:\n  template:\n(?:.*\n)*?```", readme)
    assert snippet, "docs/targets.md shows a pod template with the opt-in label"
    labels = yaml.safe_load(snippet.group(0)[len("```yaml\n") : -3])["spec"]["template"]["metadata"]["labels"]
    assert labels == dict(kubernetes.opt_in_selector("acrrules"))


# ---- calico ----------------------------------------------------------------------------------------

CALICO_SETTINGS = {
    "default": {},
    "set": {
        "name": "acr-egress",
        "selector": {"app": "builder", "team.example.com/tier": "ci"},
        "namespace": "build",
        "order": 100,
    },
    "dns": {
        "selector": {"app": "x"},
        "order": 0,
        "dns_namespace": "openshift-dns",
        "dns_selector": {"dns.operator.openshift.io/daemonset-dns": "default"},
    },
}


@pytest.fixture(scope="module")
def calico_files(tmp_path_factory) -> dict[tuple[str, str], dict[str, str]]:
    """(sample, settings) -> calico.yaml and acrrules.nft rendered together from the sample's pinned file."""
    root = tmp_path_factory.mktemp("calico")
    out = {}
    for spec in sample_specs():
        for label, settings in CALICO_SETTINGS.items():
            data = sample_data(spec)
            if settings:
                data.setdefault("targets", {})["calico"] = settings
            folder = root / spec.stem / label
            files = render(write_spec(folder, data), folder / "out", "calico", "nftables", tags=pinned_tags(spec))
            out[(spec.stem, label)] = {**files, "path": str(folder / "out" / "calico.yaml")}
    return out


def test_calico_objects_pass_the_real_crd_schemas(calico_files):
    """GlobalNetworkSets and the GlobalNetworkPolicy against Calico's projectcalico.org/v3 CRDs, their CEL rules
    and Calico's v3 validator rules (nets of one IP family per rule, ports need a protocol, policy names)."""
    r = k8s_check(*(f["path"] for f in calico_files.values()))
    assert r.returncode == 0, r.stdout + r.stderr
    kinds = re.findall(r": doc\d+ (\w+)/\S+: ok$", r.stdout, re.M)
    assert kinds.count("GlobalNetworkPolicy") == len(calico_files)
    assert kinds.count("GlobalNetworkSet") >= 2 * len(calico_files)


def calico_objects(text: str) -> tuple[list[dict], dict]:
    """(the GlobalNetworkSets, the GlobalNetworkPolicy) of a calico.yaml."""
    docs = documents(text)
    sets = [d for d in docs if d["kind"] == "GlobalNetworkSet"]
    (policy,) = [d for d in docs if d["kind"] == "GlobalNetworkPolicy"]
    assert len(sets) + 1 == len(docs) and all(d["apiVersion"] == "projectcalico.org/v3" for d in docs)
    return sets, policy


def calico_nets(text: str) -> dict[int, list]:
    import ipaddress

    out: dict[int, list] = {4: [], 6: []}
    for s in calico_objects(text)[0]:
        for net in s["spec"]["nets"]:
            out[ipaddress.ip_network(net).version].append(ipaddress.ip_network(net))
    return out


@pytest.mark.parametrize("spec", sample_specs(), ids=lambda p: p.stem)
def test_calico_nets_are_the_nftables_sets(spec, calico_files):
    """The union of the network sets' nets is exactly what acrrules.nft's sets hold for the same inputs:
    the same merged prefixes, each once, in address order, every set of one IP family."""
    from consumers import nft_elements

    for label in CALICO_SETTINGS:
        files = calico_files[(spec.stem, label)]
        got, want = calico_nets(files["calico.yaml"]), nft_elements(files["acrrules.nft"])
        assert got == want and want[4] and want[6], (spec.stem, label)
        for s in calico_objects(files["calico.yaml"])[0]:
            versions = {("." in n and 4) or 6 for n in s["spec"]["nets"]}
            assert len(versions) == 1 and s["metadata"]["name"].split("-")[-2] == f"v{versions.pop()}"


def test_calico_policy_selects_pods_and_reaches_its_sets(calico_files):
    """The policy selects the settings' pods and allows DNS and TCP 443 to the sets it labels; names come
    from the description's name unless set."""
    sets, policy = calico_objects(calico_files[("geo-replicated-premium", "default")]["calico.yaml"])
    assert [s["metadata"]["name"] for s in sets] == ["acrrules-v4-01", "acrrules-v6-01"]
    assert all(
        s["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "acrrules", "acrrules/policy": "acrrules"}
        for s in sets + [policy]
    )
    assert policy["metadata"]["name"] == "acrrules"
    assert policy["spec"]["selector"] == "acrrules/egress-acrrules == 'allow'"
    assert "order" not in policy["spec"] and "namespaceSelector" not in policy["spec"]
    assert policy["spec"]["types"] == ["Egress"]
    dns_udp, dns_tcp, https = policy["spec"]["egress"]
    dns = {
        "selector": "k8s-app == 'kube-dns'",
        "namespaceSelector": "projectcalico.org/name == 'kube-system'",
        "ports": [53],
    }
    assert dns_udp == {"action": "Allow", "protocol": "UDP", "destination": dns}
    assert dns_tcp == {"action": "Allow", "protocol": "TCP", "destination": dns}
    assert https == {
        "action": "Allow",
        "protocol": "TCP",
        "destination": {"selector": "acrrules/policy == 'acrrules'", "namespaceSelector": "global()", "ports": [443]},
    }

    sets, policy = calico_objects(calico_files[("geo-replicated-premium", "set")]["calico.yaml"])
    assert [s["metadata"]["name"] for s in sets] == ["acr-egress-v4-01", "acr-egress-v6-01"]
    assert policy["metadata"]["name"] == "acr-egress" and policy["spec"]["order"] == 100
    assert policy["spec"]["selector"] == "app == 'builder' && team.example.com/tier == 'ci'"
    assert policy["spec"]["namespaceSelector"] == "projectcalico.org/name == 'build'"
    assert policy["spec"]["egress"][2]["destination"]["selector"] == "acrrules/policy == 'acr-egress'"
    _, policy = calico_objects(calico_files[("geo-replicated-premium", "dns")]["calico.yaml"])
    assert policy["spec"]["order"] == 0
    assert policy["spec"]["egress"][0]["destination"] == {
        "selector": "dns.operator.openshift.io/daemonset-dns == 'default'",
        "namespaceSelector": "projectcalico.org/name == 'openshift-dns'",
        "ports": [53],
    }


# ---- Calico's selector semantics: who a rule's destination matches ---------------------------
#
# A tiny evaluator of the documented semantics of an entity rule (source/destination) in a
# GlobalNetworkPolicy, for the selector forms acrrules writes (`k == 'v'` joined by `&&`, `all()`):
# - no namespaceSelector: "resources in any namespace and non-namespaced resources that match" the
#   selector (https://docs.tigera.io/calico/latest/network-policy/get-started/calico-policy/calico-labels,
#   "Be aware that the default values for namespaceSelector ... are different");
# - namespaceSelector `global()`: non-namespaced resources only, i.e. GlobalNetworkSets and host endpoints
#   (the same page; https://docs.tigera.io/calico/latest/reference/resources/globalnetworkset: a network
#   policy rule "whose namespaceSelector includes global()" matches the GlobalNetworkSets);
# - any other namespaceSelector: resources in the namespaces whose labels match it (Calico labels each
#   namespace `projectcalico.org/name: <name>`).


class Endpoint(NamedTuple):
    kind: str  # GlobalNetworkSet | Pod
    name: str
    labels: dict
    namespace: str | None  # None: a non-namespaced resource


def calico_selector_matches(expression: str, labels: dict) -> bool:
    expression = expression.strip()
    if expression == "all()":
        return True
    for term in expression.split("&&"):
        m = re.fullmatch(r"\s*([A-Za-z0-9./_-]+) == '([^']*)'\s*", term)
        assert m, f"the evaluator knows only k == 'v' terms: {term!r}"
        if labels.get(m[1]) != m[2]:
            return False
    return True


def entity_rule_matches(rule: dict, endpoint: Endpoint) -> bool:
    namespace_selector = rule.get("namespaceSelector", "").strip()
    if namespace_selector == "global()":
        in_scope = endpoint.namespace is None
    elif namespace_selector:
        in_scope = endpoint.namespace is not None and calico_selector_matches(
            namespace_selector, {"projectcalico.org/name": endpoint.namespace}
        )
    else:  # a GlobalNetworkPolicy's default: every namespace and the non-namespaced resources
        in_scope = True
    return in_scope and calico_selector_matches(rule.get("selector", "all()"), endpoint.labels)


def test_the_https_rule_matches_only_the_global_network_sets(calico_files):
    """A pod that a tenant labels like the network sets (acrrules/policy=<name>) is no allowed destination: on
    main the rule had no namespaceSelector, so it matched that pod; with global() only the GlobalNetworkSets."""
    for (sample, label), files in calico_files.items():
        sets, policy = calico_objects(files["calico.yaml"])
        https = policy["spec"]["egress"][2]["destination"]
        name = policy["metadata"]["name"]
        world = [Endpoint("GlobalNetworkSet", s["metadata"]["name"], s["metadata"]["labels"], None) for s in sets]
        impostor = Endpoint("Pod", "exfil", {"acrrules/policy": name}, "tenant-a")
        world += [impostor, Endpoint("Pod", "web", {"app": "web"}, "tenant-a")]
        matched = [e for e in world if entity_rule_matches(https, e)]
        assert matched == world[: len(sets)], (sample, label, matched)
        # The evaluator tells the two apart: the rule as main wrote it (no namespaceSelector) takes the pod.
        unscoped = {k: v for k, v in https.items() if k != "namespaceSelector"}
        assert impostor in [e for e in world if entity_rule_matches(unscoped, e)]
        # The DNS rules stay scoped to the cluster DNS namespace: a tenant's look-alike pod is no DNS server.
        fake_dns = Endpoint("Pod", "dns", {"k8s-app": "kube-dns"}, "tenant-a")
        for rule in policy["spec"]["egress"][:2]:
            if rule["destination"]["selector"] == "k8s-app == 'kube-dns'":
                assert not entity_rule_matches(rule["destination"], fake_dns)


def broken_calico_copies(text: str) -> dict[str, tuple[str, str]]:
    """name -> (broken text, what k8s_check must say)."""
    https = "        selector: \"acrrules/policy == 'acrrules'\"\n"
    assert https in text
    return {
        "misspelt-selector": (
            text.replace(https, https.replace("selector", "selektor"), 1),
            "did you mean 'selector'?",
        ),
        "mixed-families": (
            text.replace(https, https + "        nets: [192.0.2.0/24, 2001:db8::/64]\n", 1),
            "both IPv4 and IPv6",
        ),
        "ports-without-protocol": (text.replace("      protocol: UDP\n", "", 1), "must set protocol"),
        "net-not-a-cidr": (
            re.sub(r'^    - "[0-9.]+/\d+"$', '    - "192.0.2.300/24"', text, count=1, flags=re.M),
            "is not an IP or CIDR",
        ),
        "cel-http-on-deny": (
            text.replace(
                '    - action: Allow\n      protocol: TCP\n      destination:\n        selector: "acrrules/',
                "    - action: Deny\n      http: {methods: [GET]}\n      protocol: TCP\n"
                '      destination:\n        selector: "acrrules/',
                1,
            ),
            "HTTP match is only valid on Allow rules",
        ),
    }


def test_k8s_check_rejects_broken_calico_objects(calico_files, tmp_path):
    """Negative controls on copies of a real output: an unknown field, nets of both families in one rule, ports
    without a protocol, a bad net and (with the cel module, required in CI) a CEL rule of the CRD."""
    try:
        import cel  # noqa: F401

        have_cel = True
    except ImportError:
        have_cel = False
        assert not REQUIRE_TOOLS, "ACRRULES_REQUIRE_TOOLS=1 but common-expression-language is not installed"
    text = calico_files[("basic", "default")]["calico.yaml"]
    for name, (broken, says) in broken_calico_copies(text).items():
        assert broken != text, name
        if name.startswith("cel-") and not have_cel:
            continue
        path = tmp_path / f"{name}.yaml"
        path.write_text(broken, encoding="utf-8")
        r = k8s_check(path)
        assert r.returncode == 1 and says in r.stdout, (name, r.stdout)


def big_description(tags_file) -> dict:
    """One registry in each region of the newest Public file (and MCR): thousands of merged prefixes."""
    from acrrules import catalog, servicetags
    from acrrules.plan import tag_regions

    loaded = servicetags.load(str(tags_file))
    cloud = catalog.CLOUDS["AzureCloud"]
    regions = sorted(
        set(cloud.locations)
        & set(tag_regions(loaded, catalog.TAG_ACR, cloud))
        & set(tag_regions(loaded, catalog.TAG_STORAGE, cloud))
    )
    return {
        "version": 1,
        "mcr": True,
        "name": "everywhere",
        "registries": [{"name": f"registry{i:03d}", "sku": "Basic", "location": r} for i, r in enumerate(regions)],
    }


def test_calico_sets_stay_within_their_budget_on_a_large_description(tmp_path):
    """Sets split at NETS_PER_SET nets, and every object, as the API server stores it (JSON), stays within
    OBJECT_BUDGET_BYTES, far below etcd's 1.5 MiB and kubectl's 256 KiB last-applied annotation; the split
    loses and repeats nothing, and the result passes the real CRD schemas."""
    from consumers import nft_elements

    from acrrules.targets.calico import NETS_PER_SET, OBJECT_BUDGET_BYTES

    tags = latest_servicetags()
    spec = write_spec(tmp_path, big_description(tags))
    files = render(spec, tmp_path / "out", "calico", "nftables", tags=tags)
    sets, policy = calico_objects(files["calico.yaml"])
    v4 = [s for s in sets if "-v4-" in s["metadata"]["name"]]
    assert len(v4) >= 2, "this description needs more than one IPv4 set"
    assert [s["metadata"]["name"] for s in v4] == [f"everywhere-v4-{i:02d}" for i in range(1, len(v4) + 1)]
    for obj in sets + [policy]:
        size = len(json.dumps(obj, separators=(",", ":")).encode("utf-8"))
        assert size <= OBJECT_BUDGET_BYTES, (obj["metadata"]["name"], size)
    assert all(len(s["spec"]["nets"]) <= NETS_PER_SET for s in sets)
    assert all(len(s["spec"]["nets"]) == NETS_PER_SET for s in v4[:-1])  # full sets before the last
    assert calico_nets(files["calico.yaml"]) == nft_elements(files["acrrules.nft"])
    r = k8s_check(tmp_path / "out" / "calico.yaml")
    assert r.returncode == 0, r.stdout + r.stderr


def test_calico_output_is_quiet_and_deterministic(tmp_path):
    """Header names the description relative to --out and the Service Tags file it is built from; bytes do
    not change with the working directory or the hash seed."""
    spec = write_spec(tmp_path / "repo", sample_data(sample_specs()[0]))
    tags = latest_servicetags()
    outs = []
    for i, (cwd, seed) in enumerate([(tmp_path, "0"), (tmp_path / "repo", "1"), (Path("/"), "4242")]):
        out = tmp_path / "repo" / "rules" / str(i)
        r = run_cli_process(
            "render",
            spec,
            "--out",
            out,
            "--target",
            "calico",
            "--service-tags",
            tags,
            cwd=cwd,
            env={"PYTHONHASHSEED": seed, "ACRRULES_TODAY": "2025-11-10"},
        )
        assert r.code == 0, r.err
        outs.append((out / "calico.yaml").read_bytes())
    assert outs[0] == outs[1] == outs[2]
    header = outs[0].decode("utf-8").split("\n---\n")[0]
    assert "from ../../acr.yaml; do not edit." in header
    assert "Service Tags of cloud Public, with the changeNumber of each tag used:" in header
    assert tags.name not in header
    assert all(line.startswith("#") for line in header.splitlines())


def test_calico_needs_service_tags(tmp_path):
    spec = write_spec(tmp_path, sample_data(sample_specs()[0]))
    r = run_cli("render", spec, "--out", tmp_path / "out", "--target", "calico")
    assert r.code == 2 and "target 'calico' needs IP prefixes: add --service-tags" in r.err
    r = run_cli("render", spec, "--out", tmp_path / "out")
    assert r.code == 0 and "skipped calico: it needs IP prefixes" in r.err
    assert not (tmp_path / "out" / "calico.yaml").exists()
