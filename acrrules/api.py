"""The Python API (spec §7): what `import acrrules` offers, over the same pipeline as the CLI.

    d = acrrules.load("acr.yaml")
    files = acrrules.render(d, service_tags="ServiceTags_Public_20251103.json", out_dir="rules")

`render` runs `pipeline.run_description`, the code path of `acrrules render`, so it returns
exactly the bytes the CLI writes. Input problems raise `InputError` (`.diagnostics`: file, line,
column, message); a wrong `targets` argument, a programming error, raises ValueError or TypeError.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Union

from . import hints, pipeline, servicetags
from . import plan as planning
from .errors import InputError, UsageError
from .load import SourceDocument
from .model import Description
from .plan import Endpoint
from .servicetags import ServiceTagsFile

PathLike = Union[str, "os.PathLike[str]"]
ServiceTagsArg = PathLike | ServiceTagsFile | None


def load_service_tags(path: PathLike) -> ServiceTagsFile:
    """Read and check a Service Tags file (Microsoft's weekly download or `az network
    list-service-tags` output). Pass the result to `render` and `load` as often as you like:
    it is read once, and each tag is checked once."""
    return servicetags.load(os.fspath(path))


def _tags(service_tags: ServiceTagsArg) -> ServiceTagsFile | None:
    if service_tags is None or isinstance(service_tags, ServiceTagsFile):
        return service_tags
    if isinstance(service_tags, (str, os.PathLike)):
        return load_service_tags(service_tags)
    raise TypeError(
        f"service_tags must be a path or what acrrules.load_service_tags() returned, not {type(service_tags).__name__}"
    )


def load(path: PathLike, *, service_tags: ServiceTagsArg = None) -> Description:
    """Read and validate a description (YAML). With `service_tags`, locations that only that
    Service Tags file knows (newer than this acrrules) are accepted, as `render --service-tags` does."""
    return pipeline.load_description(os.fspath(path), _tags(service_tags)).description


def endpoints(description: Description) -> tuple[Endpoint, ...]:
    """Every endpoint the clients need (FQDN, kind, registry, region, port), sorted: the list
    `acrrules endpoints --format json` prints (`Endpoint.as_json()`)."""
    return planning.endpoints(description)


def render(
    description: Description,
    *,
    targets: Iterable[str] | None = None,
    service_tags: ServiceTagsArg = None,
    out_dir: PathLike | None = None,
) -> dict[str, str]:
    """File name -> text of every file the chosen targets write: the bytes of `acrrules render`.

    targets: target ids (`azure-firewall`, `nsg-arm`, `nsg-tf`, `nftables`, `iptables`); None
      renders the description's `outputs:` (else every target) that the inputs allow: the IP
      targets only with `service_tags`.
    service_tags: a path, or what `load_service_tags` returned.
    out_dir: the directory the files are for. Headers name the description relative to it, as
      `render --out DIR` writes them; None: relative to the working directory, as `--out -`.

    What the CLI says besides the files (what a target warns about, targets skipped for want of
    service_tags, a Service Tags file more than 14 days old) comes as `acrrules.AcrrulesWarning`
    (the `warnings` module).
    """
    if isinstance(targets, str):
        raise TypeError("targets is a list of target ids, such as ['nsg-arm'], not a string")
    names = None if targets is None else list(targets)
    if names is not None and not names:
        raise ValueError("targets is empty: give target ids, or None for the description's outputs")
    tags_file = _tags(service_tags)
    out = None if out_dir is None else os.fspath(out_dir)
    try:
        hint = hints.API_SERVICE_TAGS  # errors name this function's parameter, not the CLI's option
        pipeline.select_targets(names, tags_file is not None, service_tags_hint=hint)  # a wrong target first
        try:
            run = pipeline.run_description(
                pipeline.Loaded(None, description), names, tags_file, out, service_tags_hint=hint
            )
        except InputError:
            doc = _document(description, tags_file)
            if doc is None:
                raise
            try:  # the same problems again, now located in the description's file
                pipeline.run_description(
                    pipeline.Loaded(doc, description), names, tags_file, out, service_tags_hint=hint
                )
            except InputError as located:
                raise located from None
            raise
    except UsageError as e:
        raise ValueError(str(e)) from None
    _warn(run)
    return run.files


def _warn(run: pipeline.Run) -> None:
    """The notes `acrrules render` prints on stderr, as AcrrulesWarning: the same policies (project.py)."""
    import warnings

    from . import project
    from .errors import AcrrulesWarning

    notes = project.skipped_notes(run)
    stale = project.stale_note(run, None)
    # What the targets warn about (standalone nftables/iptables without resolvers blocks DNS)
    found = [str(w) for w in pipeline.run_warnings(run)]
    for note in [*found, *notes, *([stale] if stale else [])]:
        warnings.warn(AcrrulesWarning(note), stacklevel=3)  # skipped notes already say service_tags= (hint)


def _document(description: Description, tags_file: ServiceTagsFile | None) -> SourceDocument | None:
    """The positions of the file `description` was loaded from, when that file still says the same
    (only needed to locate a problem: the API keeps no reference to the file)."""
    from .model import build

    if not description.source_name or description.source_name == "<api>":
        return None
    try:
        loaded = pipeline.load_description(description.source_name, tags_file)
    except InputError:
        return None
    try:
        return loaded.doc if loaded.doc is not None and build(loaded.doc) == description else None
    except Exception:
        return None
