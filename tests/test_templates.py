"""Templates compiled at build time (setup.py) render exactly what templates/ renders."""

from __future__ import annotations

import importlib
from pathlib import Path

import jinja2
import pytest
from conftest import GOLDEN, REPO, need_shared, run_cli, sample_specs
from regen_golden import render_args, servicetags_for

render = importlib.import_module("acrrules.render")  # the module: acrrules.render is the API function


@pytest.fixture
def compiled(tmp_path, monkeypatch) -> Path:
    """The templates compiled as setup.py compiles them, in use for the test."""
    target = tmp_path / "compiled_templates"
    render.compile_templates(target)
    monkeypatch.setattr(render, "compiled_templates_dir", lambda: target)
    render.environment.cache_clear()
    yield target
    render.environment.cache_clear()


@pytest.mark.parametrize("spec", sample_specs(), ids=lambda p: p.stem)
def test_compiled_templates_render_the_golden_files(compiled, spec: Path, tmp_path: Path):
    assert isinstance(render.environment().loader, jinja2.ModuleLoader)
    if servicetags_for(spec) is None:
        need_shared()
    r = run_cli(*render_args(spec, GOLDEN / spec.stem), "--check", cwd=REPO)  # headers: relative to the golden dir
    assert r.code == 0, r.out


def test_templates_compiled_by_another_jinja_are_not_used(compiled):
    (compiled / "JINJA_VERSION").write_text("2.11.3", encoding="utf-8")
    assert isinstance(render.environment().loader, jinja2.FileSystemLoader)


def test_a_source_checkout_compiles_templates_at_run_time(monkeypatch, tmp_path):
    monkeypatch.setattr(render, "compiled_templates_dir", lambda: tmp_path / "none")
    render.environment.cache_clear()
    try:
        assert isinstance(render.environment().loader, jinja2.FileSystemLoader)
    finally:
        render.environment.cache_clear()
