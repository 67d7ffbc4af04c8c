"""calico: `calico.yaml`, Calico network sets and one policy (`projectcalico.org/v3`), applied with
`kubectl apply` (Calico API server) or `calicoctl apply`.

- `GlobalNetworkSet`s `<name>-v4-01`, `<name>-v4-02`, … and `<name>-v6-01`, … hold the merged
  prefixes of the plan's service tags (from `--service-tags`), at most NETS_PER_SET each, so
  every object stays far below the API's size limits (see OBJECT_BUDGET_BYTES);
- a `GlobalNetworkPolicy` `<name>` selects the pods whose labels include `selector` (and, with
  `namespace`, only in that namespace) and allows their egress: DNS (UDP and TCP 53) to the
  cluster DNS pods, and TCP 443 to the network sets, which it reaches by their label
  `acrrules/policy: <name>` with `namespaceSelector: global()`, so that only non-namespaced
  resources match (no pod, whoever labels it).  A selector rule matches IPv4 and IPv6 sets alike,
  so the one-IP-family-per-rule rule of `nets` does not arise.

Calico denies the other egress of the pods a policy with `types: [Egress]` selects, unless a
policy in the same tier allows it.  The policy has no final Deny, so other policies can add to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, NamedTuple

from .. import catalog
from ..escape import EscapeError, calico_selector, k8s_name
from ..plan import Prefix, RulePlan
from ..render import LimitProblem, Target
from . import kubernetes as k8s
from .netfilter import chunks, family_prefixes, tag_lines

# The size budget of one object, as the API server stores it (JSON).  etcd refuses requests
# over 1.5 MiB, and `kubectl apply` copies the whole object into its last-applied-configuration
# annotation, where all annotations together may hold at most 256 KiB: 64 KiB is far below both.
OBJECT_BUDGET_BYTES = 64 * 1024
NETS_PER_SET = 1000
MAX_NET_JSON_BYTES = len('"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128",')  # the longest prefix, quoted
METADATA_MAX_BYTES = 1024  # apiVersion, kind, name and labels: a few hundred bytes
assert NETS_PER_SET * MAX_NET_JSON_BYTES + METADATA_MAX_BYTES <= OBJECT_BUDGET_BYTES

NAME_MAX = 50  # leaves room for the sets' `-v6-NN` within a 63-character label
SELECTOR_MAX = 1024  # Calico's maxLength of a selector
NAMESPACE_LABEL = "projectcalico.org/name"  # Calico labels every namespace with its name
# The namespaceSelector of the TCP 443 rule: non-namespaced resources only (GlobalNetworkSets, host
# endpoints). Without it a GlobalNetworkPolicy rule's selector also matches pods in every namespace
# ("resources in any namespace and non-namespaced resources", Calico's docs), so a pod that a tenant
# labels acrrules/policy=<name> would become an allowed destination.
GLOBAL_ONLY = "global()"


class CalicoSettings(NamedTuple):
    """targets.calico with defaults applied (name and selector from the description's name)."""

    name: str = catalog.DEFAULT_NAME
    selector: Mapping[str, str] = k8s.opt_in_selector(catalog.DEFAULT_NAME)
    namespace: str | None = None
    order: int | None = None
    dns_namespace: str = k8s.DNS_NAMESPACE
    dns_selector: Mapping[str, str] = k8s.DNS_SELECTOR


class NetSet(NamedTuple):
    name: str
    version: int
    nets: tuple[Prefix, ...]


def net_sets(name: str, plan: RulePlan) -> list[NetSet]:
    """The prefixes of each IP version, in address order, NETS_PER_SET to a set."""
    out = []
    for version in (4, 6):
        for i, nets in enumerate(chunks(family_prefixes(plan, version), NETS_PER_SET), 1):
            out.append(NetSet(f"{name}-v{version}-{i:02d}", version, nets))
    return out


class CalicoTarget(Target):
    id = "calico"
    files = (("calico.yaml", "calico.yaml.j2"),)
    needs_service_tags = True
    Settings = CalicoSettings
    settings_schema: ClassVar[dict[str, Any]] = {
        "description": "Calico GlobalNetworkSets of the merged prefixes and a GlobalNetworkPolicy (calico.yaml) "
        "allowing TCP 443 to them and DNS to the cluster DNS, for the pods selector selects.",
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "name": k8s.name_schema(
                NAME_MAX,
                "The policy's name, and the prefix of the network sets' names "
                "(<name>-v4-01, ...). Default: the description's name.",
            ),
            "selector": k8s.label_map_schema(
                "The labels of the pods the policy selects (all of them must match), in every namespace unless "
                "namespace is set. Default: {acrrules/egress-<name>: allow}, so only pods that carry that label "
                "are selected."
            ),
            "namespace": {
                **k8s.NAMESPACE_SCHEMA,
                "description": "Select pods of this namespace only. Default: pods of every namespace.",
            },
            "order": {
                "description": "The policy's order in its tier (lower first). Default: none, which Calico "
                "evaluates after every policy that has one.",
                "type": "integer",
                "minimum": 0,
                "maximum": 1000000000,
            },
            **k8s.dns_settings_schema(),
        },
    }

    def default_settings(self, plan: RulePlan) -> dict[str, Any]:
        name = plan.description.name
        return {"name": name, "selector": k8s.opt_in_selector(name)}

    def object_names(self, plan: RulePlan) -> tuple[tuple[str, Any], ...]:
        s = self.settings(plan)
        return (
            ("policy", s.name),
            ("networkSets", f"{s.name}-v4-NN, {s.name}-v6-NN"),
            ("selector", tuple(f"{k}={v}" for k, v in sorted(s.selector.items()))),
        )

    def check(self, plan: RulePlan) -> list[LimitProblem]:
        s = self.settings(plan)
        where = ("targets", self.id, "selector")
        if not s.selector:
            return [
                LimitProblem(
                    where,
                    (
                        "targets.calico.selector: an empty selector selects every endpoint of the cluster (kube-system's "
                        "pods and host endpoints too) and denies all their other egress: give the labels of the pods to "
                        "select"
                    ),
                )
            ]
        try:
            expression = calico_selector(s.selector)
        except EscapeError as e:  # only through the API: the schema checks keys and values
            return [LimitProblem(where, f"targets.calico.selector: {e}")]
        if len(expression) > SELECTOR_MAX:
            return [
                LimitProblem(
                    where,
                    (
                        f"targets.calico.selector: the selector expression would be {len(expression)} characters, but "
                        f"Calico takes at most {SELECTOR_MAX}: select by fewer or shorter labels"
                    ),
                )
            ]
        return []

    def context(self, plan: RulePlan) -> dict[str, Any]:
        s = self.settings(plan)
        return {
            "sets": net_sets(s.name, plan),
            "name": s.name,
            "labels": k8s.object_labels(s.name),
            "order": s.order,
            "selector": s.selector,
            # (a namespace is printed as a label value: k8s_name refuses what is no namespace name)
            "namespace_selector": {NAMESPACE_LABEL: k8s_name(s.namespace)} if s.namespace is not None else None,
            "dns_selector": s.dns_selector,
            "dns_namespace_selector": {NAMESPACE_LABEL: k8s_name(s.dns_namespace)},
            "dns_port": k8s.DNS_PORT,
            "set_selector": {k8s.POLICY_LABEL: s.name},
            "set_namespace_selector": GLOBAL_ONLY,
            "tags": tag_lines(plan),
        }
