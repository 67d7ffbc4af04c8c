"""Stage 5: render a RulePlan through the templates of each target.

The Jinja environment is strict (an undefined name is an error, never an empty
string) and does no implicit escaping: every value a template prints goes
through the escaping filter of that output language (acrrules/escape.py), named explicitly.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import jinja2

from . import __version__, catalog
from .escape import FILTERS, EscapeError, list_fqdn
from .paths import compiled_templates_dir, templates_dir
from .plan import RulePlan

__all__ = ["EscapeError", "LimitProblem", "Target", "environment", "header_lines", "source_label"]


def _environment(loader: jinja2.BaseLoader) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=loader,
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # escaping is explicit, per output language (FILTERS)
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

    path: tuple[str | int, ...]  # a key path into the description, e.g. ("registries", 0, "name")
    message: str


def unwritable_registry_names(plan: RulePlan, where: str) -> list[LimitProblem]:
    """Registries whose login server is no plain host name, for targets that cannot quote one (`where`
    names their files). Validation refuses such names; descriptions built through the API are not validated."""
    suffix = plan.description.cloud_info.login_suffix
    problems = []
    for i, reg in enumerate(plan.description.registries):
        try:
            list_fqdn(f"{reg.fqdn_name}.{suffix}")
        except EscapeError:
            problems.append(
                LimitProblem(
                    ("registries", i, "name"),
                    f"registries[{i}].name: {reg.name!r} cannot be written as a host name in {where}: "
                    "use 5-50 ASCII letters and digits",
                )
            )
    return problems


class Target:
    """One output format: a small Python renderer plus its template(s).

    Subclasses set `id`, `files` ((output name, template name) pairs) and build
    the template context in `context`; the logic lives there, the text format
    in the template.  `terraform` targets share one `versions.tf` per directory.
    """

    id: str = ""
    files: tuple[tuple[str, str], ...] = ()
    needs_service_tags: bool = False
    terraform: bool = False
    # A target that owns its settings: their JSON Schema (the `targets.<id>` fragment, merged into
    # the description's schema) and a NamedTuple type whose defaults are the settings' defaults.
    settings_schema: ClassVar[dict[str, Any]] = {}
    Settings: Any = None
    # Settings that list IP addresses (checked, located, by validate like `sources`).
    address_settings: tuple[str, ...] = ()
    # Files built from the Service Tags file's prefixes, of a target whose other files need none
    # (needs_service_tags False): without --service-tags they are left out, and render says so.
    prefix_files: tuple[str, ...] = ()
    # Files without the header: plain lists whose consumers read every line as data and agree on no
    # comment syntax (docs/targets.md, "Files without a header").
    plain_files: tuple[str, ...] = ()

    def service_tag_files(self) -> tuple[str, ...]:
        """The files whose content comes from the Service Tags file: only their headers name it."""
        return tuple(name for name, _ in self.files) if self.needs_service_tags else self.prefix_files

    def settings(self, plan: RulePlan) -> Any:
        """This target's settings from the description, defaults (`default_settings`) applied."""
        desc = plan.description
        given = dict(desc.target_data.get(self.id, {}))
        return self.Settings(**{**self.default_settings(plan), **given})

    def default_settings(self, plan: RulePlan) -> dict[str, Any]:
        """Defaults that depend on the description (names derived from its `name`)."""
        return {}

    def object_names(self, plan: RulePlan) -> tuple[tuple[str, Any], ...]:
        """(what, name) of the objects this target creates, for `acrrules report`: a name, a number,
        or a tuple of them (a priority range: first, last)."""
        return ()

    def check(self, plan: RulePlan) -> list[LimitProblem]:
        """Platform limits this plan would break in this target (none by default)."""
        return []

    def warnings(self, plan: RulePlan) -> list[LimitProblem]:
        """Settings that render but probably do not do what the user wants (printed, located, as
        `warning:` by validate and render; nothing fails)."""
        return []

    def context(self, plan: RulePlan) -> dict[str, Any]:
        raise NotImplementedError

    def render(self, plan: RulePlan, source: str | None = None) -> dict[str, str]:
        """The target's files; `source` is how the header names the description (see source_label)."""
        env = environment()
        ctx = {"version": __version__, "port": catalog.PORT, **self.context(plan)}
        from_tags = self.service_tag_files()
        out = {}
        for name, template in self.files:
            if name in self.prefix_files and plan.prefixes is None:
                continue  # no Service Tags file: the target's other files only
            ctx["header"] = header_lines(plan, source, with_service_tags=name in from_tags)
            out[name] = env.get_template(template).render(ctx)
        return out


TERRAFORM_VERSIONS_FILE = "versions.tf"


def render_terraform_versions(plan: RulePlan, source: str | None = None) -> dict[str, str]:
    """`versions.tf`, once per output directory that holds Terraform: it makes the directory a
    self-contained module with its provider requirements (catalog.TERRAFORM_*)."""
    ctx = {
        "header": header_lines(plan, source, with_service_tags=False),
        "required_version": catalog.TERRAFORM_REQUIRED_VERSION,
        "azurerm_source": catalog.TERRAFORM_AZURERM_SOURCE,
        "azurerm_version": catalog.TERRAFORM_AZURERM_VERSION,
    }
    return {TERRAFORM_VERSIONS_FILE: environment().get_template("versions.tf.j2").render(ctx)}


def source_label(spec_path: str, out_dir: str | None) -> str:
    """How output headers name the description: relative to the output directory, POSIX
    separators, so the bytes do not depend on the working directory or on how paths were typed.
    Without an output directory (`--out -`, the API): the path as given, made relative to the
    working directory when it lies under it."""
    if spec_path == "<api>" or not spec_path:
        return spec_path
    spec = os.path.realpath(spec_path)
    if out_dir is None:
        cwd = os.path.realpath(os.getcwd())
        if spec == cwd or spec.startswith(cwd.rstrip(os.sep) + os.sep):
            return os.path.relpath(spec, cwd).replace(os.sep, "/")
        return spec_path.replace(os.sep, "/")
    try:
        return os.path.relpath(spec, os.path.realpath(out_dir)).replace(os.sep, "/")
    except ValueError:  # another drive (Windows): no relative path exists
        return spec.replace(os.sep, "/")


def header_lines(plan: RulePlan, source: str | None = None, *, with_service_tags: bool = True) -> list[str]:
    """The header of every output.  Only outputs built from the Service Tags file name it, so the
    FQDN/tag outputs do not change when a new weekly file is given."""
    desc = plan.description
    lines = [
        (
            f"Generated by acrrules {__version__} from {source if source is not None else desc.source_name}; "
            "do not edit."
        ),
        "Change the description and run `acrrules render` again.",
        f"Cloud: {desc.cloud}. Registries: {', '.join(r.name for r in desc.registries[:10])}"
        + (f" and {len(desc.registries) - 10} more." if len(desc.registries) > 10 else "."),
    ]
    if with_service_tags and plan.prefixes is not None:
        # The cloud and the changeNumber of each tag used, not the file's name, date or changeNumber:
        # a weekly file in which none of these tags changed renders the same bytes.
        p = plan.prefixes
        lines.append(f"Service Tags of cloud {p.cloud}, with the changeNumber of each tag used:")
        lines.extend(f"  {tag} {change}" for tag, change in p.tag_change_numbers)
    return lines
