"""Where the shipped templates and schemas are.

In an installed package they are `acrrules/templates` and `acrrules/schemas`
(pyproject.toml maps the top-level folders there); in a source checkout they
are the top-level `templates/` and `schemas/` themselves.
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path


def _data_dir(package: str, folder: str) -> Path:
    try:
        installed = Path(str(resources.files(package)))
        if installed.is_dir() and any(installed.iterdir()):
            return installed
    except (ModuleNotFoundError, TypeError):
        pass
    return Path(__file__).resolve().parent.parent / folder


def schemas_dir() -> Path:
    return _data_dir("acrrules.schemas", "schemas")


def templates_dir() -> Path:
    return _data_dir("acrrules.templates", "templates")
