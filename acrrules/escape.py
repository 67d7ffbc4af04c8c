"""The escaping filters, one family per output language: every value a template prints goes
through the filter of its output's language, named explicitly in the template.  A filter writes
the value so that the language's real reader reads back exactly it (tests round-trip each through
terraform, python-hcl2, nft, iptables-restore, squid, PyYAML, markdown-it), or refuses it with
EscapeError when the language has no safe way to write it.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import re
import unicodedata
from collections.abc import Iterable
from typing import Any

from .plan import Prefix


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
            out.append(c + c + "{")  # $${ and %%{ are the literal forms of ${ and %{
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


# GitHub Actions reads `::command::` at the start of a log line (leading blanks aside) and the
# older `##[command]` anywhere in one: `::error::`, `::add-mask::`, `::stop-commands::`, ...
_WORKFLOW_COMMAND = re.compile(r"^(\s*):(?=:)|#(?=#\[)")


def terminal(value: Any) -> str:
    """Untrusted text (a tag, a rule name, a path) for a terminal or a CI log, on one line: control,
    format (bidi), separator, private-use and unassigned characters as visible escapes (`\\x1b`,
    `\\n`, `\\u202e`), so no value can move the cursor, colour or reorder the text, or start a line of
    its own; and no GitHub workflow command: a `::` at its start and every `##[` are written
    with their first character escaped (`\\x3a:error::`, `\\x23#[`)."""
    s = _encodable(str(value))
    if not _plain_ascii(s):
        s = "".join(_visible(c) for c in s)
    return _WORKFLOW_COMMAND.sub(lambda m: (m.group(1) or "") + ("\\x3a" if m.group(0).endswith(":") else "\\x23"), s)


_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _visible(c: str) -> str:
    if c in _SHORT:
        return _SHORT[c]
    if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"):
        n = ord(c)
        return f"\\x{n:02x}" if n < 0x100 else f"\\u{n:04x}" if n <= 0xFFFF else f"\\U{n:08x}"
    return c


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


# ---- Markdown (acrrules report) ------------------------------------------------------

# Characters that CommonMark and GitHub's extensions read as syntax inside a line: escapes,
# code spans, emphasis, links and images, autolinks and HTML, entities, table cells,
# strikethrough, math, and a heading's closing #s. A backslash makes any of them literal.
_MD_SPECIAL = frozenset("\\`*_[]<>|!&~$#")


def md_text(value: Any) -> str:
    """Literal text for a Markdown table cell or heading: one line (control characters and line
    breaks become spaces, as a line break would end the table row), every character Markdown
    would read as syntax escaped with a backslash."""
    s = _printable(value)
    if _MD_SPECIAL.isdisjoint(s):
        return s
    return "".join("\\" + c if c in _MD_SPECIAL else c for c in s)


def md_code(value: Any) -> str:
    """A code span (FQDNs, tags, prefixes, file names), or md_text when the value holds what a code
    span cannot show the same in every renderer (backticks, `|` in a table, backslashes, edge spaces)."""
    s = _printable(value)
    if not s or s != s.strip() or any(c in s for c in "`|\\"):
        return md_text(value)
    return "`" + s + "`"


_MERMAID_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 .,:/()*+_-")


def mermaid_label(value: Any) -> str:
    """Text inside a quoted Mermaid label ("..."): every other character as Mermaid's entity code
    (#60; for <), so no value can end the label, start markup or break out of the diagram."""
    s = _printable(value)
    return "".join(c if c in _MERMAID_SAFE else f"#{ord(c)};" for c in s)


# ---- squid (acrrules-squid.conf) and plain host lists (no_proxy.txt, the lists target) -------
# squid.conf has no quoting for ACL names or dstdomain values ("..." names a file to read), and
# plain lists have none at all: what is not already a plain name is refused, never quoted.

_DNS_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOST = re.compile(rf"(?:{_DNS_LABEL}\.)*{_DNS_LABEL}")
HOST_NAME_MAX = 253


def is_host_name(name: str) -> bool:
    """A lower-case DNS host name: letters, digits, '-'; labels of 1-63, at most HOST_NAME_MAX in all."""
    return len(name) <= HOST_NAME_MAX and _HOST.fullmatch(name) is not None  # fullmatch: `$` matches before "\n"


def _host(value: Any, what: str, wildcard: str = "") -> str:
    """A host name (is_host_name), optionally behind `wildcard`."""
    s = str(value)
    name = s[len(wildcard) :] if wildcard and s.startswith(wildcard) else s
    if not is_host_name(name):
        raise EscapeError(f"{s!r} is not {what}")
    return s


def squid_domain(value: Any) -> str:
    """A dstdomain entry: a host name, or `.domain` for the domain and every name under it."""
    return _host(value, "a host name or .domain for a squid dstdomain ACL", ".")


# squid 5.7 takes 63 characters in `acl NAME`, but finds only 62 of them in an http_access line.
_SQUID_ACL_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,61}")


def squid_acl_name(value: Any) -> str:
    """A squid ACL name: a letter, then letters, digits, '_' or '-' (squid compares them ignoring case)."""
    s = str(value)
    if not _SQUID_ACL_NAME.fullmatch(s):
        raise EscapeError(f"{s!r} is not a squid ACL name (a letter, then at most 61 letters, digits, '_' or '-')")
    return s


# squid reads squid.conf in chunks of BUFSIZ - 1 bytes (8191 with glibc): the rest of a longer `#` line is
# read as a line of its own, a directive. Comment lines stay far below that.
SQUID_COMMENT_MAX_BYTES = 1000


def squid_comment(value: Any) -> str:
    """Text for a one-line `#` comment of squid.conf, at most SQUID_COMMENT_MAX_BYTES of UTF-8."""
    s = _printable(value)
    if len(s) <= SQUID_COMMENT_MAX_BYTES // 4 or len(s.encode("utf-8")) <= SQUID_COMMENT_MAX_BYTES:
        return s
    return s.encode("utf-8")[: SQUID_COMMENT_MAX_BYTES - 3].decode("utf-8", "ignore") + "..."


def list_fqdn(value: Any) -> str:
    """One line of a plain FQDN list (EDL, threat feed, URL table): a host name or `*.domain`."""
    return _host(value, "a host name or *.domain for a plain FQDN list", "*.")


def no_proxy_list(values: Iterable[Any]) -> str:
    """The comma-separated NO_PROXY value of host names (a wildcard or a ',' would mean something else)."""
    return ",".join(_host(v, "a host name for NO_PROXY") for v in values)


# ---- YAML and Kubernetes (cilium.yaml, calico.yaml) ----------------------------------
#
# Two kinds of filter: `yaml_string` and `yaml_comment` escape (any text becomes a scalar that
# reads back as exactly that text, or one comment line); the Kubernetes ones refuse (EscapeError)
# what the API server or the CNI would reject, and return the value unchanged, so templates
# chain them: `{{ name|k8s_name|yaml_string }}`.  Every scalar is double-quoted: a plain `yes`,
# `on`, `null`, `0x1F` or `::1` would be read as something else by YAML 1.1 readers.

# (Patterns are used with fullmatch: `$` would accept a trailing newline.)
# What a YAML stream may hold raw (YAML 1.1/1.2 "printable"); the rest must be escaped.
_YAML_NOT_PRINTABLE = re.compile("[^\t\n\r\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_YAML_QUOTED_AS_IS = re.compile(r"[ !#-\[\]-~]*")  # printable ASCII but '"' and '\'
_YAML_SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"}


def yaml_string(value: Any) -> str:
    """A double-quoted YAML scalar that reads back as exactly `value` (lone surrogates as U+FFFD).

    Control, format, separator, private-use, surrogate and unassigned characters are written as
    `\\uXXXX` / `\\UXXXXXXXX` escapes (never as JSON's surrogate pairs, which YAML reads as two
    characters); U+0085, U+2028 and U+2029 especially, which YAML would fold as line breaks.
    """
    s = _encodable(str(value))
    if _YAML_QUOTED_AS_IS.fullmatch(s):
        return '"' + s + '"'
    out = []
    for c in s:
        if c in _YAML_SHORT_ESCAPES:
            out.append(_YAML_SHORT_ESCAPES[c])
        elif " " <= c <= "~":
            out.append(c)
        elif c < " " or c == "\x7f" or unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"):
            out.append(f"\\u{ord(c):04x}" if ord(c) <= 0xFFFF else f"\\U{ord(c):08x}")
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def yaml_comment(value: Any) -> str:
    """Text for a one-line YAML `#` comment: no line break of any kind, nothing a YAML reader refuses."""
    return _YAML_NOT_PRINTABLE.sub("\ufffd", _printable(value))


_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_DNS1123_SUBDOMAIN = re.compile(r"(?=.{1,253}\Z)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_K8S_LABEL_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")
_K8S_LABEL_VALUE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?")


def k8s_name(value: Any) -> str:
    """An object name or namespace: a DNS-1123 label (what every kind acrrules writes accepts)."""
    s = value if isinstance(value, str) else ""
    if not _DNS1123_LABEL.fullmatch(s):
        raise EscapeError(
            f"{value!r} is not a Kubernetes name (a DNS-1123 label: at most 63 lower-case "
            "letters, digits and '-', starting and ending with a letter or digit)"
        )
    return s


def k8s_label_key(value: Any) -> str:
    """A label key: `[prefix/]name`, the prefix a DNS-1123 subdomain, the name at most 63 characters."""
    s = value if isinstance(value, str) else ""
    prefix, slash, name = s.rpartition("/")
    if not _K8S_LABEL_NAME.fullmatch(name) or (slash and not _DNS1123_SUBDOMAIN.fullmatch(prefix)):
        raise EscapeError(
            f"{value!r} is not a Kubernetes label key ([prefix/]name: the name at most 63 letters, "
            "digits, '-', '_' or '.', the prefix a DNS subdomain)"
        )
    return s


def k8s_label_value(value: Any) -> str:
    """A label value: at most 63 letters, digits, '-', '_' or '.', starting and ending alphanumeric (or empty)."""
    s = value if isinstance(value, str) else None
    if s is None or not _K8S_LABEL_VALUE.fullmatch(s):
        raise EscapeError(
            f"{value!r} is not a Kubernetes label value (at most 63 letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit)"
        )
    return s


def calico_selector(labels: Any) -> str:
    """A Calico selector expression matching every label of `labels` (key -> value):
    `k == 'v' && ...` in key order, `all()` for none.  Calico string literals have no escapes,
    so only valid label keys and values (which hold no quote) are written; the rest is refused."""
    pairs = sorted(dict(labels).items())
    if not pairs:
        return "all()"
    return " && ".join(f"{k8s_label_key(k)} == '{k8s_label_value(v)}'" for k, v in pairs)


_DNS_NAME_LABEL = re.compile(r"[A-Za-z0-9_]([-A-Za-z0-9_]{0,61}[A-Za-z0-9_])?")


def dns_name(value: Any) -> str:
    """An exact DNS name (Cilium `matchName`): labels of letters, digits, '-' and '_', at most 253 characters."""
    s = value if isinstance(value, str) else ""
    if not (0 < len(s) <= 253 and all(_DNS_NAME_LABEL.fullmatch(label) for label in s.split("."))):
        raise EscapeError(f"{value!r} is not a DNS name")
    return s


def dns_wildcard(value: Any) -> str:
    """A wildcard DNS name `*.name` (Cilium `matchPattern`: one label of any name under `name`)."""
    s = value if isinstance(value, str) else ""
    if not s.startswith("*.") or len(s) > 253:
        raise EscapeError(f"{value!r} is not a wildcard DNS name ('*.' and a DNS name)")
    dns_name(s[2:])
    return s


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
    "md_text": md_text,
    "md_code": md_code,
    "mermaid_label": mermaid_label,
    # squid and plain lists
    "squid_domain": squid_domain,
    "squid_acl_name": squid_acl_name,
    "squid_comment": squid_comment,
    "list_fqdn": list_fqdn,
    "no_proxy_list": no_proxy_list,
    # YAML and Kubernetes
    "yaml_string": yaml_string,
    "yaml_comment": yaml_comment,
    "k8s_name": k8s_name,
    "k8s_label_key": k8s_label_key,
    "k8s_label_value": k8s_label_value,
    "calico_selector": calico_selector,
    "dns_name": dns_name,
    "dns_wildcard": dns_wildcard,
}
