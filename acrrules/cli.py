"""The `acrrules` command line.

Every AcrrulesError becomes its message on stderr and its exit code; nothing
the user can cause prints a traceback (set ACRRULES_DEBUG=1 to see one).
"""

from __future__ import annotations

import gc
import json
import os
import sys
from enum import Enum, StrEnum
from typing import Any

import typer

from . import __version__, hints, pipeline
from . import plan as planning
from .catalog import CLOUDS, DEFAULT_CLOUD
from .errors import EXIT_CHANGES, EXIT_INVALID, AcrrulesError, InputError, UsageError
from .escape import terminal
from .targets import TARGETS
from .targets.nsg import DeployedRule, NsgPlace, delete_command

app = typer.Typer(
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},  # subcommands inherit it
    help="Egress firewall rules for clients of Azure Container Registry.",
)


class Format(StrEnum):  # str() is the value, as typer 0.28 converts it back
    table = "table"
    json = "json"


def _formats(kind: type[Enum], what: str = "formats", aliases: dict[str, str] | None = None) -> dict[str, Any]:
    """typer.Option arguments for an option of `kind`'s values (--format, --cloud): a parser whose
    error names the values in plain words, with a did-you-mean (typer's own message for an Enum is
    pydantic's: "Value error, 'x' is not one of ..."), and, as typer 0.28 knows no choices once
    there is a parser, their completion and metavar."""

    def parse(value: str | Enum) -> Enum:
        if isinstance(value, kind):  # the default
            return value
        try:
            return kind(value)
        except ValueError:
            names = [m.value for m in kind]
            hint = hints.did_you_mean(str(value), names, aliases)
            note = hints.cloud_alias_note(str(value)) if kind is CloudName else ""
            raise typer.BadParameter(
                f"{value!r} is unknown: the {what} are {hints.choices_text(names)}{'; ' + hint if hint else ''}{note}"
            ) from None

    def complete(incomplete: str) -> list[str]:
        return [m.value for m in kind if m.value.startswith(incomplete)]

    return {"parser": parse, "autocompletion": complete, "metavar": "|".join(m.value for m in kind)}


def _out(text: str) -> None:
    sys.stdout.write(text)


def _diff(text: str) -> None:
    """A --check diff on stdout, each line through escape.terminal (tabs kept, for nft and shell
    files): the lines on disk come from the repository, that is from whoever last changed it, and
    must not drive the terminal or issue CI workflow commands any more than a message can."""
    lines = text.removesuffix("\n").split("\n")
    _out("".join("\t".join(terminal(part) for part in line.split("\t")) + "\n" for line in lines))


def _err(text: str) -> None:
    """A message on stderr, each line through escape.terminal: messages quote paths, names and values
    from untrusted input, which must not drive the terminal or issue CI workflow commands."""
    sys.stdout.flush()
    sys.stderr.write("".join(terminal(line) + "\n" for line in text.removesuffix("\n").split("\n")))


_PROJECT_OPTION: Any = typer.Option(
    None,
    "--project",
    metavar="FILE",
    help="The project file, when no SPEC is given (default: acrrules.toml here or in the nearest parent).",
)


@app.command()
def validate(
    specs: list[str] | None = typer.Argument(None, metavar="SPEC", hidden=True),  # hidden: typer shows its type
    target: list[str] | None = typer.Option(
        None,
        "--target",
        "-t",
        metavar="T",
        help=f"Check only this target (repeatable): {', '.join(TARGETS)}. "
        "Default: the description's outputs, else every target.",
    ),
    project_file: str | None = _PROJECT_OPTION,
) -> None:
    """Check the registry descriptions SPEC..., including the platform limits of their targets; print every
    problem as FILE:LINE:COLUMN: message. (The IP prefixes are checked by `render --service-tags`.)
    Without SPEC: every description of the project (acrrules.toml)."""
    for name in target or ():
        if name not in TARGETS:
            raise UsageError(hints.unknown("target", name, TARGETS))
    if not specs:
        from . import project

        for spec, loaded, chosen, rule_plan in project.validate_all(project.load(project_file), target):
            for warning in pipeline.limit_warnings(rule_plan, chosen, loaded.doc):
                _err(str(warning))
            _out(_validated(spec, loaded.description, rule_plan, chosen))
        return
    failed = False
    valid: list[pipeline.Loaded] = []
    plans: list[planning.RulePlan] = []
    for spec in specs:
        try:
            loaded = pipeline.load_description(spec)
            d = loaded.description
            chosen = pipeline.checked_targets(d, target)
            rule_plan = planning.build(d)
            problems = pipeline.limit_problems(rule_plan, chosen, loaded.doc)
            if problems:
                raise InputError(problems)
            for warning in pipeline.limit_warnings(rule_plan, chosen, loaded.doc):
                _err(str(warning))
        except InputError as e:
            failed = True
            for line in e.lines():
                _err(line)
            continue
        valid.append(loaded)
        plans.append(rule_plan)
        _out(_validated(spec, d, rule_plan, chosen))
    from . import clashes

    clash = clashes.check(valid, target, plans)  # what two descriptions must not share (spec §8)
    if clash:
        raise InputError(clash)
    if failed:
        raise typer.Exit(EXIT_INVALID)


def _validated(spec: str, d: Any, rule_plan: planning.RulePlan, chosen: list[str]) -> str:
    return (
        f"{terminal(spec)}: ok ({len(d.registries)} registr{'y' if len(d.registries) == 1 else 'ies'}, "
        f"{len(rule_plan.endpoints)} endpoints, {len(rule_plan.tags)} service tags, cloud {d.cloud}; "
        f"targets {', '.join(chosen)})\n"
    )


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
    spec: str | None = typer.Argument(None, metavar="SPEC"),
    target: list[str] | None = typer.Option(
        None,
        "--target",
        "-t",
        metavar="T",
        help=f"Target to render (repeatable): {', '.join(TARGETS)}. Default: all that the inputs allow.",
    ),
    out: str | None = typer.Option(
        None, "--out", "-o", metavar="DIR|-", help="Output directory (created), or - for stdout. Needed with SPEC."
    ),
    service_tags: str | None = typer.Option(
        None,
        "--service-tags",
        metavar="FILE|DIR",
        help="Microsoft Service Tags JSON (needed by nftables, iptables), or a directory of them: the newest "
        "ServiceTags_<Cloud>_<date>.json of the description's cloud. In a project: its service-tags directory.",
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
    out_follow_symlink: bool = typer.Option(
        False, "--out-follow-symlink", help="Allow --out (or a directory above it) to be a symbolic link."
    ),
    project_file: str | None = _PROJECT_OPTION,
) -> None:
    """Render the firewall rules of a description into --out DIR; without SPEC, of every description of
    the project (acrrules.toml) into its output directories. Files acrrules wrote earlier that no target
    writes now are removed (--check: reported)."""
    from . import project
    from .targets.nsg import nsg_place

    for name in target or ():  # a mistyped --target first: it is wrong whatever else is
        if name not in TARGETS:
            raise UsageError(hints.unknown("target", name, TARGETS))
    if spec is None:
        if out is not None:
            raise UsageError("a project names the output directory of each description: drop --out, or give SPEC")
        _render_project(project_file, target, service_tags, check, max_age, out_follow_symlink)
        return
    service_tags = project.service_tags_file(service_tags, spec)
    if out is None:  # a description of the project goes where the project says
        found = project.find() if project_file is None else project_file
        out = project.out_for(project.load(found), spec, service_tags) if found is not None else None
    if out is None:
        raise UsageError(
            f"where should the rules of {spec} go? give --out DIR (a directory, created when missing), "
            "or --out - for standard output; acrrules does not write into the working directory unasked"
        )
    if max_age is not None and service_tags is None:
        raise UsageError(
            "--max-age DAYS limits the age of the Service Tags file, and none is given: add --service-tags "
            "FILE (the IP targets need it), or drop --max-age"
        )
    result = pipeline.run(spec, target, service_tags, out_dir=None if out == "-" else out)
    files = result.files
    for warning in pipeline.run_warnings(result):
        _err(str(warning))
    stale = project.stale_note(result, max_age)
    if stale:
        _err(stale)
    if out == "-":
        if check:
            raise AcrrulesError("--check compares files in a directory: give --out DIR")
        many = len(files) > 1
        for name, text in files.items():
            if many:
                _out(f"# ==> {name} <==\n")
            _out(text)
        _skipped(result)
        return
    place = nsg_place(result.plan, "nsg-arm")
    done = project.apply(out, files, project.keep_names(result, target), check=check, follow_symlink=out_follow_symlink)
    if check:
        for d in done.diffs:
            _diff(d)
        _orphans(out, done.orphans)
        if done.diffs or done.orphans:
            _err(
                f"{len(done.diffs)} of {done.files} file(s) in {out} differ from {spec}"
                + (f" and {len(done.orphans)} are left over" if done.orphans else "")
                + ": run `acrrules render` without --check to update them"
            )
        else:
            _err(f"{len(files)} file(s) in {out} are up to date")
        _announce_removed(done.gone, place, would=True)
        _skipped(result)
        if done.diffs or done.orphans:
            raise typer.Exit(EXIT_CHANGES)
        return
    for path, changed in done.written:
        if path.name != project.MANIFEST:
            _err(f"{'wrote' if changed else 'unchanged'} {path}")
    for path in done.removed:
        _err(f"removed {path}: acrrules wrote it earlier, and no target writes it now")
    _announce_removed(done.gone, place, would=False)
    _skipped(result)


def _orphans(directory: str, names: list[str]) -> None:
    for name in names:
        _err(
            f"{os.path.join(directory, name)}: acrrules wrote it earlier, but no target writes it now: "
            "`acrrules render` removes it"
        )


def _render_project(
    project_file: str | None,
    target: list[str] | None,
    service_tags: str | None,
    check: bool,
    max_age: int | None,
    out_follow_symlink: bool,
) -> None:
    """`render` without SPEC: every description of the project, validated and rendered before anything is
    written; then each output directory written (or compared, with --check)."""
    from . import project
    from .targets.nsg import nsg_place

    jobs = project.run(project.load(project_file), target, service_tags=service_tags, max_age=max_age)
    drifted = orphaned = unchanged = 0
    said: set[str] = set()
    applied = project.apply_all(
        [(job.directory, job.run.files, job.keep) for job in jobs], check=check, follow_symlink=out_follow_symlink
    )
    for job, done in zip(jobs, applied, strict=True):
        for warning in pipeline.run_warnings(job.run):
            _err(str(warning))
        if check:
            for d in done.diffs:
                _diff(d)
            _orphans(job.directory, done.orphans)
            drifted += len(done.diffs)
            orphaned += len(done.orphans)
            unchanged += done.files - len(done.diffs)
        else:
            for path, changed in done.written:
                if changed and path.name != project.MANIFEST:
                    _err(f"wrote {path}")
                unchanged += not changed
            for path in done.removed:
                _err(f"removed {path}: acrrules wrote it earlier, and no target writes it now")
        _announce_removed(done.gone, nsg_place(job.run.plan, "nsg-arm"), would=check)
        for note in job.notes:
            if note not in said:  # the age of a Service Tags file, once for all its descriptions
                said.add(note)
                _err(note)
    if check and (drifted or orphaned):
        _err(
            f"{drifted} file(s) differ and {orphaned} file(s) are left over, in the output directories of "
            f"{len(jobs)} description(s): run `acrrules render` without --check to update them"
        )
        raise typer.Exit(EXIT_CHANGES)
    _err(f"{len(jobs)} description(s): " + ("all files up to date" if check else f"{unchanged} file(s) unchanged"))


def _skipped(result: pipeline.Run) -> None:
    from .project import skipped_notes

    for note in skipped_notes(result):
        _err(note)


def _announce_removed(gone: list[DeployedRule], place: NsgPlace, *, would: bool) -> None:
    """ARM incremental deployments never delete a rule that left the template: say which did, with
    the command that deletes each in the NSG the settings name (RG and NSG where they do not)."""
    if not gone:
        return
    where = "" if None not in place else " (RG and NSG: where you deploy nsg.json; targets.nsg-arm can name them)"
    _err(
        f"{len(gone)} NSG rule(s) {'would leave' if would else 'left'} nsg.json; an incremental ARM deployment "
        f"keeps them in Azure, so delete each{where}:"
    )
    for rule in gone:
        _err(
            f"  {terminal(rule.name)} (priority {rule.priority}, {terminal(rule.tag)}): {terminal(delete_command(rule, place))}"
        )


class ReportFormat(StrEnum):
    markdown = "markdown"
    json = "json"


@app.command()
def report(
    spec: str | None = typer.Argument(None, metavar="SPEC"),
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
        ReportFormat.markdown,
        "--format",
        **_formats(ReportFormat, aliases={"md": "markdown"}),
        help="markdown (a pull request body) or json.",
    ),
    base: str | None = typer.Option(
        None,
        "--base",
        metavar="REF",
        help="Compare with the rules committed in --out DIR at this git revision (e.g. the pull request's "
        "base branch) instead of the files on disk: every NSG rule that leaves, whoever rendered.",
    ),
    out_follow_symlink: bool = typer.Option(
        False, "--out-follow-symlink", help="Allow --out (or a directory above it) to be a symbolic link."
    ),
    project_file: str | None = _PROJECT_OPTION,
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
    null, or dir, base (the --base REF, or null), files (file, status: added, changed or unchanged,
    linesAdded, linesRemoved) and removedRules (name, priority, tag, command; null when nsg-arm is
    not rendered).
    """
    from . import report as reporting

    if spec is None:
        _report_project(project_file, target, service_tags, since, out, format is ReportFormat.json)
        return
    if out == "-":
        raise UsageError(
            "report --out takes the directory the rules are rendered into (the report itself goes to standard output)"
        )
    from . import project

    service_tags = project.service_tags_file(service_tags, spec)
    result = reporting.build(spec, target, service_tags, since, out, base, out_follow_symlink)
    for name, what in result.out.not_regular if result.out is not None else ():
        _err(f"warning: {os.path.join(str(out), name)} is {what}, not a regular file: not read; render replaces it")
    stale = project.stale_files_note(service_tags, [name for t in result.targets for name in t.files], None)
    if stale:
        _err(stale)
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


def _report_project(
    project_file: str | None,
    target: list[str] | None,
    service_tags: str | None,
    since: str | None,
    out: str | None,
    as_json: bool,
) -> None:
    """`report` without SPEC: one report for every description of the project."""
    from . import project

    if since is not None or out is not None:
        raise UsageError(
            "in a project, report compares with the previous Service Tags file of each cloud in its directory "
            "and with each description's output directory: drop --since and --out, or give SPEC"
        )
    proj = project.load(project_file)
    reports = project.report_all(proj, target, service_tags)
    _out(project.report_json(proj, reports) if as_json else project.report_markdown(proj, reports))


tags_app = typer.Typer(no_args_is_help=True, help="Work with Microsoft's weekly Service Tags files.")
app.add_typer(tags_app, name="tags")


class DiffFormat(StrEnum):
    text = "text"
    json = "json"


@tags_app.command("diff")
def tags_diff(
    old: str | None = typer.Argument(None, metavar="OLD", help="The Service Tags file the rules were rendered from."),
    new: str | None = typer.Argument(None, metavar="NEW", help="The newer Service Tags file."),
    spec: list[str] | None = typer.Option(
        None,
        "--spec",
        metavar="SPEC",
        help="Compare only the tags this description needs (named as in NEW); repeatable: the tags any of them needs.",
    ),
    project_file: str | None = _PROJECT_OPTION,
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

    Without OLD and NEW, in a project: for each cloud its descriptions use, the previous and the newest
    file in its Service Tags directory, on the tags of those descriptions (JSON: one object per cloud,
    in a list).
    """
    from . import tagsdiff

    if old is None:
        _tags_diff_project(project_file, spec, format is DiffFormat.json)
        return
    if new is None:
        raise UsageError("give OLD and NEW (two Service Tags files), or neither in a project")
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


def _tags_diff_project(project_file: str | None, spec: list[str] | None, as_json: bool) -> None:
    from . import project, tagsdiff

    if spec:
        raise UsageError("--spec chooses the tags of OLD NEW; a project compares the tags of its descriptions")
    results = project.tags_diffs(project.load(project_file))
    code = 0
    parts = []
    for cloud, newest, result in results:
        if result is None:
            _err(f"{newest} is the only Service Tags file of {cloud} in its directory: nothing to compare")
            continue
        code = max(code, result.exit_code)  # a warning to review (3) outranks a change (1)
        parts.append(result)
    if as_json:
        _out(json.dumps([tagsdiff.as_json(r) for r in parts], indent=2) + "\n")  # ASCII, as format_json
    else:
        _out("\n".join(tagsdiff.format_text(r) for r in parts))
    for r in parts:
        for line in tagsdiff.warning_lines(r):
            _err(line)
    if code:
        raise typer.Exit(code)


# Built from the catalog; mypy cannot see the members of a functional Enum with computed values.
CloudName = Enum("CloudName", {name: name for name in CLOUDS}, type=str)  # type: ignore[misc]


@tags_app.command("fetch")
def tags_fetch(
    cloud: CloudName | None = typer.Option(
        None,
        "--cloud",
        **_formats(CloudName, "clouds", hints.CLOUD_ALIASES),
        help="The cloud whose file to fetch (default: SPEC's cloud, else AzureCloud).",
    ),
    spec: str | None = typer.Option(None, "--spec", metavar="SPEC", help="Take the cloud from this description."),
    directory: str | None = typer.Option(
        None, "--dir", metavar="DIR", help="Where to save the file (created). Default: the project's, else ."
    ),
    page_url: str | None = typer.Option(
        None,
        "--page-url",
        metavar="URL",
        help="Another download page (its own host's links are taken too), or a direct link to the .json file.",
    ),
    project_file: str | None = _PROJECT_OPTION,
) -> None:
    """Download the cloud's current ServiceTags_<Cloud>_<YYYYMMDD>.json from Microsoft into DIR.

    Reads the cloud's download page, takes its link on download.microsoft.com
    (https), downloads and checks the file (the cloud's, well-formed, changeNumber
    not lower than the newest such file in DIR) and saves it atomically under the
    link's name. Prints the file's path on stdout, also when the same bytes were
    already there (then nothing is written). Any failure: exit 2, nothing written.
    Honours HTTPS_PROXY/HTTP_PROXY/NO_PROXY; gives up after 60 s.

    Without --cloud and --spec, in a project (acrrules.toml): the file of each cloud its descriptions
    use, into its service-tags directory. Older files stay until `acrrules tags prune`.
    """
    from . import fetch

    if cloud is not None and spec is not None:
        raise UsageError("give --cloud or --spec, not both: --spec takes the cloud from the description")
    if cloud is None and spec is None:
        from . import project

        found = project_file or project.find()
        if found is not None:
            proj = project.load(found)
            where = directory or proj.service_tags
            if where is None:
                raise proj.no_service_tags()
            for cloud_name in project.clouds(proj):
                path, changed = fetch.fetch(cloud_name, where, page_url)
                _err(f"wrote {path}" if changed else f"{path} is already here with the same bytes: nothing written")
                _out(f"{path}\n")
            return
    directory = directory or "."
    if spec is not None:
        cloud_name = pipeline.load_description(spec).description.cloud
    else:
        cloud_name = cloud.value if cloud is not None else DEFAULT_CLOUD
    path, changed = fetch.fetch(cloud_name, directory, page_url)
    _err(f"wrote {path}" if changed else f"{path} is already here with the same bytes: nothing written")
    _out(f"{path}\n")


@tags_app.command("prune")
def tags_prune(
    directory: str | None = typer.Option(
        None, "--dir", metavar="DIR", help="Default: the project's service-tags directory."
    ),
    project_file: str | None = _PROJECT_OPTION,
) -> None:
    """Remove every ServiceTags_<Cloud>_<date>.json in DIR but the newest of its cloud: the weekly bot
    runs it after `render`, so the repository keeps the one file per cloud its rules come from."""
    from . import project
    from .catalog import CLOUDS as clouds

    if directory is None:
        proj = project.load(project_file)
        if proj.service_tags is None:
            raise proj.no_service_tags()
        directory = proj.service_tags
    if not os.path.isdir(directory):
        raise UsageError(f"{directory}: no such directory")
    for path in project.prune(directory, sorted({c.servicetags_cloud for c in clouds.values()})):
        _err(f"removed {path}")


@app.command()
def probe(
    spec: str | None = typer.Argument(None, metavar="SPEC"),
    service_tags: str | None = typer.Option(
        None,
        "--service-tags",
        metavar="FILE|DIR",
        help="Locate each address in this Service Tags file (a directory: its newest file of the cloud).",
    ),
    ca_bundle: str | None = typer.Option(
        None, "--ca-bundle", metavar="FILE", help="Trust these CAs instead of the system trust store."
    ),
    data_host: list[str] | None = typer.Option(
        None, "--data-host", metavar="NAME", help="A concrete name under a wildcard endpoint to probe it through."
    ),
    image: str | None = typer.Option(
        None,
        "--image",
        metavar="REPO:TAG",
        help="Pull this image's manifest and a blob through its redirect (credentials from the environment).",
    ),
    nameserver: list[str] | None = typer.Option(
        None,
        "--nameserver",
        metavar="ADDR[:PORT]",
        help="Ask this DNS server instead of the system resolver (/etc/hosts, resolv.conf, in nsswitch order).",
    ),
    format: Format = typer.Option(
        Format.table, "--format", **_formats(Format), help="table for people, json for programs."
    ),
    timeout: float = typer.Option(5.0, "--timeout", metavar="S", help="Seconds each hop may take."),
    deadline: float = typer.Option(30.0, "--deadline", metavar="S", help="Seconds the whole probe may take."),
    username: str | None = typer.Option(None, "--username", "-u", hidden=True),
    password: str | None = typer.Option(None, "--password", "-p", hidden=True),
    token: str | None = typer.Option(None, "--token", hidden=True),
    project_file: str | None = _PROJECT_OPTION,
) -> None:
    """Check the live path from this machine to every endpoint of SPEC (without SPEC: of every
    description of the project, its Service Tags directory the default --service-tags): DNS (with the CNAME chain),
    where each address lies (--service-tags), TCP 443 directly or through HTTPS_PROXY (NO_PROXY as
    curl reads it), TLS (SNI, certificate, interception) and the registry's own answer. Exit 0 when
    every probed hop works, 1 when one fails, 2 for bad input. Credentials (for --image) only from
    ACRRULES_PROBE_USERNAME and ACRRULES_PROBE_PASSWORD, or ACRRULES_PROBE_TOKEN."""
    from . import probe as probing

    if username is not None or password is not None or token is not None:
        raise UsageError(
            "credentials are read only from the environment (ACRRULES_PROBE_USERNAME and ACRRULES_PROBE_PASSWORD, "
            "or ACRRULES_PROBE_TOKEN), never from arguments, which other users see in the process list"
        )
    for name, value in (("SPEC", spec), ("--service-tags", service_tags), ("--ca-bundle", ca_bundle)):
        if value is not None:
            probing.check_not_credential(name, value)
    if spec is not None:
        specs = [spec]
    else:
        from . import project

        proj = project.load(project_file)
        if image is not None:
            raise UsageError("--image pulls from one registry: give SPEC, the description that names it")
        specs = proj.specs
        if service_tags is None:
            service_tags = proj.service_tags
    if not 0 < timeout <= 300 or not 0 < deadline <= 3600:
        raise UsageError("--timeout S takes 0 < S <= 300 and --deadline S takes 0 < S <= 3600 (in seconds)")
    if ca_bundle is not None:
        probing.check_ca_bundle(ca_bundle)
    parsed_image = probing.parse_image(image) if image is not None else None
    servers = tuple(probing.parse_nameserver(n) for n in nameserver or ())
    every = [probing.load_inputs(one, service_tags) for one in specs]  # all bad input first, nothing sent
    probing.check_data_hosts([e for inputs in every for e in inputs.endpoints], data_host or ())
    credentials = probing.credentials_from_env(os.environ)
    if parsed_image is not None:
        logins = [e.fqdn for e in every[0].endpoints if e.kind == "login"]
        if parsed_image.registry is not None and parsed_image.registry not in logins:
            raise UsageError(
                f"--image names {parsed_image.registry}, which is no login server of {spec}: {', '.join(logins)}"
            )
        if credentials is None:
            raise UsageError(
                "--image needs credentials in the environment: ACRRULES_PROBE_USERNAME and ACRRULES_PROBE_PASSWORD, "
                "or ACRRULES_PROBE_TOKEN (e.g. from `az acr login --expose-token`)"
            )
    options = probing.Options(
        timeout=timeout,
        deadline=deadline,
        ca_bundle=ca_bundle,
        nameservers=servers,
        data_hosts=tuple(data_host or ()),
        image=parsed_image,
        credentials=credentials,
        env=dict(os.environ),
    )
    for inputs in every:  # a malformed HTTPS_PROXY is bad input, before anything is sent
        for e in inputs.endpoints:
            probing.proxy_for(e.fqdn.lstrip("*."), options.env)
    reports = probing.run_all(every, options, probing.Progress)
    if format is Format.json:
        _out(probing.format_json(reports[0]) if spec is not None else probing.format_json_all(reports))
    else:
        _out(
            "\n".join(
                probing.format_table(r) if spec is not None else f"# {terminal(r.spec)}\n{probing.format_table(r)}"
                for r in reports
            )
        )
    for r in reports:
        _err(probing.summary(r))
    code = max(r.exit_code for r in reports)
    if code:
        raise typer.Exit(code)


@app.command()
def schema(
    project_schema: bool = typer.Option(
        False, "--project", help="The schema of the project file (acrrules.toml) instead."
    ),
) -> None:
    """Print the JSON Schema of the description format (for yaml-language-server)."""
    if project_schema:
        from .project import schema_text as project_schema_text

        _out(project_schema_text())
        return
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

    The cyclic garbage collector is off for the whole run.  A run is short and builds a great
    many objects that live until it ends (a large description, its plan, its outputs), and next
    to no reference cycles: reference counting frees everything else as before (a run leaves a
    few thousand cyclic objects, most of them from imports).  With the collector on, its
    collections walked the loaded description again and again: a fifth of validating 100,000
    registries (bench/bench_scale.py).  The API (acrrules.api) leaves the collector alone.
    """
    gc.disable()
    return main()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(run())
