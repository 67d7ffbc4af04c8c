"""lists: plain lists, one entry per line, for firewalls that read external lists by URL (Palo Alto
external dynamic lists, FortiGate threat feeds, pfSense/OPNsense URL table aliases).

- `edl-fqdn.txt`: every endpoint FQDN, wildcards as `*.x`, sorted.  Needs only the description.
  With `trailing_slash`, each as `name/` (PAN-OS URL List end token; see ListsSettings).
- `edl-ipv4.txt`, `edl-ipv6.txt`: the merged prefixes of the service tags, in address order: the same
  prefixes as the nftables sets and ipsets.  They come from the Service Tags file, so they are rendered
  only with --service-tags (prefix_files); without it the target writes edl-fqdn.txt alone and render
  says which files it left out.

No file has a header: none of these consumers documents a comment line (PAN-OS IP lists take a
comment only after an entry on the same line; domain lists and FortiGate feeds, none), so every line is
an entry (docs/targets.md, "Files without a header").  The lists are destinations only: `sources` belong to the
firewall rule that uses them.
"""

from __future__ import annotations

from typing import Any, ClassVar, NamedTuple

from ..plan import RulePlan
from ..render import LimitProblem, Target, unwritable_registry_names


class ListsSettings(NamedTuple):
    """targets.lists with defaults applied."""

    # Write every FQDN as `name/`: the end token of a PAN-OS URL List entry. Without it, PAN-OS 10.1 and
    # earlier (unless `append-end-token` is set) read `contoso.azurecr.io` as a prefix of the URL, which
    # `contoso.azurecr.io.attacker.example` also has; PAN-OS 10.2 and later append it themselves.
    trailing_slash: bool = False


class ListsTarget(Target):
    id = "lists"
    files = (
        ("edl-fqdn.txt", "edl-fqdn.txt.j2"),
        ("edl-ipv4.txt", "edl-ipv4.txt.j2"),
        ("edl-ipv6.txt", "edl-ipv6.txt.j2"),
    )
    prefix_files = ("edl-ipv4.txt", "edl-ipv6.txt")
    plain_files = ("edl-fqdn.txt", "edl-ipv4.txt", "edl-ipv6.txt")
    settings_schema: ClassVar[dict[str, Any]] = {
        "description": "Plain lists for firewalls that read external lists by URL: edl-fqdn.txt, and with "
        "--service-tags edl-ipv4.txt and edl-ipv6.txt.",
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "trailing_slash": {
                "type": "boolean",
                "default": False,
                "description": "Write each FQDN of edl-fqdn.txt as 'name/', for a Palo Alto URL List on PAN-OS 10.1 "
                "or earlier without append-end-token, where a bare 'name' also matches 'name.attacker.example'. "
                "Only for PAN-OS URL Lists: FortiGate and pfSense/OPNsense take no '/'. Default: false.",
            }
        },
    }
    Settings = ListsSettings

    def check(self, plan: RulePlan) -> list[LimitProblem]:
        return unwritable_registry_names(plan, "edl-fqdn.txt")

    def context(self, plan: RulePlan) -> dict[str, Any]:
        p = plan.prefixes
        return {
            "fqdns": tuple(sorted({e.fqdn.lower() for e in plan.endpoints})),
            "end_token": self.settings(plan).trailing_slash,
            "v4_prefixes": p.v4_prefixes if p is not None else (),
            "v6_prefixes": p.v6_prefixes if p is not None else (),
        }
