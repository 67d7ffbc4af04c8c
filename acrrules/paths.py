"""Where the shipped templates and schemas are.

In an installed package they are `acrrules/templates` and `acrrules/schemas`
(pyproject.toml maps the top-level folders there); in a source checkout they
are the top-level `templates/` and `schemas/` themselves. A built package also
has the templates compiled, in `acrrules/compiled_templates` (setup.py).
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _data_dir(folder: str) -> Path:
    installed = _PACKAGE / folder
    return installed if installed.is_dir() else _PACKAGE.parent / folder


def schemas_dir() -> Path:
    return _data_dir("schemas")


def templates_dir() -> Path:
    return _data_dir("templates")


def compiled_templates_dir() -> Path:
    return _PACKAGE / "compiled_templates"
