"""cilium: `cilium.yaml`, one Cilium FQDN policy, applied with `kubectl apply -f cilium.yaml`.

A `CiliumNetworkPolicy` in `namespace` (`scope: namespace`, the default) or a
`CiliumClusterwideNetworkPolicy` (`scope: cluster`) selecting the pods whose labels include
`endpoint_selector`, with two egress rules:

- DNS (UDP and TCP 53) to the cluster DNS pods, through Cilium's DNS proxy (`rules.dns`,
  any name): Cilium learns which IPs a name has only from the answers it sees there, so
  without it the FQDN rule below would allow nothing;
- TCP 443 `toFQDNs`: `matchName` for each exact endpoint name, `matchPattern` for each
  wildcard (`*.blob.core.windows.net` matches one label under it, as the endpoint means).

Cilium puts the pods a policy selects in default-deny for egress: other policies selecting the
same pods add what else they may reach.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, NamedTuple

from .. import catalog
from ..escape import k8s_name
from ..plan import RulePlan
from ..render import LimitProblem, Target
from . import kubernetes as k8s

SCOPES = ("namespace", "cluster")
DEFAULT_NAMESPACE = "default"
NAME_MAX = 63
# The label Cilium gives every endpoint with its pod's namespace (matched whatever its source).
POD_NAMESPACE_LABEL = "io.kubernetes.pod.namespace"


class CiliumSettings(NamedTuple):
    """targets.cilium with defaults applied (name and endpoint_selector from the description's name)."""

    name: str = catalog.DEFAULT_NAME
    scope: str = SCOPES[0]
    namespace: str = DEFAULT_NAMESPACE
    endpoint_selector: Mapping[str, str] = k8s.opt_in_selector(catalog.DEFAULT_NAME)
    dns_namespace: str = k8s.DNS_NAMESPACE
    dns_selector: Mapping[str, str] = k8s.DNS_SELECTOR


class CiliumTarget(Target):
    id = "cilium"
    files = (("cilium.yaml", "cilium.yaml.j2"),)
    Settings = CiliumSettings
    settings_schema: ClassVar[dict[str, Any]] = {
        "description": "A Cilium FQDN policy (cilium.yaml): TCP 443 to the endpoints' names and DNS to the cluster "
        "DNS, for the pods endpoint_selector selects.",
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "name": k8s.name_schema(NAME_MAX, "The policy's name. Default: the description's name."),
            "scope": {
                "description": "namespace: a CiliumNetworkPolicy in `namespace`, for pods of that namespace; "
                "cluster: a CiliumClusterwideNetworkPolicy, for pods of every namespace.",
                "enum": list(SCOPES),
                "default": SCOPES[0],
            },
            "namespace": {
                **k8s.NAMESPACE_SCHEMA,
                "default": DEFAULT_NAMESPACE,
                "description": "The namespace of the policy and of the pods it selects (scope: namespace only).",
            },
            "endpoint_selector": k8s.label_map_schema(
                "The labels of the pods the policy selects (all of them must match). Default: "
                "{acrrules/egress-<name>: allow}, so only pods that carry that label are selected."
            ),
            **k8s.dns_settings_schema(),
        },
    }

    def object_names(self, plan: RulePlan) -> tuple[tuple[str, Any], ...]:
        s = self.settings(plan)
        where = (
            (("kind", "CiliumClusterwideNetworkPolicy"),)
            if s.scope == "cluster"
            else (("kind", "CiliumNetworkPolicy"), ("namespace", s.namespace))
        )
        return (
            ("policy", s.name),
            *where,
            ("endpointSelector", tuple(f"{k}={v}" for k, v in sorted(s.endpoint_selector.items()))),
        )

    def default_settings(self, plan: RulePlan) -> dict[str, Any]:
        name = plan.description.name
        return {"name": name, "endpoint_selector": k8s.opt_in_selector(name)}

    def check(self, plan: RulePlan) -> list[LimitProblem]:
        s = self.settings(plan)
        given = plan.description.target_data.get(self.id, {})
        problems = []
        if s.scope == "cluster":
            if "namespace" in given:
                problems.append(
                    LimitProblem(
                        ("targets", self.id, "namespace"),
                        (
                            "targets.cilium.namespace: a CiliumClusterwideNetworkPolicy (scope: cluster) has no namespace: "
                            "remove namespace, or use scope: namespace"
                        ),
                    )
                )
            if not s.endpoint_selector:
                problems.append(
                    LimitProblem(
                        ("targets", self.id, "endpoint_selector"),
                        (
                            "targets.cilium.endpoint_selector: with scope: cluster, an empty selector selects every pod of "
                            "the cluster (kube-system's too) and denies all their other egress: give the labels of the "
                            "pods to select"
                        ),
                    )
                )
        return problems

    def context(self, plan: RulePlan) -> dict[str, Any]:
        s = self.settings(plan)
        fqdns = sorted({e.fqdn for e in plan.endpoints})
        # (the namespace is printed as a label value: k8s_name refuses what is no namespace name)
        dns_labels = {**dict(s.dns_selector), POD_NAMESPACE_LABEL: k8s_name(s.dns_namespace)}
        return {
            "kind": "CiliumClusterwideNetworkPolicy" if s.scope == "cluster" else "CiliumNetworkPolicy",
            "name": s.name,
            "namespace": s.namespace if s.scope == "namespace" else None,
            "labels": k8s.object_labels(s.name),
            "endpoint_labels": k8s.label_pairs(s.endpoint_selector),
            "dns_labels": k8s.label_pairs(dns_labels),
            "dns_port": k8s.DNS_PORT,
            "match_names": [f for f in fqdns if not f.startswith("*.")],
            "match_patterns": [f for f in fqdns if f.startswith("*.")],
        }
