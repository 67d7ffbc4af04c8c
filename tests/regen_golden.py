#!/usr/bin/env python3
"""Regenerate the golden files: `python tests/regen_golden.py` (from anywhere).

Every sample in samples/ is rendered from the repository root (so headers say
`samples/<name>.yaml`) into tests/golden/<name>/, all targets included.  The IP
targets need a Service Tags file: each cloud uses the pinned file below from
../shared/data/servicetags, so the goldens do not move when a newer week is
added there.  Review the diff like code before committing it.
"""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GOLDEN = REPO / "tests" / "golden"
SHARED = Path(os.environ.get("ACRRULES_SHARED", REPO.parent / "shared"))
PINNED_SERVICETAGS = {
    "AzureCloud": "ServiceTags_Public_20251103.json",
    "AzureUSGovernment": "ServiceTags_AzureGovernment_20251020.json",
    "AzureChinaCloud": "ServiceTags_China_20251020.json",
}


def sample_cloud(spec: Path) -> str:
    import yaml

    return (yaml.safe_load(spec.read_text(encoding="utf-8")) or {}).get("cloud", "AzureCloud")


def servicetags_for(spec: Path) -> Path | None:
    path = SHARED / "data" / "servicetags" / PINNED_SERVICETAGS[sample_cloud(spec)]
    return path if path.is_file() else None


def render_args(spec: Path, out: Path) -> list[str]:
    """The CLI arguments, relative to the repository root."""
    args = ["render", f"samples/{spec.name}", "--out", str(out)]
    tags = servicetags_for(spec)
    if tags is not None:
        args += ["--service-tags", str(tags)]
    return args


def main() -> int:
    sys.path.insert(0, str(REPO))
    from acrrules.cli import main as cli

    os.chdir(REPO)
    missing = False
    for spec in sorted((REPO / "samples").glob("*.yaml")):
        out = GOLDEN / spec.stem
        if out.exists():
            shutil.rmtree(out)
        if servicetags_for(spec) is None:
            missing = True
        code = cli(render_args(spec, out))
        if code != 0:
            print(f"rendering {spec.name} failed (exit {code})", file=sys.stderr)
            return code
    if missing:
        print(f"warning: {SHARED} lacks the pinned Service Tags files: IP targets were not regenerated",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
