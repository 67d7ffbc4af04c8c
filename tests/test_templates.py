"""Templates compiled at build time (setup.py) render exactly what templates/ renders."""
from __future__ import annotations

from pathlib import Path

import jinja2
import pytest

from acrrules import render
from conftest import GOLDEN, REPO, need_shared, run_cli, sample_specs
from regen_golden import render_args, servicetags_for


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
    out = tmp_path / "out"
    r = run_cli(*render_args(spec, out), cwd=REPO)
    assert r.code == 0, r.err
    want = {p.name: p.read_bytes() for p in (GOLDEN / spec.stem).iterdir()}
    assert {p.name: p.read_bytes() for p in out.iterdir()} == want


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
