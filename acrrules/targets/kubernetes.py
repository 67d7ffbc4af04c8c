"""What the Kubernetes targets (cilium, calico) share: names, labels, selectors and their schema.

The pods a policy selects are chosen by labels.  By default both targets select the pods that
opt in with the label `acrrules/egress-<name>: allow` (`<name>` the description's name): applying
a policy then changes nothing until pods carry that label, and a pod can opt in to several rule
sets.  Every object acrrules writes carries `app.kubernetes.io/managed-by: acrrules` and
`acrrules/policy: <object name>`; the Calico policy reaches its network sets by the latter, and
`kubectl apply --prune -l acrrules/policy=<name>` deletes the sets a smaller render left behind.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from .. import catalog

MANAGED_BY = ("app.kubernetes.io/managed-by", "acrrules")
POLICY_LABEL = "acrrules/policy"
OPT_IN_VALUE = "allow"

# kube-dns as most distributions label it (kubeadm, AKS, EKS, GKE, k3s: CoreDNS keeps the label).
DNS_NAMESPACE = "kube-system"
DNS_SELECTOR: Mapping[str, str] = MappingProxyType({"k8s-app": "kube-dns"})
DNS_PORT = catalog.DNS_PORT


def opt_in_label(name: str) -> str:
    """The label key a pod carries (value `allow`) to be selected by the rule set `name` by default."""
    return f"acrrules/egress-{name}"


def opt_in_selector(name: str) -> Mapping[str, str]:
    return MappingProxyType({opt_in_label(name): OPT_IN_VALUE})


def object_labels(object_name: str) -> tuple[tuple[str, str], ...]:
    """The labels of every object acrrules writes, in the order printed."""
    return (MANAGED_BY, (POLICY_LABEL, object_name))


def label_pairs(labels: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """A label map as sorted (key, value) pairs: the order printed, whatever the order written."""
    return tuple(sorted(dict(labels).items()))


# ---- the schema fragments --------------------------------------------------------------------


# DNS-1123 label; `max_length` leaves room for suffixes acrrules adds.
def name_schema(max_length: int, description: str) -> dict[str, Any]:
    return {
        "description": description,
        "type": "string",
        "pattern": f"^[a-z0-9]([-a-z0-9]{{0,{max_length - 2}}}[a-z0-9])?$",
        "x-message": (
            f"must be 1-{max_length} lower-case letters, digits or '-', starting and ending with a letter "
            "or digit (a DNS-1123 label: a Kubernetes object name)"
        ),
    }


NAMESPACE_SCHEMA: dict[str, Any] = {
    "type": "string",
    "pattern": "^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$",
    "x-message": (
        "must be 1-63 lower-case letters, digits or '-', starting and ending with a letter or digit "
        "(a Kubernetes namespace name)"
    ),
}

# A label key: an optional DNS-subdomain prefix (at most 253 characters) and '/', then a name of
# at most 63 characters (the lookahead bounds the prefix; JSON Schema regexes are ECMA-262).
LABEL_KEY_PATTERN = (
    r"^((?=[^/]{1,253}/)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
LABEL_VALUE_PATTERN = r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$"


def label_map_schema(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "type": "object",
        "propertyNames": {
            "pattern": LABEL_KEY_PATTERN,
            "x-message": (
                "is not a Kubernetes label key: [prefix/]name, the name at most 63 letters, digits, '-', "
                "'_' or '.' starting and ending with a letter or digit, the prefix a DNS subdomain"
            ),
        },
        "additionalProperties": {
            "type": "string",
            "pattern": LABEL_VALUE_PATTERN,
            "x-message": (
                "is not a Kubernetes label value: at most 63 letters, digits, '-', '_' or '.', starting "
                "and ending with a letter or digit"
            ),
        },
    }


def dns_settings_schema() -> dict[str, dict[str, Any]]:
    """`dns_namespace` and `dns_selector`: where the cluster DNS runs, which the selected pods may query."""
    return {
        "dns_namespace": {
            **NAMESPACE_SCHEMA,
            "default": DNS_NAMESPACE,
            "description": "The namespace of the cluster DNS pods the selected pods may query on port 53.",
        },
        "dns_selector": {
            **label_map_schema("The labels of the cluster DNS pods (in dns_namespace)."),
            "default": dict(DNS_SELECTOR),
        },
    }
