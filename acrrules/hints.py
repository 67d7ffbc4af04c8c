"""Hints for a user who is lost: did-you-mean for a mistyped choice, the names other tools use for
the same thing, and what an input is when it is not what the command expected."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any

from .catalog import CLOUDS

# How the caller names the Service Tags input in a hint: the CLI's option, the Python API's parameter.
CLI_SERVICE_TAGS = "add --service-tags ServiceTags_<Cloud>_<date>.json"
API_SERVICE_TAGS = "pass service_tags= (a ServiceTags_<Cloud>_<date>.json path, or acrrules.load_service_tags())"

# Other names of a cloud: its Service Tags files' (ServiceTags_Public_*.json) and short forms.
CLOUD_ALIASES: dict[str, str] = {
    **{c.servicetags_cloud.lower(): c.name for c in CLOUDS.values()},
    "azure": "AzureCloud",
    "azurepublic": "AzureCloud",
    "usgov": "AzureUSGovernment",
    "azuregov": "AzureUSGovernment",
    "azurechina": "AzureChinaCloud",
}


def choices_text(choices: Iterable[str]) -> str:
    names = list(choices)
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def did_you_mean(value: str, choices: Iterable[str], aliases: Mapping[str, str] | None = None) -> str:
    """`did you mean X?` (or `X or Y`) when `value` is close to a choice, another name of one
    (`aliases`, by lower case) or the start of some; else the empty string."""
    names = list(choices)
    alias = (aliases or {}).get(value.lower())
    if alias is not None:
        return f"did you mean {alias}?"
    folded = {n.lower(): n for n in names}
    if value.lower() in folded:
        return f"did you mean {folded[value.lower()]}? (the names are case-sensitive)"
    near = [n for n in names if value and n.lower().startswith(value.lower())]
    near += [folded[n] for n in difflib.get_close_matches(value.lower(), list(folded), n=3, cutoff=0.6)]
    near = list(dict.fromkeys(near))[:3]
    return f"did you mean {' or '.join(near)}?" if near else ""


def unknown(what: str, value: str, choices: Iterable[str], aliases: Mapping[str, str] | None = None) -> str:
    """`unknown target 'nsg': did you mean nsg-arm or nsg-tf? Choose from ...`."""
    names = list(choices)
    hint = did_you_mean(value, names, aliases)
    return f"unknown {what} {value!r}: {hint + ' ' if hint else ''}choose from {', '.join(names)}"


def cloud_alias_note(value: str) -> str:
    """Why `value` looks like a cloud name to the user, when it is another name for one."""
    name = CLOUD_ALIASES.get(value.lower())
    if name is None:
        return ""
    for c in CLOUDS.values():
        if c.name == name and c.servicetags_cloud.lower() == value.lower():
            return f" ({c.servicetags_cloud} is what the Service Tags files of {name} are called: ServiceTags_{c.servicetags_cloud}_<date>.json)"
    return ""


def looks_like_service_tags(data: Any) -> bool:
    """A Service Tags file's top level (Microsoft's weekly download or `az network list-service-tags`)."""
    return isinstance(data, dict) and "values" in data and ("changeNumber" in data or "cloud" in data)


def service_tags_given_as_description(data: dict[str, Any]) -> str:
    """What to say when a Service Tags file is given where a description is expected."""
    cloud, change = data.get("cloud"), data.get("changeNumber")
    what = ", ".join(f"{k} {v!r}" for k, v in (("cloud", cloud), ("changeNumber", change)) if isinstance(v, (str, int)))
    return (
        f"this is a Service Tags file{f' ({what})' if what else ''}, not a registry description: pass it with "
        "--service-tags FILE (e.g. `acrrules render acr.yaml --service-tags FILE`), and give the description "
        "(YAML, `version: 1` and `registries:`) as SPEC"
    )
