#!/usr/bin/env python3
"""Regenerate the golden files and examples/report-example.md: `python tests/regen_golden.py` (from anywhere).

Every sample in samples/ is rendered from the repository root (so headers say
`samples/<name>.yaml`) into tests/golden/<name>/, all targets included.  The IP
targets need a Service Tags file: each cloud uses the pinned file below from
../shared/data/servicetags, so the goldens do not move when a newer week is
added there.  Review the diff like code before committing it.

examples/report-example.md is the pull request body of a weekly run (see report_example).
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


EXAMPLE_REPORT = REPO / "examples" / "report-example.md"
REPORT_WEEKS = ("ServiceTags_Public_20251006.json", "ServiceTags_Public_20251013.json")  # OLD, NEW
REPORT_SAMPLE = REPO / "samples" / "geo-replicated-premium.yaml"
REPORT_DROPPED_REPLICA = "northeurope"


def report_example() -> str | None:
    """The text of examples/report-example.md (None without ../shared): the weekly pull request of
    samples/geo-replicated-premium.yaml, saved as acr.yaml, whose rules in rules/ were rendered from
    ServiceTags_Public_20251006.json while the description still had a replica in northeurope.
    In a temporary directory:

        acrrules render acr.yaml --service-tags ServiceTags_Public_20251006.json --out rules   # with northeurope
        # northeurope leaves acr.yaml
        acrrules report acr.yaml --service-tags ServiceTags_Public_20251013.json \\
            --since ServiceTags_Public_20251006.json --out rules --format markdown
    """
    import contextlib
    import io
    import tempfile

    sys.path.insert(0, str(REPO))
    from acrrules.cli import main as cli

    old, new = (SHARED / "data" / "servicetags" / name for name in REPORT_WEEKS)
    if not (old.is_file() and new.is_file()):
        return None
    text = REPORT_SAMPLE.read_text(encoding="utf-8")
    earlier = text.replace(
        "replicas: [westeurope, southeastasia]", f"replicas: [westeurope, southeastasia, {REPORT_DROPPED_REPLICA}]"
    )
    assert earlier != text, "the sample's replicas changed: update report_example()"
    here = os.getcwd()
    out, err = io.StringIO(), io.StringIO()
    with tempfile.TemporaryDirectory() as tmp:
        try:
            os.chdir(tmp)
            Path("acr.yaml").write_text(earlier, encoding="utf-8")
            with contextlib.redirect_stderr(err):
                code = cli(["render", "acr.yaml", "--service-tags", str(old), "--out", "rules"])
                Path("acr.yaml").write_text(text, encoding="utf-8")
                if code == 0:
                    with contextlib.redirect_stdout(out):
                        code = cli(
                            [
                                "report",
                                "acr.yaml",
                                "--service-tags",
                                str(new),
                                "--since",
                                str(old),
                                "--out",
                                "rules",
                                "--format",
                                "markdown",
                            ]
                        )
        finally:
            os.chdir(here)
    if code != 0:
        raise RuntimeError(f"the example report failed (exit {code}):\n{err.getvalue()}")
    return out.getvalue()


def regen_schema() -> None:
    """schemas/registry.schema.json: the base file with every target's settings fragment, as
    `acrrules schema` prints it (written through a temporary file: the schema is read from it)."""
    from acrrules.validate import schema_text

    path = REPO / "schemas" / "registry.schema.json"
    text = schema_text()
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def main() -> int:
    sys.path.insert(0, str(REPO))
    from acrrules.cli import main as cli

    os.chdir(REPO)
    regen_schema()
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
        print(
            f"warning: {SHARED} lacks the pinned Service Tags files: IP targets were not regenerated", file=sys.stderr
        )
    example = report_example()
    if example is None:
        print(
            f"warning: {SHARED} lacks {' and '.join(REPORT_WEEKS)}: {EXAMPLE_REPORT} was not regenerated",
            file=sys.stderr,
        )
    else:
        EXAMPLE_REPORT.write_text(example, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
