"""The `acrrules` command line.

Every AcrrulesError becomes its message on stderr and its exit code; nothing
the user can cause prints a traceback (set ACRRULES_DEBUG=1 to see one).
"""

from __future__ import annotations

import gc
import json
import os
import shlex
import sys
from enum import Enum, StrEnum
from typing import Any

import typer

from . import __version__, pipeline
from . import plan as planning
from .catalog import CLOUDS, DEFAULT_CLOUD
from .errors import EXIT_CHANGES, EXIT_INVALID, AcrrulesError, InputError, UsageError
from .escape import terminal
from .targets import TARGETS
from .targets.nsg import DeployedRule

app = typer.Typer(
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},  # subcommands inherit it
    help="Egress firewall rules for clients of Azure Container Registry.",
)


class Format(StrEnum):  # str() is the value, as typer 0.28 converts it back
    table = "table"
    json = "json"


def _formats(kind: type[Enum]) -> dict[str, Any]:
    """typer.Option arguments for a --format option of `kind`'s values: a parser whose error names
    the formats in plain words (typer's own message for an Enum is pydantic's: "Value error, 'x' is
    not one of ..."), and, as typer 0.28 knows no choices once there is a parser, their completion
    and metavar."""

    def parse(value: str | Enum) -> Enum:
        if isinstance(value, kind):  # the default
            return value
        try:
            return kind(value)
        except ValueError:
            names = [m.value for m in kind]
            raise typer.BadParameter(
                f"{value!r} is unknown: the formats are {', '.join(names[:-1])} and {names[-1]}"
            ) from None

    def complete(incomplete: str) -> list[str]:
        return [m.value for m in kind if m.value.startswith(incomplete)]

    return {"parser": parse, "autocompletion": complete, "metavar": "|".join(m.value for m in kind)}


def _out(text: str) -> None:
    sys.stdout.write(text)


def _err(text: str) -> None:
    """A message on stderr, each line through escape.terminal: messages quote paths, names and values
    from untrusted input, which must not drive the terminal or issue CI workflow commands."""
    sys.stdout.flush()
    sys.stderr.write("".join(terminal(line) + "\n" for line in text.removesuffix("\n").split("\n")))


@app.command()
def validate(
    specs: list[str] = typer.Argument(..., metavar="SPEC", hidden=True),  # hidden: typer shows its type
    target: list[str] | None = typer.Option(
        None,
        "--target",
        "-t",
        metavar="T",
        help=f"Check only this target (repeatable): {', '.join(TARGETS)}. "
        "Default: the description's outputs, else every target.",
    ),
) -> None:
    """Check the registry descriptions SPEC..., including the platform limits of their targets; print every
    problem as FILE:LINE:COLUMN: message. (The IP prefixes are checked by `render --service-tags`.)"""
    for name in target or ():
        if name not in TARGETS:
            raise UsageError(f"unknown target {name!r}: choose from {', '.join(TARGETS)}")
    failed = False
    for spec in specs:
        try:
            loaded = pipeline.load_description(spec)
            d = loaded.description
            chosen = list(dict.fromkeys(target)) if target else list(d.outputs or TARGETS)
            rule_plan = planning.build(d)
            problems = pipeline.limit_problems(rule_plan, chosen, loaded.doc)
            if problems:
                raise InputError(problems)
        except InputError as e:
            failed = True
            for line in e.lines():
                _err(line)
            continue
        _out(
            f"{terminal(spec)}: ok ({len(d.registries)} registr{'y' if len(d.registries) == 1 else 'ies'}, "
            f"{len(rule_plan.endpoints)} endpoints, {len(rule_plan.tags)} service tags, cloud {d.cloud}; "
            f"targets {', '.join(chosen)})\n"
        )
    if failed:
        raise typer.Exit(EXIT_INVALID)


@app.command()
def endpoints(
    spec: str = typer.Argument(..., metavar="SPEC"),
    format: Format = typer.Option(
        Format.table, "--format", **_formats(Format), help="table for people, json for programs."
    ),
) -> None:
    """List every endpoint (FQDN, TCP 443) the clients need."""
    loaded = pipeline.load_description(spec)
    eps = planning.endpoints(loaded.description)
    if format is Format.json:
        _out(json.dumps([e.as_json() for e in eps], indent=2) + "\n")
        return
    rows = [("KIND", "FQDN", "REGISTRY", "REGION", "PORT")]
    rows += [(e.kind, e.fqdn, e.registry or "-", e.region or "-", str(e.port)) for e in eps]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    _out("".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() + "\n" for r in rows))


@app.command()
def render(
    spec: str = typer.Argument(..., metavar="SPEC"),
    target: list[str] | None = typer.Option(
        None,
        "--target",
        "-t",
        metavar="T",
        help=f"Target to render (repeatable): {', '.join(TARGETS)}. Default: all that the inputs allow.",
    ),
    out: str = typer.Option(".", "--out", "-o", metavar="DIR|-", help="Output directory (created), or - for stdout."),
    service_tags: str | None = typer.Option(
        None, "--service-tags", metavar="FILE", help="Microsoft Service Tags JSON (needed by nftables, iptables)."
    ),
    check: bool = typer.Option(False, "--check", help="Write nothing; exit 1 with a diff if files on disk differ."),
    max_age: int | None = typer.Option(
        None,
        "--max-age",
        metavar="DAYS",
        min=0,
        help="Fail (exit 2) instead of warning when the Service Tags file "
        "is more than DAYS days old (by the date in its name).",
    ),
) -> None:
    """Render the firewall rules of a description."""
    from . import write
    from .targets.nsg import removed_rules

    result = pipeline.run(spec, target, service_tags, out_dir=None if out == "-" else out)
    files = result.files
    _check_freshness(service_tags, files, max_age)
    if out == "-":
        if check:
            raise AcrrulesError("--check compares files in a directory: give --out DIR")
        many = len(files) > 1
        for name, text in files.items():
            if many:
                _out(f"# ==> {name} <==\n")
            _out(text)
        _skipped(result.skipped)
        return
    gone = removed_rules(os.path.join(out, "nsg.json"), files.get("nsg.json"))
    if check:
        diffs = write.drift(out, files)
        for d in diffs:
            _out(d)
        if diffs:
            _err(
                f"{len(diffs)} of {len(files)} file(s) in {out} differ from {spec}: run `acrrules render` "
                "without --check to update them"
            )
        else:
            _err(f"{len(files)} file(s) in {out} are up to date")
        _announce_removed(gone, would=True)
        _skipped(result.skipped)
        if diffs:
            raise typer.Exit(EXIT_CHANGES)
        return
    for path, changed in write.write_files(out, files):
        _err(f"{'wrote' if changed else 'unchanged'} {path}")
    _announce_removed(gone, would=False)
    _skipped(result.skipped)


def _skipped(skipped: list[tuple[str, str]]) -> None:
    for name, why in skipped:
        _err(f"skipped {name}: {why}")


def _announce_removed(gone: list[DeployedRule], *, would: bool) -> None:
    """ARM incremental deployments never delete a rule that left the template: say which did."""
    if not gone:
        return
    _err(
        f"{len(gone)} NSG rule(s) {'would leave' if would else 'left'} nsg.json; an incremental ARM deployment "
        "keeps them in Azure, so delete each (RG and NSG: where you deploy nsg.json):"
    )
    for rule in gone:
        _err(
            f"  {terminal(rule.name)} (priority {rule.priority}, {terminal(rule.tag)}): "
            f"az network nsg rule delete -g RG --nsg-name NSG -n {terminal(shlex.quote(rule.name))}"
        )


def _check_freshness(service_tags: str | None, files: dict[str, str], max_age: int | None) -> None:
    """Stale prefixes are a warning, or with --max-age an error, when the IP targets are rendered."""
    ip_files = {name for t in TARGETS.values() for name in t.service_tag_files()}
    if service_tags is None or not ip_files & files.keys():
        return
    from . import freshness

    note = freshness.check(service_tags, max_age)
    if note:
        _err(note)


class ReportFormat(StrEnum):
    markdown = "markdown"
    json = "json"


@app.command()
def report(
    spec: str = typer.Argument(..., metavar="SPEC"),
    target: list[str] | None = typer.Option(
        None,
        "--target",
        "-t",
        metavar="T",
        help="Report on this target (repeatable), as render. Default: the description's outputs that the inputs allow.",
    ),
    service_tags: str | None = typer.Option(
        None,
        "--service-tags",
        metavar="FILE",
        help="The Service Tags file to render with: changeNumbers and prefix counts.",
    ),
    since: str | None = typer.Option(
        None,
        "--since",
        metavar="OLD",
        help="The Service Tags file the current rules come from: what changed since (needs --service-tags).",
    ),
    out: str | None = typer.Option(
        None,
        "--out",
        "-o",
        metavar="DIR",
        help="The directory holding the current rules: which files would change "
        "and which NSG rules would leave nsg.json.",
    ),
    format: ReportFormat = typer.Option(
        ReportFormat.markdown, "--format", help="markdown (a pull request body) or json."
    ),
) -> None:
    """A review summary of the rules, for a pull request: endpoints and service tags per registry
    region; per tag its changeNumber and merged prefix counts, and the totals; the NSG rules with
    their priorities; with --since, the prefixes added and removed; with --out, the files that would
    change and the NSG rules that would leave nsg.json. Writes nothing but standard output.

    JSON, one object: acrrules (version), name, spec, cloud, sources; targets: list of target, files,
    names (ruleCollectionGroup, priority, ruleNames, priorities, table, sets, chain, ipsets, mode, as
    the target has them); skipped: list of target, reason; registries: one per registry region,
    registry, sku, region, role (home or replica), tags; endpoints: as `acrrules endpoints --format
    json`; serviceTags: file, cloud, changeNumber, or null; tags: list of tag, registries, region,
    changeNumber, ipv4, ipv6 (the tag's prefixes merged into the fewest CIDRs; null without
    --service-tags); totals: ipv4, ipv6 of the merged union of all tags (what the nftables and
    iptables sets hold), or null; nsg: list of target, file, priorities (first and last of the
    block), rules (priority, name, tag, and address for nsg-tf); since: null, or what `tags diff
    --format json` prints, without spec and with the files named without their directory; out:
    null, or dir, files (file, status: added, changed or unchanged, linesAdded, linesRemoved) and
    removedRules (name, priority, tag, command; null when nsg-arm is not rendered).
    """
    from . import report as reporting

    if out == "-":
        raise UsageError(
            "report --out takes the directory the rules are rendered into (the report itself goes to standard output)"
        )
    result = reporting.build(spec, target, service_tags, since, out)
    _check_freshness(service_tags, {name: "" for t in result.targets for name in t.files}, None)
    if result.since is not None:
        from .tagsdiff import warning_lines

        for line in warning_lines(result.since):
            _err(line)
    if result.since is not None and result.since.new.change_number < result.since.old.change_number:
        _err(
            f"warning: {terminal(service_tags)} has changeNumber {result.since.new.change_number}, lower than "
            f"--since {terminal(since)}'s {result.since.old.change_number}: swapped? (--since OLD "
            "--service-tags NEW)"
        )
    _out(reporting.format_json(result) if format is ReportFormat.json else reporting.markdown(result))


tags_app = typer.Typer(no_args_is_help=True, help="Work with Microsoft's weekly Service Tags files.")
app.add_typer(tags_app, name="tags")


class DiffFormat(StrEnum):
    text = "text"
    json = "json"


@tags_app.command("diff")
def tags_diff(
    old: str = typer.Argument(..., metavar="OLD", help="The Service Tags file the rules were rendered from."),
    new: str = typer.Argument(..., metavar="NEW", help="The newer Service Tags file."),
    spec: str | None = typer.Option(
        None, "--spec", metavar="SPEC", help="Compare only the tags this description needs (named as in NEW)."
    ),
    format: DiffFormat = typer.Option(
        DiffFormat.text, "--format", **_formats(DiffFormat), help="text for people, json for programs."
    ),
) -> None:
    """Per tag, the prefixes added and removed between OLD and NEW.

    Exit 1 when any compared tag's prefixes changed (tags added or removed
    included), 0 when none did (a changeNumber-only change is reported, exit 0);
    exit 3, with a warning on stderr, when a change needs a person's review: a tag
    widens more than 8-fold, prefixes change under an unchanged changeNumber, or a
    new tag differs from an old one only by case or look-alike characters.
    JSON: {"old"/"new": {"file", "cloud", "changeNumber"}, "spec", "compared",
    "changed": [{"tag", "status": added|removed|changed, "changeNumber": [OLD, NEW],
    "added": [...], "removed": [...]}], "renumbered": [{"tag", "changeNumber"}],
    "unchanged", "missingInNew", "warnings": [{"tag", "kind", "message"}]}; tags sorted by name,
    prefixes IPv4 first, by address.
    """
    from . import tagsdiff

    result = tagsdiff.diff(old, new, spec)
    _out(tagsdiff.format_json(result) if format is DiffFormat.json else tagsdiff.format_text(result))
    for line in tagsdiff.warning_lines(result):
        _err(line)
    if result.new.change_number < result.old.change_number:
        _err(
            f"warning: NEW {terminal(new)} has changeNumber {result.new.change_number}, lower than OLD "
            f"{terminal(old)}'s {result.old.change_number}: arguments swapped? (acrrules tags diff OLD NEW)"
        )
    if result.exit_code:
        raise typer.Exit(result.exit_code)


# Built from the catalog; mypy cannot see the members of a functional Enum with computed values.
CloudName = Enum("CloudName", {name: name for name in CLOUDS}, type=str)  # type: ignore[misc]


@tags_app.command("fetch")
def tags_fetch(
    cloud: CloudName | None = typer.Option(
        None, "--cloud", help="The cloud whose file to fetch (default: SPEC's cloud, else AzureCloud)."
    ),
    spec: str | None = typer.Option(None, "--spec", metavar="SPEC", help="Take the cloud from this description."),
    directory: str = typer.Option(".", "--dir", metavar="DIR", help="Where to save the file (created)."),
    page_url: str | None = typer.Option(
        None,
        "--page-url",
        metavar="URL",
        help="Another download page (its own host's links are taken too), or a direct link to the .json file.",
    ),
) -> None:
    """Download the cloud's current ServiceTags_<Cloud>_<YYYYMMDD>.json from Microsoft into DIR.

    Reads the cloud's download page, takes its link on download.microsoft.com
    (https), downloads and checks the file (the cloud's, well-formed, changeNumber
    not lower than the newest such file in DIR) and saves it atomically under the
    link's name. Prints the file's path on stdout, also when the same bytes were
    already there (then nothing is written). Any failure: exit 2, nothing written.
    Honours HTTPS_PROXY/HTTP_PROXY/NO_PROXY; gives up after 60 s.
    """
    from . import fetch

    if cloud is not None and spec is not None:
        raise UsageError("give --cloud or --spec, not both: --spec takes the cloud from the description")
    if spec is not None:
        cloud_name = pipeline.load_description(spec).description.cloud
    else:
        cloud_name = cloud.value if cloud is not None else DEFAULT_CLOUD
    path, changed = fetch.fetch(cloud_name, directory, page_url)
    _err(f"wrote {path}" if changed else f"{path} is already here with the same bytes: nothing written")
    _out(f"{path}\n")


@app.command()
def schema() -> None:
    """Print the JSON Schema of the description format (for yaml-language-server)."""
    from .validate import schema_text

    _out(schema_text())


def _version_callback(value: bool) -> None:
    if value:
        _out(f"acrrules {__version__}\n")
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    pass


def main(argv: list[str] | None = None) -> int:
    try:
        # With standalone_mode=False a command's typer.Exit(code) comes back as the return value.
        code = app(args=argv, prog_name="acrrules", standalone_mode=False)
        return code if isinstance(code, int) else 0
    except AcrrulesError as e:
        for line in e.lines():
            _err(line)
        return e.exit_code
    except typer.Exit as e:
        return e.exit_code
    except typer.Abort:
        _err("aborted")
        return 130
    except typer.TyperException as e:
        # Usage errors and bad option values: typer's click exceptions derive from TyperException
        # and show themselves (usage line, help hint, message); TyperException has the message.
        show = getattr(e, "show", None)
        if show is not None:
            show()
        else:
            _err(f"Error: {e.format_message()}")
        return EXIT_INVALID if e.exit_code != 0 else 0
    except SystemExit as e:  # --show-completion, --install-completion and completion requests exit
        return 0 if e.code is None else e.code if isinstance(e.code, int) else EXIT_INVALID
    except Exception as e:
        if os.environ.get("ACRRULES_DEBUG"):
            raise
        _err(f"acrrules: internal error: {type(e).__name__}: {e} (please report it; set ACRRULES_DEBUG=1 for details)")
        return 70


def run() -> int:
    """The `acrrules` command (console script, python -m acrrules): main() in a process of its own.

    Everything imported so far lives until the process ends, so it is moved out of the cyclic
    garbage collector's sight (gc.freeze): the collections that the run's own objects trigger
    do not walk the libraries' objects again and again.
    """
    gc.freeze()
    return main()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(run())
