"""Golden-file regression: every sample renders byte-for-byte as reviewed.

Regenerate with `python tests/regen_golden.py` and review the diff like code.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import GOLDEN, REPO, need_shared, run_cli, sample_specs
from regen_golden import render_args, servicetags_for


@pytest.mark.parametrize("spec", sample_specs(), ids=lambda p: p.stem)
def test_sample_matches_golden(spec: Path, tmp_path: Path):
    """`render --check` against the golden directory, as a user's CI checks committed outputs: run
    from another working directory with absolute paths, where regen_golden.py runs from the
    repository root with relative ones, so this also proves the bytes do not depend on either."""
    if servicetags_for(spec) is None:
        need_shared()
    expected_dir = GOLDEN / spec.stem
    assert expected_dir.is_dir(), f"no golden files for {spec.name}: run python tests/regen_golden.py"
    args = [a if i != 1 else str(REPO / a) for i, a in enumerate(render_args(spec, expected_dir))]
    r = run_cli(*args, "--check", cwd=tmp_path)
    assert r.code == 0, (
        f"{spec.stem} differs from its golden files (python tests/regen_golden.py, then review the diff):\n{r.out}"
    )
    fresh = tmp_path / "fresh"
    assert run_cli(*render_args(spec, fresh), cwd=REPO).code == 0
    assert sorted(p.name for p in fresh.iterdir()) == sorted(p.name for p in expected_dir.iterdir())


def test_every_golden_dir_has_a_sample():
    stems = {p.stem for p in sample_specs()}
    assert {p.name for p in GOLDEN.iterdir() if p.is_dir()} == stems
