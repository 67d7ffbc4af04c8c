"""Service Tags files as untrusted input (issue 13, findings 1, 6, 7, 10).

A pull request can edit the 4 MB Service Tags file nobody reviews line by line, and its
prefixes go to production firewalls. Every hostile file below is a mutation of a small
file in Microsoft's shape, generated here; each must be refused by `render --service-tags`
and by `tags diff` with exit 2, one located message (`file:line:col:`) naming the tag, and
nothing written. The real files of every cloud and week must still pass every check.
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import SERVICETAGS, run_cli, service_tag, service_tags_document, servicetags_files, servicetags_name

from acrrules import catalog, escape, servicetags

ACR = "AzureContainerRegistry.EastUS"

# Real-shaped, not real: synthetic public prefixes and documentation ranges.
TAGS = {
    "AzureCloud": ["20.36.0.0/14", "2603:1030::/40"],
    "AzureContainerRegistry": ["20.42.66.0/23", "51.132.0.0/24", "2603:1030:210:2::/64"],
    ACR: ["192.0.2.0/25", "20.42.66.0/23", "2603:1030:210:2::/64", "2001:db8::/49"],
    "AzureContainerRegistry.UKSouth": ["51.132.0.0/24", "2001:db8:1::/48"],
    "Storage.EastUS": ["20.38.98.0/24", "192.0.2.128/25", "2001:db8:0:8000::/49"],
    "Storage.UKSouth": ["51.141.0.0/24"],
}
SPEC = "version: 1\nregistries:\n  - {name: contosoacr, sku: Premium, location: eastus, replicas: [uksouth]}\n"


def document(tags: dict[str, list[str]] | None = None, change: int = 7) -> dict:
    values = [
        service_tag(name, prefixes, change=i + 1, region_id=i, features=("API", "NSG", "UDR", "FW"))
        for i, (name, prefixes) in enumerate((tags or TAGS).items())
    ]
    return service_tags_document(values, change=change)


def entry(doc: dict, name: str = ACR) -> dict:
    return next(v for v in doc["values"] if v["name"] == name)


def text_of(doc: dict) -> str:
    return json.dumps(doc, indent=2)


# ---- the corpus: (id, mutation of the document or of its JSON text, the tag named, text at the location) ----

Edit = Callable[[dict], None]


def add(*prefixes: str) -> Edit:
    return lambda d: entry(d)["properties"]["addressPrefixes"].extend(prefixes)


WIDENING = [
    "0.0.0.0/0",
    "::/0",
    "0.0.0.0/0.0.0.0",  # netmask form
    "0.0.0.0/1",
    "128.0.0.0/1",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "224.0.0.0/4",
    "240.0.0.0/4",
    "255.255.255.255/32",
    "0.0.0.0/32",
    "192.0.0.0/29",
    "198.18.0.0/15",
    "::ffff:0:0/96",  # IPv4-mapped
    "::ffff:0.0.0.0/96",  # the same, dotted
    "::ffff:0:0:0/96",  # IPv4-translated
    "64:ff9b::/96",  # NAT64
    "::1/128",
    "::/128",
    "fe80::/10",
    "fc00::/7",
    "fd00::/8",
    "ff02::/16",
    "2002::/16",  # 6to4
    "2001::/32",  # Teredo
    "0.0.0.0/00",
    "192.0.2.0/024",
    "192.0.2.1/24",  # host bits
    "198.51.100.7",  # no length
    "2001:DB8::/48",  # upper case
    "2001:0db8::/48",  # leading zeros
    "020.1.2.0/24",
    "20.0.0.0/8",  # public, wider than the floor
    "2600::/12",
    "fe80::1%eth0/128",
    " 192.0.2.0/24",
    "192.0.2.0/24\n",
]


def _twin(name: str) -> Edit:
    def edit(d: dict) -> None:
        twin = json.loads(json.dumps(entry(d)))
        twin["name"] = twin["id"] = name
        twin["properties"]["addressPrefixes"] = ["20.0.0.0/12"]
        d["values"].append(twin)

    return edit


def _rename(name: str) -> Edit:
    def edit(d: dict) -> None:
        entry(d)["name"] = name

    return edit


def _set(key: str, value: object, where: str = ACR) -> Edit:
    def edit(d: dict) -> None:
        if where == "":
            d[key] = value
        else:
            entry(d, where)["properties"][key] = value

    return edit


class TextEdit:
    """A mutation of the JSON text (what a dict cannot hold: a key twice)."""

    def __init__(self, old: str, new: str):
        self.old, self.new = old, new

    def __call__(self, text: str) -> str:
        assert text.count(self.old) == 1, self.old
        return text.replace(self.old, self.new)


_text = TextEdit
ACR_PREFIXES = '"addressPrefixes": [\n          "192.0.2.0/25"'
ACR_NAME = f'"name": "{ACR}",'
CASES: list[tuple[str, Edit | TextEdit, str | None, str | None]] = [
    *((f"prefix {p!r}", add(p), ACR, json.dumps(p)) for p in WIDENING),
    ("two halves", add("0.0.0.0/1", "128.0.0.0/1"), ACR, '"0.0.0.0/1"'),
    ("case twin", _twin("AzureContainerRegistry.eastus"), "AzureContainerRegistry.eastus", None),
    ("Kelvin twin", _twin("AzureContainerRegistry.U\u212aSouth"), "AzureContainerRegistry.U\u212aSouth", None),
    ("Cyrillic a", _rename("AzureContainerRegistry.E\u0430stUS"), "AzureContainerRegistry.E\u0430stUS", None),
    ("zero-width space", _rename(ACR + "\u200b"), ACR + "\u200b", None),
    ("newline and command", _rename(ACR + "\n::error::x"), ACR + "\n::error::x", None),
    ("dup addressPrefixes", _text(ACR_PREFIXES, '"addressPrefixes": ["0.0.0.0/0"], ' + ACR_PREFIXES), ACR, None),
    ("dup properties", _text(ACR_NAME, ACR_NAME + ' "properties": {},'), ACR, None),
    ("dup name", _text(ACR_NAME, ACR_NAME + ' "name": "Storage.EastUS",'), "Storage.EastUS", None),
    ("dup values", _text('{\n  "changeNumber": 7,', '{"values": [],\n  "changeNumber": 7,'), "values", '"values"'),
    ("file changeNumber 10**4000", _set("changeNumber", 10**4000, ""), "changeNumber", '"changeNumber"'),
    ("file changeNumber 2**31", _set("changeNumber", 2**31, ""), "changeNumber", '"changeNumber"'),
    ("tag changeNumber 2**31", _set("changeNumber", 2**31), ACR, None),
    ("tag changeNumber 10**4000", _set("changeNumber", 10**4000), ACR, None),
    ("networkFeatures command", _set("networkFeatures", ["NSG\n::add-mask::x"]), ACR, '"networkFeatures"'),
    ("networkFeatures ANSI", _set("networkFeatures", ["\x1b[31mNSG"]), ACR, '"networkFeatures"'),
    (
        "prefixes per tag",
        _set(
            "addressPrefixes",
            [
                f"20.{i >> 16}.{(i >> 8) & 255}.{i & 255}/32"
                for i in range(catalog.SERVICETAGS_MAX_PREFIXES_PER_TAG + 1)
            ],
        ),
        ACR,
        None,
    ),
]


def write(tmp_path: Path, case: Edit | TextEdit | None, name: str | None = None) -> Path:
    doc = document()
    if isinstance(case, TextEdit):
        text = case(text_of(doc))
    else:
        if case is not None:
            case(doc)
        text = text_of(doc)
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / (name or servicetags_name(1))
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    p = tmp_path / "spec.yaml"
    p.write_text(SPEC, encoding="utf-8")
    return p


def assert_refused(r, path: Path, tag: str | None, needle: str | None, located: bool = True) -> None:
    """Exit 2, one line `path:line:col: message` naming the tag, the location at `needle` (or the tag)."""
    assert r.code == 2, (r.code, r.err)
    assert r.out == "" and "Traceback" not in r.err
    lines = r.err.splitlines()
    assert len(lines) == 1, r.err
    if not located:
        assert lines[0].startswith(f"{path}: "), r.err
        return
    m = re.match(re.escape(str(path)) + r":(\d+):(\d+): (.*)", lines[0])
    assert m, r.err
    line, col, message = int(m[1]), int(m[2]), m[3]
    if tag is not None:
        assert escape.terminal(repr(tag)) in message or ascii(tag) in message or tag in message, message
    at = path.read_text(encoding="utf-8").split("\n")[line - 1][col - 1 :]
    expect = needle if needle is not None else '"name"'
    assert at.startswith(expect), (at[:80], expect)
    if needle is None and tag is not None:
        assert json.dumps(tag) in at or json.dumps(tag, ensure_ascii=False) in at, at[:80]


def test_the_base_file_renders(tmp_path, spec):
    tags = write(tmp_path, None)
    r = run_cli("render", spec, "--service-tags", tags, "--out", tmp_path / "out")
    assert r.code == 0, r.err
    assert "192.0.2.0/24" in (tmp_path / "out" / "acrrules.nft").read_text()


def test_the_corpus_is_large_enough():
    assert len(CASES) + 3 >= 40  # + the two future dates and the total cap below


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_a_hostile_file_is_refused_by_render_and_tags_diff(tmp_path, spec, case):
    _, edit, tag, needle = case
    hostile = write(tmp_path, edit)
    out = tmp_path / "out"
    r = run_cli("render", spec, "--service-tags", hostile, "--out", out)
    assert_refused(r, hostile, tag, needle)
    assert not out.exists()  # nothing written
    r = run_cli("tags", "diff", write(tmp_path / "old", None), hostile)
    assert_refused(r, hostile, tag, needle)


@pytest.mark.parametrize("days", [2, 365 * 73])
def test_a_file_dated_after_today_is_refused(tmp_path, spec, days):
    day = datetime.datetime.now(datetime.UTC).date() + datetime.timedelta(days=days)
    hostile = write(tmp_path, None, f"ServiceTags_Public_{day:%Y%m%d}.json")
    out = tmp_path / "out"
    r = run_cli("render", spec, "--service-tags", hostile, "--out", out)
    assert_refused(r, hostile, None, None, located=False)
    assert f"dated {day.isoformat()}" in r.err and "after today" in r.err
    assert not out.exists()
    r = run_cli("tags", "diff", write(tmp_path / "old", None), hostile)
    assert_refused(r, hostile, None, None, located=False)


def test_a_day_of_clock_skew_is_allowed(tmp_path, spec):
    tags = write(tmp_path, None, servicetags_name(-1))
    r = run_cli("render", spec, "--service-tags", tags, "--out", "-", "--target", "nftables")
    assert r.code == 0, r.err


def test_the_total_prefix_cap(tmp_path, spec, monkeypatch):
    # The real cap (1,000,000) would take a 25 MB file to reach; the mechanism, at a lower cap.
    monkeypatch.setattr(catalog, "SERVICETAGS_MAX_PREFIXES_PER_FILE", sum(map(len, TAGS.values())) - 1)
    hostile = write(tmp_path, None)
    r = run_cli("render", spec, "--service-tags", hostile, "--out", tmp_path / "out")
    assert_refused(r, hostile, None, '"values"')
    assert "address prefixes, more than the" in r.err and not (tmp_path / "out").exists()


def test_the_caps_and_floors_are_far_from_the_real_files():
    """The documented bounds against every real file: widest prefixes, prefixes per tag and file,
    changeNumbers (measured here, not copied); and no real prefix is refused."""
    widest = {4: 32, 6: 128}
    per_tag = per_file = change = 0
    for path in servicetags_files():
        loaded = servicetags.load(str(path))
        total = 0
        for name in loaded.entries:
            t = loaded.tag(name)  # every check of every prefix
            for version, blocks in ((4, t.v4_blocks), (6, t.v6_blocks)):
                widest[version] = min([widest[version], *(p for _, p in blocks)])
            per_tag = max(per_tag, len(t.v4_blocks) + len(t.v6_blocks))
            total += len(t.v4_blocks) + len(t.v6_blocks)
            change = max(change, t.change_number)
        per_file = max(per_file, total)
        change = max(change, loaded.change_number)
    assert widest[4] >= catalog.SERVICETAGS_MIN_PREFIXLEN[4] + 2  # /14 against /12
    assert widest[6] >= catalog.SERVICETAGS_MIN_PREFIXLEN[6] + 7  # /39 against /32
    assert per_tag * 5 < catalog.SERVICETAGS_MAX_PREFIXES_PER_TAG  # 13,155 against 100,000
    assert per_file * 10 < catalog.SERVICETAGS_MAX_PREFIXES_PER_FILE  # 95,823 against 1,000,000
    assert change * 1000 < catalog.SERVICETAGS_MAX_CHANGE_NUMBER


REAL_LOCATION = {"Public": "eastus", "AzureGovernment": "usgovvirginia", "China": "chinanorth2"}
REAL_CLOUD = {"Public": "AzureCloud", "AzureGovernment": "AzureUSGovernment", "China": "AzureChinaCloud"}


@pytest.mark.parametrize(
    "path", sorted(SERVICETAGS.glob("ServiceTags_*.json")) or [None], ids=lambda p: p.name if p else "none"
)
def test_every_real_file_still_renders(tmp_path, path):
    if path is None:
        servicetags_files()  # skips (or fails under ACRRULES_REQUIRE_TOOLS=1): no real files
    kind = servicetags.FILE_NAME.fullmatch(path.name)[1]
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        f"version: 1\ncloud: {REAL_CLOUD[kind]}\nregistries:\n"
        f"  - {{name: contosoacr, sku: Standard, location: {REAL_LOCATION[kind]}}}\n",
        encoding="utf-8",
    )
    for target in ("nftables", "iptables", "nsg-arm", "lists"):
        r = run_cli("render", spec, "--service-tags", path, "--target", target, "--out", tmp_path / "out")
        assert r.code == 0, r.err


# ---- tags diff and report --since: the changes a person must look at (exit 3) ----------------


def diff(tmp_path: Path, old_doc: dict, new_doc: dict, *args: str):
    (tmp_path / "a").mkdir(exist_ok=True)
    (tmp_path / "b").mkdir(exist_ok=True)
    old = tmp_path / "a" / servicetags_name(8)
    new = tmp_path / "b" / servicetags_name(1)
    old.write_text(text_of(old_doc), encoding="utf-8")
    new.write_text(text_of(new_doc), encoding="utf-8")
    return old, new, run_cli("tags", "diff", old, new, *args)


def bumped(edit: Edit) -> dict:
    doc = document(change=8)
    edit(doc)
    entry(doc)["properties"]["changeNumber"] += 100
    return doc


def test_an_ordinary_change_is_exit_1_without_a_warning(tmp_path):
    _, _, r = diff(tmp_path, document(), bumped(add("20.42.68.0/24")))
    assert r.code == 1 and "warning" not in r.err, r.err


def test_a_sharp_widening_is_exit_3_with_a_warning(tmp_path):
    # 20.42.66.0/23 (512 addresses) and 192.0.2.0/25 (128) grow by a /16: 103-fold.
    _, _, r = diff(tmp_path, document(), bumped(add("20.33.0.0/16")))
    assert r.code == 3, r.err
    assert f"warning: {ACR} widens sharply: its IPv4 addresses grow 103-fold, from 640 to 66,176" in r.err
    assert "+20.33.0.0/16" in r.out
    _, _, r = diff(tmp_path, document(), bumped(add("20.33.0.0/16")), "--format", "json")
    assert r.code == 3 and [(w["tag"], w["kind"]) for w in json.loads(r.out)["warnings"]] == [(ACR, "widened")]


def test_prefixes_changed_under_the_same_change_number_is_exit_3(tmp_path):
    doc = document(change=8)
    add("20.42.68.0/24")(doc)
    _, new, r = diff(tmp_path, document(), doc)
    assert r.code == 3, r.err
    assert f"warning: {ACR}: prefixes changed (+1 -0) while its changeNumber stayed 3" in r.err


def test_a_case_twin_replacing_a_tag_is_exit_3(tmp_path):
    doc = document(change=8)
    entry(doc)["name"] = "AzureContainerRegistry.Eastus"
    _, _, r = diff(tmp_path, document(), doc)
    assert r.code == 3, r.err
    assert "warning: AzureContainerRegistry.Eastus is new, and differs from AzureContainerRegistry.EastUS" in r.err


def test_report_since_warns_too(tmp_path):
    old, new, r = diff(tmp_path, document(), bumped(add("20.33.0.0/16")))
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC, encoding="utf-8")
    r = run_cli("report", spec, "--service-tags", new, "--since", old, "--target", "nftables")
    assert r.code == 0, r.err
    assert f"warning: {ACR} widens sharply" in r.err


def test_real_consecutive_weeks_raise_no_warning():
    for cloud in ("Public", "AzureGovernment", "China"):
        files = servicetags_files(cloud)
        for old, new in zip(files, files[1:], strict=False):
            if (servicetags.date_in_name(str(new)) - servicetags.date_in_name(str(old))).days > 7:
                continue  # a gap of weeks is no weekly change
            r = run_cli("tags", "diff", old, new)
            assert r.code in (0, 1) and r.err == "", (old.name, new.name, r.err)


# ---- one escaper for the terminal and CI logs -------------------------------------------------

HOSTILE_NAMES = ["a\nb", "x\x1b[31mred", "::error::pwned", "abc\u202edef", "::add-mask::x", "  ::stop-commands::t"]


@pytest.mark.parametrize("value", HOSTILE_NAMES)
def test_terminal_escapes_controls_and_workflow_commands(value):
    s = escape.terminal(value)
    assert s.isprintable() and "\x1b" not in s and "\n" not in s and "\u202e" not in s
    assert not s.lstrip().startswith("::")


def test_removal_notices_escape_rule_names_from_a_committed_nsg_json(tmp_path, spec):
    tags = write(tmp_path, None)
    out = tmp_path / "out"
    r = run_cli("render", spec, "--service-tags", tags, "--target", "nsg-arm", "--out", out)
    assert r.code == 0, r.err
    nsg = json.loads((out / "nsg.json").read_text())
    rule = next(x for x in nsg["resources"] if x["type"].endswith("/securityRules"))
    for i, name in enumerate(HOSTILE_NAMES):
        extra = json.loads(json.dumps(rule))
        extra["name"] = f"nsg/{name}"
        extra["properties"]["priority"] = 4000 + i
        nsg["resources"].append(extra)
    (out / "nsg.json").write_text(json.dumps(nsg, indent=2), encoding="utf-8")
    # The report's JSON names the rules render would remove: ASCII JSON, which reads back as the names.
    rep = run_cli("report", spec, "--service-tags", tags, "--target", "nsg-arm", "--out", out, "--format", "json")
    assert rep.code == 0 and rep.out.isascii(), rep.out
    assert all(line.isprintable() for line in rep.out.splitlines()), rep.out
    removed = {x["name"] for x in json.loads(rep.out)["out"]["removedRules"]}
    assert set(HOSTILE_NAMES) <= removed, removed
    r = run_cli("render", spec, "--service-tags", tags, "--target", "nsg-arm", "--out", out)
    assert r.code == 0, r.err
    notices = r.err.splitlines()
    assert sum("az network nsg rule delete" in line for line in notices) == len(HOSTILE_NAMES), r.err
    for line in notices:
        assert line.isprintable() and not line.lstrip().startswith(("::", "##[")), repr(line)
    assert "x\\x1b[31mred" in r.err and "abc\\u202edef" in r.err and "a\\nb" in r.err
    assert "\\x3a:error::pwned" in r.err


def test_paths_from_input_are_escaped_on_stderr(tmp_path):
    # A file name is input too (a pull request can add `a\n::error::x.yaml`): every stderr line is escaped.
    spec = tmp_path / "a\n::error::x\x1b[31m.yaml"
    spec.write_text("version: 1\nregistries: 7\n", encoding="utf-8")
    r = run_cli("render", spec, "--out", tmp_path / "out")
    assert r.code == 2, r.err
    for line in r.err.splitlines():
        assert line.isprintable() and not line.lstrip().startswith("::"), repr(line)
    assert "a\\n::error::x\\x1b[31m.yaml" in r.err


def test_a_file_over_the_size_cap_is_refused_before_parsing(tmp_path, spec):
    # 8.4 million prefixes take more than 100 MB of JSON: refused by size, without reading it.
    big = tmp_path / servicetags_name(1)
    with open(big, "wb") as fh:
        fh.truncate(servicetags.MAX_BYTES + 1)  # sparse: costs no disk
    r = run_cli("render", spec, "--service-tags", big, "--out", tmp_path / "out")
    assert r.code == 2 and "larger than 64 MiB" in r.err and not (tmp_path / "out").exists(), r.err
