"""Rules for the source itself."""

from __future__ import annotations

import re

from conftest import REPO

# "~9 ms", "30 ms", "10x faster", "0.1 ms per tag": figures that go stale in a comment. Measured
# figures belong in bench/README.md, printed by bench/bench_render.py.
TIMING = re.compile(r"\d\s*(ms|µs|us|ns|seconds?)\b|\d+(\.\d+)?\s*x (faster|slower)|~\d+\s*x\b", re.I)


def test_no_timing_figures_in_the_code():
    found = [
        f"{path.relative_to(REPO)}:{n}: {line.strip()}"
        for path in sorted((REPO / "acrrules").rglob("*.py")) + [REPO / "setup.py"]
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if TIMING.search(line)
    ]
    assert found == []
