"""acrrules: egress rules for clients of Azure Container Registry.

The pipeline, one module per stage:
    load (YAML with positions) -> validate (JSON Schema + domain rules)
    -> model (RegistrySpec, Description) -> plan (endpoints, service tags,
    prefixes) -> render (one renderer + template per target) -> write (atomic).

The Python API (spec §7, acrrules/api.py):

    import acrrules
    d = acrrules.load("acr.yaml")                  # Description; InputError with .diagnostics
    acrrules.endpoints(d)                          # the endpoints, as `acrrules endpoints`
    tags = acrrules.load_service_tags("ServiceTags_Public_20251103.json")
    files = acrrules.render(d, service_tags=tags, out_dir="rules")   # {file name: text}

`import acrrules` imports nothing else: each name is imported on first use.
"""

from __future__ import annotations

import sys as _sys
import types as _types

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing at start-up; type checkers know the name

__version__ = "0.1.0"

__all__ = [
    "AcrrulesError",
    "AcrrulesWarning",
    "Description",
    "Diagnostic",
    "Endpoint",
    "InputError",
    "ServiceTagsFile",
    "__version__",
    "endpoints",
    "load",
    "load_service_tags",
    "render",
]

_LAZY = {
    "load": "api",
    "endpoints": "api",
    "render": "api",
    "load_service_tags": "api",
    "InputError": "errors",
    "AcrrulesError": "errors",
    "AcrrulesWarning": "errors",
    "Diagnostic": "errors",
    "Description": "model",
    "Endpoint": "plan",
    "ServiceTagsFile": "servicetags",
}

if TYPE_CHECKING:
    from typing import Any

    from .api import endpoints, load, load_service_tags, render
    from .errors import AcrrulesError, AcrrulesWarning, Diagnostic, InputError
    from .model import Description
    from .plan import Endpoint
    from .servicetags import ServiceTagsFile


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The public names (__all__) and the module's own dunders; not the helpers this file uses, nor
    the submodules that imports happened to set as attributes."""
    return sorted({*__all__, *(n for n in globals() if n.startswith("__") and n.endswith("__"))})


class _Package(_types.ModuleType):
    """`acrrules.load` and `acrrules.render` are API functions, and also the names of two pipeline
    modules (acrrules/load.py, acrrules/render.py). Importing a submodule sets it as an attribute of
    the package, which would hide the function; the modules stay reachable where imports look for
    them (sys.modules: `from acrrules.load import ...`, `from .render import ...`)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if _LAZY.get(name) == "api" and isinstance(value, _types.ModuleType):
            return
        super().__setattr__(name, value)


_sys.modules[__name__].__class__ = _Package
del annotations, TYPE_CHECKING  # the __future__ feature and the flag: no names of this package
