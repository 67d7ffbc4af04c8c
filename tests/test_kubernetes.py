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

import copy
import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

from conftest import (REQUIRE_TOOLS, SERVICETAGS, latest_servicetags, need_shared, run_cli, run_cli_process,
                      run_validator, sample_specs)
from regen_golden import PINNED_SERVICETAGS, sample_cloud

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
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
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
    return {p.name: p.read_text(encoding="utf-8") for p in out.iterdir()}


def documents(text: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(text) if d is not None]


# ---- cilium ----------------------------------------------------------------------------------------

CILIUM_SCOPES = {
    "namespace": {},
    "namespace-set": {"namespace": "build", "endpoint_selector": {"app": "builder", "team.example.com/tier": "ci"},
                      "name": "acr-egress"},
    "namespace-all-pods": {"endpoint_selector": {}},
    "cluster": {"scope": "cluster", "endpoint_selector": {"acr.example.com/pull": "true"}},
    "cluster-dns": {"scope": "cluster", "endpoint_selector": {"app": "x"}, "dns_namespace": "openshift-dns",
                    "dns_selector": {"dns.operator.openshift.io/daemonset-dns": "default"}},
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
                (key, value), = selector.items()
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
        assert sum(line.strip().startswith(("- matchName:", "- matchPattern:")) for line in text.splitlines()) == \
            len(want) + 1  # + the DNS rule's "*"
        dns = policy["spec"]["egress"][0]
        assert dns["toPorts"] == [{"ports": [{"port": "53", "protocol": "UDP"}, {"port": "53", "protocol": "TCP"}],
                                   "rules": {"dns": [{"matchPattern": "*"}]}}]
        settings = CILIUM_SCOPES[scope]
        dns_labels = {**settings.get("dns_selector", {"k8s-app": "kube-dns"}),
                      "io.kubernetes.pod.namespace": settings.get("dns_namespace", "kube-system")}
        assert dns["toEndpoints"] == [{"matchLabels": dns_labels}]


def test_cilium_settings_shape_the_policy(cilium_files):
    """Names from the description's `name` unless set; namespace and selectors from the settings."""
    (ns,) = documents(cilium_files[("geo-replicated-premium", "namespace")].read_text(encoding="utf-8"))
    assert ns["kind"] == "CiliumNetworkPolicy"
    assert ns["metadata"] == {"name": "acrrules", "namespace": "default", "labels": {
        "app.kubernetes.io/managed-by": "acrrules", "acrrules/policy": "acrrules"}}
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
    data = {"version": 1, "name": "prod-eu", "registries": [{"name": "contosoprod", "sku": "Basic",
                                                              "location": "westeurope"}]}
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
        "namespace-on-cluster-kind": (text.replace("kind: \"CiliumNetworkPolicy\"",
                                                   "kind: \"CiliumClusterwideNetworkPolicy\"", 1),
                                      "must not be set on a cluster-scoped kind"),
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
    for i, (cwd, tags, seed) in enumerate([(tmp_path, None, "0"), (tmp_path / "repo", latest_servicetags(), "1"),
                                           (Path("/"), latest_servicetags(), "4242")]):
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

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    snippet = re.search(r"```yaml\nspec:\n  template:\n(?:.*\n)*?```", readme)
    assert snippet, "the README shows a pod template with the opt-in label"
    labels = yaml.safe_load(snippet.group(0)[len("```yaml\n"):-3])["spec"]["template"]["metadata"]["labels"]
    assert labels == dict(kubernetes.opt_in_selector("acrrules"))
