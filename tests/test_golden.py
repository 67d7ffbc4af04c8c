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
    if servicetags_for(spec) is None:
        need_shared()
    expected_dir = GOLDEN / spec.stem
    assert expected_dir.is_dir(), f"no golden files for {spec.name}: run python tests/regen_golden.py"
    r = run_cli(*render_args(spec, tmp_path), cwd=REPO)
    assert r.code == 0, r.err
    got = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    want = {p.name: p.read_bytes() for p in expected_dir.iterdir()}
    assert sorted(got) == sorted(want)
    for name in want:
        assert got[name] == want[name], f"{spec.stem}/{name} differs from the golden file " \
                                        "(python tests/regen_golden.py, then review the diff)"


def test_every_golden_dir_has_a_sample():
    stems = {p.stem for p in sample_specs()}
    assert {p.name for p in GOLDEN.iterdir() if p.is_dir()} == stems
