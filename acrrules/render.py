"""Stage 5: render a RulePlan through the templates of each target.

The Jinja environment is strict (an undefined name is an error, never an empty
string) and does no implicit escaping: every value a template prints goes
through the escaping filter of that output language, named explicitly.
"""
from __future__ import annotations

import functools
import ipaddress
import json
import re
import unicodedata
from pathlib import Path
from typing import Any, Iterable, NamedTuple

import jinja2

from . import __version__, catalog
from .paths import compiled_templates_dir, templates_dir
from .plan import Prefix, RulePlan


class EscapeError(ValueError):
    """A value cannot be written safely in the output language."""


# ---- escaping filters, one family per output language -------------------------------

def _plain_ascii(s: str) -> bool:
    """Printable ASCII only: no character of the categories the filters below rewrite."""
    return s.isascii() and s.isprintable()


_SURROGATE = re.compile("[\ud800-\udfff]")


def _encodable(s: str) -> str:
    """Lone surrogates become U+FFFD: they are the undecodable bytes of a file name as Python
    reads the command line, and neither UTF-8 nor any output format can hold them."""
    return s if s.isascii() else _SURROGATE.sub("\ufffd", s)


def _printable(s: str, replacement: str = " ") -> str:
    """Replace control and line/paragraph separator characters (they would end a comment line)."""
    s = _encodable(str(s))
    if _plain_ascii(s):
        return s  # the common case, without a category lookup per character
    return "".join(replacement if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") else c for c in s)


def hcl_string(value: Any) -> str:
    """A quoted HCL string literal that reads back as exactly `value` (in Unicode NFC), with no interpolation.

    HCL normalizes every string to NFC, escapes included, so the literal is written in NFC
    too: what the file says is what Terraform sees.
    """
    s = _encodable(str(value))
    if _plain_ascii(s) and "\\" not in s and '"' not in s and "${" not in s and "%{" not in s:
        return '"' + s + '"'  # nothing to escape: the loop below would copy every character
    s = unicodedata.normalize("NFC", s)
    out = []
    i = 0
    while i < len(s):
        c = s[i]
        nxt = s[i + 1] if i + 1 < len(s) else ""
        if c == "\\":
            out.append("\\\\")
        elif c == '"':
            out.append('\\"')
        elif c == "\n":
            out.append("\\n")
        elif c == "\r":
            out.append("\\r")
        elif c == "\t":
            out.append("\\t")
        elif c in "$%" and nxt == "{":
            out.append(c + c + "{")   # $${ and %%{ are the literal forms of ${ and %{
            i += 2
            continue
        elif unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp"):
            out.append(f"\\u{ord(c):04x}" if ord(c) <= 0xFFFF else f"\\U{ord(c):08x}")
        else:
            out.append(c)
        i += 1
    return '"' + "".join(out) + '"'


def hcl_list(values: Iterable[Any]) -> str:
    return "[" + ", ".join(hcl_string(v) for v in values) + "]"


_HCL_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def hcl_ident(value: Any) -> str:
    s = str(value)
    if not _HCL_IDENT.match(s):
        raise EscapeError(f"{s!r} is not a valid HCL identifier")
    return s


def comment(value: Any) -> str:
    """Text for a one-line `#` comment (HCL, nft, shell, iptables-restore)."""
    return _printable(value)


def integer(value: Any) -> str:
    """A whole number (priorities, ports, counts): anything else would be raw text in the output."""
    if type(value) is not int:
        raise EscapeError(f"{value!r} is not an integer")
    return str(value)


def json_value(value: Any) -> str:
    return json.dumps(_encodable(value) if isinstance(value, str) else value, ensure_ascii=False)


def arm_string(value: Any) -> str:
    """A JSON string that ARM reads as a literal.

    ARM evaluates a string that starts with '[' and ends with ']' as an expression;
    '[[' escapes that, and only that: "[a] b" is already a literal and stays as it is.
    """
    s = _encodable(str(value))
    if s.startswith("[") and s.endswith("]"):
        s = "[" + s
    return json.dumps(s, ensure_ascii=False)


def arm_literal(value: Any) -> str:
    """A string literal inside an ARM expression: single quotes, doubled to escape."""
    return "'" + _encodable(str(value)).replace("'", "''") + "'"


_NFT_IDENT = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def nft_ident(value: Any) -> str:
    s = str(value)
    if not _NFT_IDENT.match(s):
        raise EscapeError(f"{s!r} is not a valid nftables identifier")
    return s


def nft_string(value: Any) -> str:
    """A quoted nft string (e.g. a rule comment): nft has no escape for '"', so it is replaced."""
    s = _printable(value).replace('"', "'").replace("\\", "/")
    return '"' + s.encode("utf-8")[:120].decode("utf-8", "ignore") + '"'


_SHELL_WORD = re.compile(r"^[A-Za-z0-9_./:,@%+=-]+$")


def shell_word(value: Any) -> str:
    """A word for iptables-restore / ipset restore lines, which split on blanks and know only "..." quoting."""
    s = str(value)
    if _SHELL_WORD.match(s):
        return s
    cleaned = _printable(s).replace('"', "'").replace("\\", "/")
    return '"' + cleaned[:200] + '"'


_NETFILTER_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,30}$")


def netfilter_name(value: Any) -> str:
    """An iptables chain or ipset set name: iptables-restore cannot quote a chain name, so refuse, never quote."""
    s = str(value)
    if not _NETFILTER_NAME.match(s):
        raise EscapeError(f"{s!r} is not a valid iptables chain or ipset name")
    return s


_IP_TYPES = (ipaddress.IPv4Network, ipaddress.IPv6Network, ipaddress.IPv4Address, ipaddress.IPv6Address)


def ip_literal(value: Any) -> str:
    """An IP address or network in canonical form (nft, iptables, ipset); anything else is refused."""
    if isinstance(value, Prefix):
        try:
            return _prefix_text(value)  # digits, dots, colons and a length (Prefix checks its ranges)
        except (TypeError, ValueError):
            raise EscapeError(f"{value!r} is not an IP network") from None
    if isinstance(value, _IP_TYPES):
        return str(value)  # already checked and canonical
    return _ip_literal(str(value))


@functools.lru_cache(maxsize=1 << 16)
def _prefix_text(prefix: Prefix) -> str:
    return str(prefix)  # cached: the nft and ipset files print the same prefixes


def ip_list(values: Iterable[Any]) -> str:
    """`a, b, c` of ip_literal values (nft set elements)."""
    return ", ".join(ip_literal(v) for v in values)


@functools.lru_cache(maxsize=1 << 16)
def _ip_literal(s: str) -> str:
    # Cached: the nft and ipset files print the same prefixes. The constructor is chosen by
    # the text (only IPv6 has ':'), as ip_network/ip_address would after a failed IPv4 try.
    try:
        if "%" in s:  # an IPv6 zone id (fe80::1%eth0): ipaddress takes it, netfilter syntax has no place for it
            raise ValueError(s)
        if "/" in s:
            return str(ipaddress.IPv6Network(s) if ":" in s else ipaddress.IPv4Network(s))
        return str(ipaddress.IPv6Address(s) if ":" in s else ipaddress.IPv4Address(s))
    except ValueError:
        raise EscapeError(f"{s!r} is not an IP address or network") from None


FILTERS = {
    "hcl": hcl_string,
    "hcl_list": hcl_list,
    "hcl_ident": hcl_ident,
    "comment": comment,
    "json": json_value,
    "integer": integer,
    "arm_string": arm_string,
    "arm_literal": arm_literal,
    "nft_ident": nft_ident,
    "nft_string": nft_string,
    "shell_word": shell_word,
    "netfilter_name": netfilter_name,
    "ip_literal": ip_literal,
    "ip_list": ip_list,
}


def _environment(loader: jinja2.BaseLoader) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=loader,
        undefined=jinja2.StrictUndefined,
        autoescape=False,            # escaping is explicit, per output language (FILTERS)
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(FILTERS)
    return env


_JINJA_STAMP = "JINJA_VERSION"


@functools.cache
def environment() -> jinja2.Environment:
    """The templates as compiled when the package was built (setup.py), when they were compiled
    by the Jinja installed now; otherwise (a source checkout, Jinja upgraded since) compiled from
    templates/ at their first use in the run."""
    compiled = compiled_templates_dir()
    try:
        usable = (compiled / _JINJA_STAMP).read_text(encoding="utf-8") == jinja2.__version__
    except OSError:
        usable = False
    if usable:
        return _environment(jinja2.ModuleLoader(str(compiled)))
    return _environment(jinja2.FileSystemLoader(str(templates_dir())))


def compile_templates(target: str | Path) -> None:
    """Compile every template into a Python module in the folder `target` (for jinja2.ModuleLoader),
    and note the Jinja version that compiled them. setup.py runs this at build time."""
    _environment(jinja2.FileSystemLoader(str(templates_dir()))).compile_templates(str(target), zip=None)
    (Path(target) / _JINJA_STAMP).write_text(jinja2.__version__, encoding="utf-8")


# ---- targets -----------------------------------------------------------------------

class LimitProblem(NamedTuple):
    """A platform limit the plan would break; `path` points into the description."""

    path: tuple
    message: str


class Target:
    """One output format: a small Python renderer plus its template(s).

    Subclasses set `id`, `files` ((output name, template name) pairs) and build
    the template context in `context`; the logic lives there, the text format
    in the template.
    """

    id: str = ""
    files: tuple[tuple[str, str], ...] = ()
    needs_service_tags: bool = False

    def check(self, plan: RulePlan) -> list[LimitProblem]:
        """Platform limits this plan would break in this target (none by default)."""
        return []

    def context(self, plan: RulePlan) -> dict[str, Any]:
        raise NotImplementedError

    def render(self, plan: RulePlan) -> dict[str, str]:
        env = environment()
        ctx = {"header": header_lines(plan), "version": __version__, "port": catalog.PORT, "plan": plan,
               **self.context(plan)}
        return {name: env.get_template(template).render(ctx) for name, template in self.files}


def header_lines(plan: RulePlan) -> list[str]:
    desc = plan.description
    lines = [
        f"Generated by acrrules {__version__} from {desc.source_name}; do not edit.",
        "Change the description and run `acrrules render` again.",
        f"Cloud: {desc.cloud}. Registries: {', '.join(r.name for r in desc.registries[:10])}"
        + (f" and {len(desc.registries) - 10} more." if len(desc.registries) > 10 else "."),
    ]
    if plan.prefixes is not None:
        p = plan.prefixes
        lines.append(f"Service Tags file: {p.file_name} (cloud {p.cloud}, changeNumber {p.change_number}).")
    return lines
