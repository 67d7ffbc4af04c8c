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
from typing import List, Optional

import typer

from . import __version__, pipeline, plan as planning
from .errors import EXIT_CHANGES, EXIT_INVALID, AcrrulesError, InputError
from .targets import TARGETS

app = typer.Typer(
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},  # subcommands inherit it
    help="Egress firewall rules for clients of Azure Container Registry.",
)


class Format(StrEnum):  # str() is the value, as typer 0.28 converts it back
    table = "table"
    json = "json"


def _formats(kind: type[Enum]) -> dict:
    """typer.Option arguments for a --format option of `kind`'s values: a parser whose error names
    the formats in plain words (typer's own message for an Enum is pydantic's: "Value error, 'x' is
    not one of ..."), and, as typer 0.28 knows no choices once there is a parser, their completion
    and metavar."""
    def parse(value):
        if isinstance(value, kind):  # the default
            return value
        try:
            return kind(value)
        except ValueError:
            names = [m.value for m in kind]
            raise typer.BadParameter(f"{value!r} is unknown: the formats are {', '.join(names[:-1])} and "
                                     f"{names[-1]}") from None

    def complete(incomplete: str) -> list[str]:
        return [m.value for m in kind if m.value.startswith(incomplete)]

    return {"parser": parse, "autocompletion": complete, "metavar": "|".join(m.value for m in kind)}


def _out(text: str) -> None:
    sys.stdout.write(text)


def _err(text: str) -> None:
    sys.stdout.flush()
    sys.stderr.write(text if text.endswith("\n") else text + "\n")


@app.command()
def validate(specs: List[str] = typer.Argument(..., metavar="SPEC", hidden=True)):  # hidden: typer shows its type
    """Check the registry descriptions SPEC..., including the platform limits of every target; print every
    problem as FILE:LINE:COLUMN: message. (The IP prefixes are checked by `render --service-tags`.)"""
    failed = False
    for spec in specs:
        try:
            loaded = pipeline.load_description(spec)
            rule_plan = planning.build(loaded.description)
            problems = pipeline.limit_problems(rule_plan, list(TARGETS), loaded.doc)
            if problems:
                raise InputError(problems)
        except InputError as e:
            failed = True
            for line in e.lines():
                _err(line)
            continue
        d = loaded.description
        _out(f"{spec}: ok ({len(d.registries)} registr{'y' if len(d.registries) == 1 else 'ies'}, "
             f"{len(rule_plan.endpoints)} endpoints, {len(rule_plan.tags)} service tags, cloud {d.cloud})\n")
    if failed:
        raise typer.Exit(EXIT_INVALID)


@app.command()
def endpoints(
    spec: str = typer.Argument(..., metavar="SPEC"),
    format: Format = typer.Option(Format.table, "--format", **_formats(Format),
                                  help="table for people, json for programs."),
):
    """List every endpoint (FQDN, TCP 443) the clients need."""
    loaded = pipeline.load_description(spec)
    eps = planning.endpoints(loaded.description)
    if format is Format.json:
        _out(json.dumps([e.as_json() for e in eps], indent=2) + "\n")
        return
    rows = [("KIND", "FQDN", "REGISTRY", "REGION", "PORT")]
    rows += [(e.kind, e.fqdn, e.registry or "-", e.region or "-", str(e.port)) for e in eps]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    _out("".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() + "\n" for r in rows))


@app.command()
def render(
    spec: str = typer.Argument(..., metavar="SPEC"),
    target: Optional[List[str]] = typer.Option(None, "--target", "-t", metavar="T",
                                               help=f"Target to render (repeatable): {', '.join(TARGETS)}. "
                                                    "Default: all that the inputs allow."),
    out: str = typer.Option(".", "--out", "-o", metavar="DIR|-", help="Output directory (created), or - for stdout."),
    service_tags: Optional[str] = typer.Option(None, "--service-tags", metavar="FILE",
                                               help="Microsoft Service Tags JSON (needed by nftables, iptables)."),
    check: bool = typer.Option(False, "--check", help="Write nothing; exit 1 with a diff if files on disk differ."),
):
    """Render the firewall rules of a description."""
    from . import write

    _, _, files = pipeline.run(spec, target, service_tags)
    if out == "-":
        if check:
            raise AcrrulesError("--check compares files in a directory: give --out DIR")
        many = len(files) > 1
        for name, text in files.items():
            if many:
                _out(f"# ==> {name} <==\n")
            _out(text)
        return
    if check:
        diffs = write.drift(out, files)
        for d in diffs:
            _out(d)
        if diffs:
            _err(f"{len(diffs)} of {len(files)} file(s) in {out} differ from {spec}: run `acrrules render` "
                 "without --check to update them")
            raise typer.Exit(EXIT_CHANGES)
        _err(f"{len(files)} file(s) in {out} are up to date")
        return
    for path, changed in write.write_files(out, files):
        _err(f"{'wrote' if changed else 'unchanged'} {path}")


tags_app = typer.Typer(no_args_is_help=True, help="Work with Microsoft's weekly Service Tags files.")
app.add_typer(tags_app, name="tags")


class DiffFormat(StrEnum):
    text = "text"
    json = "json"


@tags_app.command("diff")
def tags_diff(
    old: str = typer.Argument(..., metavar="OLD", help="The Service Tags file the rules were rendered from."),
    new: str = typer.Argument(..., metavar="NEW", help="The newer Service Tags file."),
    spec: Optional[str] = typer.Option(None, "--spec", metavar="SPEC",
                                       help="Compare only the tags this description needs (named as in NEW)."),
    format: DiffFormat = typer.Option(DiffFormat.text, "--format", **_formats(DiffFormat),
                                      help="text for people, json for programs."),
):
    """Per tag, the prefixes added and removed between OLD and NEW.

    Exit 1 when any compared tag's prefixes changed (tags added or removed
    included), 0 when none did (a changeNumber-only change is reported, exit 0).
    JSON: {"old"/"new": {"file", "cloud", "changeNumber"}, "spec", "compared",
    "changed": [{"tag", "status": added|removed|changed, "changeNumber": [OLD, NEW],
    "added": [...], "removed": [...]}], "renumbered": [{"tag", "changeNumber"}],
    "unchanged", "missingInNew"}; tags sorted by name, prefixes IPv4 first, by address.
    """
    from . import tagsdiff

    result = tagsdiff.diff(old, new, spec)
    _out(tagsdiff.format_json(result) if format is DiffFormat.json else tagsdiff.format_text(result))
    if result.exit_code:
        raise typer.Exit(result.exit_code)


@app.command()
def schema():
    """Print the JSON Schema of the description format (for yaml-language-server)."""
    from .validate import schema_path

    _out(schema_path().read_text(encoding="utf-8"))


def _version_callback(value: bool):
    if value:
        _out(f"acrrules {__version__}\n")
        raise typer.Exit()


@app.callback()
def _main(version: bool = typer.Option(False, "--version", callback=_version_callback, is_eager=True,
                                       help="Print the version and exit.")):
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
    except Exception as e:  # noqa: BLE001 - the user must never see a traceback
        if os.environ.get("ACRRULES_DEBUG"):
            raise
        _err(f"acrrules: internal error: {type(e).__name__}: {e} (please report it; "
             "set ACRRULES_DEBUG=1 for details)")
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
