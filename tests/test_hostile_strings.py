"""Hostile strings cannot break out of HCL, JSON/ARM, nft or iptables syntax.

The schema keeps such values out of the CLI, so these tests use the Python API
(Description / RegistrySpec with target settings built directly) and the escaping
filters themselves:

1. Each filter of acrrules.render round-trips arbitrary text through the real
   reader of its language (python-hcl2 + terraform fmt, json + ARM's
   expression rule, nft, iptables-restore), or refuses it.
2. Every target rendered with a hostile value in each field either raises a
   clear error (the value cannot be made safe there) or produces files that
   the real consumer loads and whose structure (resources, attributes, chains,
   sets, rules) is exactly that of the same render with a harmless value.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import os
import re
import subprocess
import textwrap
import unicodedata
from pathlib import Path

import consumers
import pytest
from conftest import VALIDATORS, need_root_netns, need_shared, need_tool, terraform_fmt_check
from consumers import (
    CONSUMERS,
    HostileCase,
    arm_expression_literals,
    arm_reads,
    code_lines,
    hcl_unquote,
    parse_tf,
    readable,
    shape,
    yaml_reads,
)
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from acrrules import plan as planning
from acrrules import servicetags
from acrrules.errors import AcrrulesError
from acrrules.escape import (
    EscapeError,
    arm_literal,
    arm_string,
    calico_selector,
    comment,
    dns_name,
    dns_wildcard,
    hcl_ident,
    hcl_list,
    hcl_string,
    ip_literal,
    json_value,
    k8s_label_key,
    k8s_label_value,
    k8s_name,
    list_fqdn,
    nft_ident,
    nft_string,
    no_proxy_list,
    shell_word,
    squid_acl_name,
    squid_comment,
    squid_domain,
    yaml_comment,
    yaml_string,
)
from acrrules.model import Description, RegistrySpec
from acrrules.targets import TARGETS

GOOD_TAGS = Path(__file__).resolve().parent / "badinput" / "servicetags" / "good.json"

HOSTILE = [
    '"',
    "\\",
    '\\"',
    "\n",
    "\r\n",
    'a\nresource "x" "y" {}\n',
    "${var.firewall_policy_id}",
    "$${x}",
    "%{ if true }x%{ endif }",
    "%%{x}",
    "$",
    "%",
    "{",
    "}",
    "]",
    "[",
    "[concat('a', 'b')]",
    "[[x]",
    "[x] y",
    "it's",
    "a'b]",
    "';drop",
    "; flush ruleset",
    "# comment",
    "*/",
    "<<EOF\nx\nEOF",
    "-j ACCEPT",
    "--comment x",
    "\t",
    "\x00",
    "\x1b[31m",
    "\x7f",
    "\u2028",
    "\u2029",
    "\x85",
    "\ufeff",
    "é漢字🙂",
    " ",
    "",
    "a" * 300,
    "\\u0022",
    "\\n",
    "\\\n",
]

# What YAML readers take for something else than a string, when written plain.
YAML_HOSTILE = [
    "yes",
    "No",
    "on",
    "null",
    "~",
    "0x1F",
    "0o17",
    "1e3",
    "1_000",
    ".inf",
    "2001-01-01",
    "::1",
    "- a",
    "? x",
    ": x",
    "&a",
    "*a",
    "!!str",
    "|",
    ">-",
    "%YAML 1.2",
    "---",
    "...",
    "@x",
    "`x",
    '"""',
    "'",
    "{a: b}",
    "[a]",
    "#x",
    "a #b",
    "a: b",
    "\ufffe",
    "\uffff",
    "\U0001fffe",
    "\ue000",
    "\U000f0000",
    "\x85",
    "\u00a0",
    "\t x \t",
    "\u200b",
    "\U0001f642",
    "\x7f",
    "\x9f",
    "\\x41",
    "\\u0041",
]

NOT_NAMES = [v for v in HOSTILE if not v.isalnum()]

# ---- 1. the filters, one language at a time --------------------------------------------------------


def terraform_reads(tmp_path: Path, values: list[str]) -> list[str]:
    """What Go HCL (terraform console, offline) makes of each value written with hcl_string / hcl_list."""
    need_tool("terraform")
    folder = tmp_path / f"console{len(list(tmp_path.glob('console*')))}"
    folder.mkdir()
    body = "".join(f"  v{i:04d} = {hcl_string(v)}\n" for i, v in enumerate(values))
    (folder / "main.tf").write_text(f"locals {{\n{body}  all = {hcl_list(values)}\n}}\n", encoding="utf-8")
    refs = ", ".join(f"local.v{i:04d}" for i in range(len(values)))
    expression = f"base64encode(jsonencode([[{refs}], local.all]))\n"
    env = dict(os.environ, TF_CLI_CONFIG_FILE="/dev/null", CHECKPOINT_DISABLE="1")
    r = subprocess.run(
        ["terraform", "console"], input=expression, capture_output=True, text=True, cwd=folder, env=env, timeout=60
    )
    assert r.returncode == 0, r.stdout + r.stderr
    one_by_one, as_list = json.loads(base64.b64decode(json.loads(r.stdout.strip())))
    assert as_list == one_by_one
    return one_by_one


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(st.text(), min_size=1, max_size=40))
def test_hcl_string_reads_back_exactly_in_terraform(tmp_path_factory, values):
    # HCL normalizes every string to NFC (escapes too: "\uf900" reads as U+8C48), so that is the exact value.
    assert terraform_reads(tmp_path_factory.mktemp("hcl"), values) == [unicodedata.normalize("NFC", v) for v in values]


@settings(max_examples=100, deadline=None)
@given(st.text())
def test_hcl_string_reads_back_exactly_in_python_hcl2(value):
    """python-hcl2 (what tf_schema_check.py reads with) gets the same value, where its grammar can parse it."""
    assume(not _PYTHON_HCL2_CANNOT.search(hcl_string(value)))
    assert hcl_unquote(parse_tf(f"x = {hcl_string(value)}\n")["x"]) == unicodedata.normalize("NFC", value)


# python-hcl2 8 rejects an escaped interpolation or directive ($${ or %%{) right before the closing
# quote or another '{'; terraform reads both (see the tests above).
_PYTHON_HCL2_CANNOT = re.compile(r'(\$\$|%%)\{[{"]')


def test_hcl_strings_pass_terraform_fmt(tmp_path):
    """terraform (Go HCL) reads every hostile value as one plain string attribute, and exactly back."""
    values = HOSTILE + [f"{a}{b}" for a in ("$", "%", "\\", "$$", "%%") for b in ("{", "{{", "${", "%{")]
    body = "".join(f"  v{i:03d} = {hcl_string(v)}\n" for i, v in enumerate(values))
    f = tmp_path / "strings.tf"
    f.write_text("locals {\n" + body + "}\n", encoding="utf-8")
    r = terraform_fmt_check(f)
    assert r.returncode == 0, r.stdout + r.stderr
    assert terraform_reads(tmp_path, values) == values
    parseable = [(i, v) for i, v in enumerate(values) if not _PYTHON_HCL2_CANNOT.search(hcl_string(v))]
    doc = parse_tf("locals {\n" + "".join(f"  v{i:03d} = {hcl_string(v)}\n" for i, v in parseable) + "}\n")
    got = doc["locals"][0]
    assert [hcl_unquote(got[f"v{i:03d}"]) for i, _ in parseable] == [v for _, v in parseable]


@pytest.mark.parametrize("value", NOT_NAMES + ["1abc", "a.b", "a b"])
def test_hcl_ident_refuses_what_is_not_an_identifier(value):
    with pytest.raises(EscapeError):
        hcl_ident(value)


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_comment_is_one_line_everywhere(value):
    text = comment(value)
    assert len(f"# {text}".splitlines()) == 1  # Python's idea of a line break is the widest
    assert not set(text) & set("\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_json_and_arm_strings_read_back_as_literals(value):
    assert json.loads(json_value(value)) == value
    assert arm_reads(json.loads(arm_string(value))) == value
    literal = arm_literal(value)
    assert arm_expression_literals(f"[concat({literal}, 'x')]") == [value, "x"]


@pytest.mark.parametrize("value", NOT_NAMES + ["1abc", "a-b", "a.b", "ab c"])
def test_nft_ident_refuses_what_is_not_an_identifier(value):
    with pytest.raises(EscapeError):
        nft_ident(value)


@pytest.mark.parametrize("value", ["\udcff", "a\ud800b\udfff", "\udcff\n${x}[y]"])
def test_lone_surrogates_become_replacement_characters(value):
    """A file name with bytes that are not UTF-8 reaches the headers as lone surrogates: every string filter
    writes U+FFFD for them, so the output is UTF-8 and still reads back (everything else intact)."""
    want = readable(value)
    assert "\ufffd" in want
    for filtered in (
        hcl_string(value),
        comment(value),
        json_value(value),
        arm_string(value),
        arm_literal(value),
        nft_string(value),
        shell_word(value),
        squid_comment(value),
    ):
        filtered.encode("utf-8")
    assert hcl_unquote(hcl_string(value)) == want
    assert json.loads(json_value(value)) == want and json.loads(arm_string(value)) == want
    assert comment(value) == comment(want)


@pytest.mark.parametrize("value", HOSTILE + ["10.0.0.0/33", "10.0.0.1/8", "fe80::1%eth0", "10.0.0.0/8 ", "::/0;"])
def test_ip_literal_refuses_what_is_not_an_address(value):
    with pytest.raises(EscapeError):
        ip_literal(value)


NFT_COMMENTS = textwrap.dedent("""\
    table inet hostile {{
    \tchain c {{
    {rules}\t}}
    }}
""")


def test_nft_string_and_comment_load_in_nft(tmp_path):
    """Every hostile value as a rule comment and a `#` comment: nft loads exactly one rule per value."""
    need_root_netns()
    need_tool("nft")
    rules = "".join(f"\t\t# {comment(v)}\n\t\ttcp dport 443 accept comment {nft_string(v)}\n" for v in HOSTILE)
    f = tmp_path / "comments.nft"
    f.write_text(NFT_COMMENTS.format(rules=rules), encoding="utf-8")
    r = subprocess.run(
        ["unshare", "-n", "sh", "-c", 'nft -f "$1" && nft -j list ruleset', "sh", str(f)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    listed = [x["rule"] for x in json.loads(r.stdout)["nftables"] if "rule" in x]
    assert len(listed) == len(HOSTILE)
    assert {x["table"] for x in listed} == {"hostile"} and {x["chain"] for x in listed} == {"c"}


def test_shell_word_and_comment_load_in_iptables_restore(tmp_path):
    """Every hostile value as an iptables comment: one rule per value, no option injected."""
    need_root_netns()
    need_tool("iptables-restore", "iptables-save")
    lines = ["*filter", ":HOSTILE - [0:0]"]
    for v in HOSTILE:
        lines += [
            f"# {comment(v)}",
            f"-A HOSTILE -p tcp -m tcp --dport 443 -m comment --comment {shell_word(v)} -j ACCEPT",
        ]
    f = tmp_path / "comments.rules"
    f.write_text("\n".join(lines + ["COMMIT", ""]), encoding="utf-8")
    r = subprocess.run(
        ["unshare", "-n", "sh", "-c", 'iptables-restore "$1" && iptables-save', "sh", str(f)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    rules = [line for line in r.stdout.splitlines() if line.startswith("-A ")]
    assert len(rules) == len(HOSTILE)
    assert all(
        line.startswith("-A HOSTILE -p tcp -m tcp --dport 443 -m comment --comment ") and line.endswith(" -j ACCEPT")
        for line in rules
    ), rules


@pytest.mark.parametrize(
    "value",
    HOSTILE
    + [
        "example.com\n",
        "a..b",
        ".",
        "-a.com",
        "a-.com",
        "A.com",
        "a_b.com",
        "*.a.com",
        "a.com,b.com",
        "a" * 64 + ".com",
        ("a" * 63 + ".") * 4 + "com",
    ],
)
def test_host_name_filters_refuse_what_is_not_a_host_name(value):
    """squid.conf cannot quote a dstdomain ("..." reads a file) and plain lists have no quoting at all."""
    for f in (squid_domain, list_fqdn, lambda v: no_proxy_list([v])):
        if f is list_fqdn and value == "*.a.com":
            continue
        with pytest.raises(EscapeError):
            f(value)
    for f in (squid_domain, list_fqdn):
        with pytest.raises(EscapeError):
            f(("." if f is squid_domain else "*.") + value if value != "*.a.com" else "*" + value)


def test_host_name_filters_take_host_names():
    assert squid_domain(".blob.core.windows.net") == ".blob.core.windows.net"
    assert list_fqdn("*.blob.core.windows.net") == "*.blob.core.windows.net"
    assert no_proxy_list(["a.azurecr.io", "a.eastus.data.azurecr.io"]) == "a.azurecr.io,a.eastus.data.azurecr.io"
    assert no_proxy_list([]) == ""


@pytest.mark.parametrize("value", NOT_NAMES + ["1abc", "a.b", "a b", "acr\n", "a" * 63])
def test_squid_acl_name_refuses_what_is_not_a_name(value):
    with pytest.raises(EscapeError):
        squid_acl_name(value)


# squid reads squid.conf in chunks of 8191 bytes: the rest of a longer comment line is a directive.
SQUID_INJECTION = "x" * 8189 + "acl injected_dst dstdomain evil.example"  # after "# ": 8191 bytes, then a directive


def squid_directives(tmp_path: Path, comments: list[str]) -> list[str]:
    """The directives `squid -k parse` processes in a file of `# comment` lines and one acl line."""
    need_tool("squid")
    conf = tmp_path / f"comments{len(list(tmp_path.glob('comments*')))}.conf"
    lines = [
        "http_port 127.0.0.1:3128",
        *(f"# {c}" for c in comments),
        "acl ok_dst dstdomain example.com",
        "http_access deny all",
    ]
    conf.write_bytes(("\n".join(lines) + "\n").encode("utf-8"))
    r = subprocess.run(["squid", "-k", "parse", "-f", str(conf)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    return re.findall(r"\| Processing: (.*)", r.stdout + r.stderr)


def test_squid_comment_keeps_every_value_in_its_comment(tmp_path):
    """Every hostile value, and one past squid's line buffer, stays one comment line in a real squid."""
    values = HOSTILE + [SQUID_INJECTION, "é" * 5000 + "\nacl x dstdomain y", "\udcff" * 3000]
    assert squid_directives(tmp_path, [squid_comment(v) for v in values]) == [
        "http_port 127.0.0.1:3128",
        "acl ok_dst dstdomain example.com",
        "http_access deny all",
    ]
    assert all(len(squid_comment(v).encode("utf-8")) <= 1000 for v in values)
    # not vacuous: the same long line unfiltered is read as a directive
    assert "acl injected_dst dstdomain evil.example" in squid_directives(tmp_path, [SQUID_INJECTION])


# ---- YAML and Kubernetes (cilium.yaml, calico.yaml) -------------------------------------------------


@settings(max_examples=500, deadline=None)
@given(st.text())
def test_yaml_string_reads_back_exactly(value):
    """As a value, a list item and a mapping key, in block and flow style: exactly the value."""
    quoted = yaml_string(value)
    want = readable(value)
    assert "\n" not in quoted and quoted.startswith('"') and quoted.endswith('"')
    text = f"k: {quoted}\nl:\n  - {quoted}\nm:\n  {quoted}: 1\nf: {{a: [{quoted}]}}\n"
    assert yaml_reads(text) == [{"k": want, "l": [want], "m": {want: 1}, "f": {"a": [want]}}]


@pytest.mark.parametrize("value", HOSTILE + YAML_HOSTILE)
def test_yaml_string_reads_back_hostile_values(value):
    assert yaml_reads(f"- {yaml_string(value)}\n") == [[readable(value)]]


@settings(max_examples=500, deadline=None)
@given(st.text())
def test_yaml_comment_is_one_comment_line(value):
    text = yaml_comment(value)
    assert len(f"# {text}".splitlines()) == 1 and not set(text) & set("\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")
    assert yaml_reads(f"# {text}\nk: 1\n# {text}\n") == [{"k": 1}]


def _k8s_check_module():
    """The Kubernetes rules of ../shared's k8s_check.py (its regexes, copied from the Go validation), as an oracle."""
    import importlib.util

    need_shared()
    spec = importlib.util.spec_from_file_location("k8s_check", VALIDATORS / "k8s_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _accepts(filter_, value) -> bool:
    try:
        return filter_(value) == value
    except EscapeError:
        return False


K8S_TEXT = st.text(alphabet=st.sampled_from("az09-_./AZ:* é\t\"'"), max_size=70)


@settings(max_examples=500, deadline=None)
@given(
    st.one_of(K8S_TEXT, st.from_regex(r"[a-z0-9][-a-z0-9.]{0,70}(/[A-Za-z0-9][-A-Za-z0-9_.]{0,70})?", fullmatch=True))
)
def test_kubernetes_filters_accept_what_kubernetes_accepts(value):
    """k8s_name, k8s_label_key and k8s_label_value accept exactly what the API server's rules (as
    k8s_check.py copies them from the Go code) accept."""
    k8s = _k8s_check_module()
    assert _accepts(k8s_name, value) == bool(len(value) <= 63 and k8s.DNS1123_LABEL.match(value))
    assert _accepts(k8s_label_key, value) == (not k8s.qualified_name_errors(value))
    assert _accepts(k8s_label_value, value) == bool(len(value) <= 63 and k8s.LABEL_VALUE.match(value))


@pytest.mark.parametrize("value", NOT_NAMES + ["Abc", "a_b", "a.b", "-a", "a-", "a" * 64, "ab\n"])
def test_k8s_name_refuses_what_is_not_a_dns_label(value):
    with pytest.raises(EscapeError):
        k8s_name(value)


@pytest.mark.parametrize("value", NOT_NAMES + ["a" * 64, "/a", "a/", "A.b/c", "a/b/c", "a\n", None, 1])
def test_k8s_label_key_refuses_what_is_not_a_label_key(value):
    with pytest.raises(EscapeError):
        k8s_label_key(value)


@pytest.mark.parametrize("value", [v for v in NOT_NAMES if v] + ["a" * 64, "-a", "a\n", None, 1])
def test_k8s_label_value_refuses_what_is_not_a_label_value(value):
    with pytest.raises(EscapeError):
        k8s_label_value(value)


def test_calico_selector_writes_only_what_calico_can_read():
    """Calico string literals have no escapes: only label keys and values (which hold no quote) are written."""
    assert calico_selector({}) == "all()"
    assert calico_selector({"b": "2", "app.kubernetes.io/name": "x"}) == "app.kubernetes.io/name == 'x' && b == '2'"
    for key, value in [("a'b", "x"), ("a", "x' || all() || '"), ("a", 'x"'), ("a b", "x"), ("a", "x\ny")]:
        with pytest.raises(EscapeError):
            calico_selector({key: value})


@settings(max_examples=300, deadline=None)
@given(st.one_of(K8S_TEXT, st.from_regex(r"(\*\.)?([a-z0-9_][-a-z0-9_]{0,63}\.){1,4}[a-z]{2,5}", fullmatch=True)))
def test_dns_filters_write_only_what_ciliums_crd_accepts(value):
    """Whatever dns_name / dns_wildcard let through, Cilium's CRD pattern for matchName / matchPattern takes."""
    if _accepts(dns_name, value):
        assert re.fullmatch(r"([-a-zA-Z0-9_]+[.]?)+", value) and len(value) <= 255, value
    if _accepts(dns_wildcard, value):
        assert value.startswith("*.") and _accepts(dns_name, value[2:])
        assert re.fullmatch(r"[-a-zA-Z0-9_.*]+", value) and len(value) <= 255, value


@pytest.mark.parametrize("value", HOSTILE + ["a..b", ".a", "a.", "*", "*.", "a.*.b", "**.a", "a" * 64 + ".io"])
def test_dns_filters_refuse_what_is_not_a_dns_name(value):
    with pytest.raises(EscapeError):
        dns_name(value)
    with pytest.raises(EscapeError):
        dns_wildcard(value if value.startswith("*.") else "*." + value)


# ---- 2. every template, a hostile value in each field -------------------------------------------------

# The fields a hostile value goes into: the description's own, then each target's settings (its
# `hostile_fields` in tests/consumers.py), each with the harmless value of the baseline render.
COMMON_FIELDS = {"registry": "contosoacr", "source_name": "spec.yaml", "source": "10.0.0.0/8"}
BENIGN = dict(COMMON_FIELDS)
for _consumer in CONSUMERS.values():
    for _field, _benign in _consumer.hostile_fields.items():
        assert BENIGN.setdefault(_field, _benign) == _benign, f"{_field}: two harmless values"
# The fields of the targets that write YAML: their values get the YAML traps below too.
K8S_FIELDS = tuple(
    dict.fromkeys(
        f for c in CONSUMERS.values() if any(x.format is consumers.YAML for x in c.files) for f in c.hostile_fields
    )
)

TEMPLATE_VALUES = [
    '"',
    "\\",
    "\n",
    "${var.x}",
    "%{ if 1 }",
    '}\nresource "a" "b" {',
    "[concat('a')]",
    "a'b]",
    "; flush ruleset",
    "# x",
    "é漢字🙂",
    "\u2028",
    "\x00",
    "-j ACCEPT",
    "a b",
    "",
    "\udcff.yaml",
]


# Valid Kubernetes names and label values that a YAML reader takes for a boolean, null or number when
# written plain: they must reach the API server as the strings they are.
YAML_PLAIN_TRAPS = ["yes", "null", "on", "0x1f", "1e3", "123", "0o7", "y", "n", "true"]


def description(field: str, value: str) -> Description:
    v = dict(BENIGN, **{field: value})
    registry = RegistrySpec(
        name=v["registry"],
        sku="Premium",
        location="eastus",
        data_endpoints="both",
        regional_endpoints=True,
        private_link=True,
    )  # private link: no_proxy.txt is not empty
    settings = {tid: c.hostile_settings(v) for tid, c in CONSUMERS.items()}
    return Description(
        registries=(registry,),
        mcr=True,
        sources=(v["source"],),
        source_name=v["source_name"],
        target_data={tid: s for tid, s in settings.items() if s},
    )


@pytest.fixture(scope="module")
def tags_file() -> servicetags.ServiceTagsFile:
    return servicetags.load(str(GOOD_TAGS))


def render_all(desc: Description, tags_file) -> dict[str, dict[str, str] | Exception]:
    rule_plan = planning.build(desc, tags_file)
    out: dict = {}
    for tid, target in TARGETS.items():
        try:
            problems = target.check(rule_plan)
            out[tid] = AcrrulesError(problems[0].message) if problems else target.render(rule_plan)
        except (EscapeError, ValueError, AcrrulesError) as e:  # a clear refusal
            out[tid] = e
    return out


CASES = [(field, value) for field in BENIGN for value in TEMPLATE_VALUES] + [
    (field, value) for field in K8S_FIELDS for value in YAML_PLAIN_TRAPS
]


@pytest.fixture(scope="module")
def rendered(tags_file, tmp_path_factory) -> dict:
    """Every (field, value) case rendered by every target, and the harmless baseline; files on disk."""
    root = tmp_path_factory.mktemp("hostile")
    baseline = render_all(description("registry", BENIGN["registry"]), tags_file)
    assert all(isinstance(v, dict) for v in baseline.values()), baseline
    cases = {}
    for n, (field, value) in enumerate(CASES):
        out = render_all(description(field, value), tags_file)
        folder = root / f"case{n:03d}"
        folder.mkdir()
        for files in out.values():
            if isinstance(files, dict):
                for name, text in files.items():
                    (folder / name).write_text(text, encoding="utf-8")
        cases[(field, value)] = (folder, out)
    return {"baseline": baseline, "cases": cases, "root": root}


_NAME_TARGETS = {"nft_table": "nftables", "ipt_chain": "iptables"}


@pytest.mark.parametrize("field, value", CASES, ids=[f"{f}-{i}" for i, (f, _) in enumerate(CASES)])
def test_hostile_value_keeps_the_structure(rendered, field, value):
    """Every file a target renders has the baseline's structure, read by its language's reader; the value
    reaches, intact, only the files tests/consumers.py says it may reach (`reaches`), and changes nothing
    but comments in every other file."""
    baseline = rendered["baseline"]
    _, out = rendered["cases"][(field, value)]
    if field in _NAME_TARGETS:  # no value of TEMPLATE_VALUES is a netfilter name: its target refuses it
        assert isinstance(out[_NAME_TARGETS[field]], Exception), (field, value)
    case = HostileCase(field, value, BENIGN[field])
    for tid, files in out.items():
        if isinstance(files, Exception):
            assert str(files), "a refusal must say why"
            continue
        assert sorted(files) == sorted(baseline[tid]), tid
        for name, text in files.items():  # netfilter and squid loads are checked below in batches
            consumers.hostile_structure(name, text, baseline[tid][name], case)


def test_unsafe_kubernetes_values_are_refused(rendered):
    """A name, namespace or label the API server would reject, or a registry name that is no DNS label: the
    Kubernetes targets refuse with a reason; a valid one renders (quoted, so `yes` stays a string)."""
    checks = {
        "k8s_name": k8s_name,
        "k8s_namespace": k8s_name,
        "k8s_label_key": k8s_label_key,
        "k8s_label_value": k8s_label_value,
        "registry": lambda v: dns_name(f"{v.lower()}.azurecr.io"),
    }
    for (field, value), (_, out) in rendered["cases"].items():
        if field not in checks:
            continue
        for tid in ("cilium", "calico") if field != "registry" else ("cilium",):
            valid = _accepts(checks[field], value)
            assert isinstance(out[tid], dict) == valid, (field, value, out[tid])
            if not valid:
                assert str(out[tid]), "a refusal must say why"


def test_hostile_values_reach_nothing_but_comments_in_netfilter_files(rendered):
    """Registry names and the description's path appear in netfilter files only as comments, one line each."""
    for (field, value), (_, out) in rendered["cases"].items():
        if field not in ("registry", "source_name"):
            continue
        for tid in ("nftables", "iptables"):
            if tid in out:
                assert isinstance(out[tid], dict), (field, value, out[tid])
                for name, text in out[tid].items():
                    assert code_lines(text) == code_lines(rendered["baseline"][tid][name]), (field, value, name)


def test_unsafe_netfilter_values_are_refused(rendered):
    """Sources and nft table names that are not what they must be: the IP targets refuse, with a reason."""
    for (field, value), (_, out) in rendered["cases"].items():
        if field == "source":
            for tid in ("nftables", "iptables"):
                if tid in out:
                    assert isinstance(out[tid], Exception), (value, tid)
        if field == "nft_table" and "nftables" in out:
            assert isinstance(out["nftables"], Exception) and repr(value) in str(out["nftables"]), value


def test_squid_refuses_what_squid_conf_cannot_hold(rendered):
    """Registry names (they become dstdomain entries and NO_PROXY hosts), sources and ACL prefixes that are
    not what squid.conf can hold unquoted: the squid target refuses them, with a reason. The description's
    path reaches the conf's comments only."""
    for (field, value), (_, out) in rendered["cases"].items():
        if field in ("registry", "source", "squid_acl_prefix"):
            assert isinstance(out["squid"], Exception) and str(out["squid"]), (field, value)
        elif field == "source_name":
            assert isinstance(out["squid"], dict), (value, out["squid"])
            for name in CONSUMERS["squid"].names:
                assert code_lines(out["squid"][name]) == code_lines(rendered["baseline"]["squid"][name])


def test_plain_lists_hold_nothing_but_entries(rendered):
    """The lists have no comment syntax: a registry name that is not a host name is refused, and nothing
    else of the description (its path, settings) reaches them."""
    baseline = rendered["baseline"]["lists"]
    assert sorted(baseline) == sorted(CONSUMERS["lists"].names)
    for (field, value), (_, out) in rendered["cases"].items():
        if field == "registry":
            assert isinstance(out["lists"], Exception) and str(out["lists"]), value
        else:
            assert out["lists"] == baseline, (field, value)


def test_unsafe_iptables_chain_names_are_refused(rendered):
    """iptables-restore cannot quote a chain (`:"a b" - [0:0]` creates chain '"a'): such names are refused."""
    for (field, value), (_, out) in rendered["cases"].items():
        if field == "ipt_chain" and "iptables" in out:
            assert isinstance(out["iptables"], Exception), value


def test_hostile_outputs_pass_the_real_consumers(rendered):
    """Every distinct file of every case through the real consumer tests/consumers.py names for it:
    terraform fmt + tf_schema_check on every .tf, arm_check on every template, squid_check per squid.conf,
    k8s_check --strict on every Kubernetes file (the real CRD schemas), nft and iptables loads (twice)."""
    root = rendered["root"]
    unique = {}
    for path in sorted(root.glob("*/*")):
        unique.setdefault(hashlib.sha256(path.read_bytes()).hexdigest(), path)
    batches = consumers.check(unique.values())
    assert set(batches) == set(consumers.FILES[n].checker for files in rendered["baseline"].values() for n in files)
    assert len(batches[consumers.K8S]) > len(YAML_PLAIN_TRAPS), "the Kubernetes targets rendered too few distinct files"


def test_structure_check_would_see_an_injection(rendered):
    """The checks above are not vacuous: a raw value in a .tf file changes the parsed structure."""
    base = rendered["baseline"]["nsg-tf"]["nsg.tf"]
    injected = base.replace('default     = "rg"', 'default     = "rg"\n}\nresource "a" "b" {\n  x = 1', 1)
    assert injected != base
    assert shape(parse_tf(injected)) != shape(parse_tf(base))
    assert isinstance(description("registry", "x"), Description)


def test_ip_literal_prints_networks_exactly_as_ipaddress_does():
    """ip_literal formats IPv4 networks itself (speed): it must equal str() for every network."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from acrrules.escape import ip_list
    from acrrules.plan import Prefix

    nets = st.builds(
        lambda a, p: ipaddress.ip_network(f"{a}/{p}", strict=False),
        st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)),
        st.integers(0, 32),
    )

    @settings(max_examples=500, deadline=None)
    @given(st.lists(nets, max_size=5))
    def check(values):
        assert [ip_literal(v) for v in values] == [str(v) for v in values]
        assert ip_list(values) == ", ".join(str(v) for v in values)
        planned = [Prefix(v.version, int(v.network_address), v.prefixlen) for v in values]
        assert [ip_literal(p) for p in planned] == [str(v) for v in values]
        assert [p.network for p in planned] == values

    check()
    for bad in (
        Prefix(4, -1, 8),
        Prefix(4, 1 << 32, 8),
        Prefix(4, 0, 33),
        Prefix(6, 0, 129),
        Prefix(5, 0, 8),
        Prefix(4, "1; drop", 8),
    ):
        with pytest.raises(EscapeError):
            ip_literal(bad)


@pytest.mark.parametrize(
    "target, field",
    [
        ("azure-firewall", "priority"),
        ("azure-firewall", "collection_priority"),
        ("nsg-arm", "priority"),
        ("nsg-tf", "priority"),
    ],
)
@pytest.mark.parametrize("value", ["1 }", '100\nresource "x" "y" {}', 1.5, None])
def test_numbers_that_are_not_integers_are_refused(target, field, value):
    """Priorities print through the `integer` filter: text set through the API cannot reach the output."""
    from acrrules import plan as planning

    desc = Description(registries=(RegistrySpec("numbers1", "Basic", "eastus"),), target_data={target: {field: value}})
    with pytest.raises((EscapeError, TypeError)):
        TARGETS[target].render(planning.build(desc))
