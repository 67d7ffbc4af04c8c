"""Start-up time: typer without pydantic.

typer (0.2x) coerces every command-line parameter through a pydantic TypeAdapter,
and importing pydantic is ~50 ms, a third of a whole render. `install()` swaps in
a shortcut for the parameter types acrrules uses (str, bool, list of str, Enum
choices) that returns exactly what typer's adapter returns, and hands anything
unusual, including every error, to typer's own coercion so messages stay
typer's. It touches typer internals, so it checks they exist and otherwise does
nothing (acrrules then simply starts slower). Only `cli.main` installs it.
"""
from __future__ import annotations

from enum import Enum

try:
    from typer import _coercion as _typer_coercion, core as _typer_core
    from typer._param_types import coerce_cli_choice as _coerce_cli_choice
except ImportError:  # pragma: no cover - another typer layout: keep its own coercion
    _typer_core = None


def _fast_runtime_param(descriptor):
    """typer coerces every parameter through a pydantic TypeAdapter, and importing pydantic
    costs ~50 ms per run. Our str, list-of-str and Enum-choice parameters take a shortcut that
    returns exactly what typer's adapter returns; on anything unusual (or any error, so the
    messages stay typer's) it hands over to typer's own coercion."""
    full = _typer_build_runtime_param
    ann, info = descriptor.annotation, descriptor.parameter_info
    if descriptor.file_annotation is not None or info.parser is not None:
        return full(descriptor)
    origin, args = getattr(ann, "__origin__", None), getattr(ann, "__args__", ())
    if ann is str or ann is bool:
        def fast(value, ctx):
            return value if type(value) is ann else None
    elif origin is list and args == (str,):
        def fast(value, ctx):
            ok = isinstance(value, (list, tuple)) and all(type(v) is str for v in value)
            return list(value) if ok else None
    elif isinstance(ann, type) and issubclass(ann, Enum):
        def fast(value, ctx):
            try:
                return _coerce_cli_choice(value, choices=list(ann), case_sensitive=info.case_sensitive, ctx=ctx)
            except Exception:  # noqa: BLE001 - typer's adapter reports it, in its words
                return None
    else:
        return full(descriptor)

    class FastRuntimeParam(_typer_coercion.RuntimeParam):
        def _coerce_value(self, value, param, ctx):
            result = fast(value, ctx)
            return result if result is not None else full(descriptor)._coerce_value(value, param=param, ctx=ctx)

    return FastRuntimeParam(parameter_info=info, annotation=ann)


def install() -> None:
    """Route typer's parameter coercion through the shortcut (idempotent; a no-op on other typer layouts)."""
    global _typer_build_runtime_param
    if _typer_core is None or not hasattr(_typer_core, "build_runtime_param") \
            or not hasattr(_typer_coercion, "RuntimeParam"):
        return
    if _typer_core.build_runtime_param is not _fast_runtime_param:
        _typer_build_runtime_param = _typer_core.build_runtime_param
        _typer_core.build_runtime_param = _fast_runtime_param
