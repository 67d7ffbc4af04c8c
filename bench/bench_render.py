#!/usr/bin/env python3
"""Benchmark: `acrrules render` of a large description vs the bare cost of Python.

1. Ratio. A generated description (12 Premium registries over 30+ Public
   regions: replicas, dedicated/both data endpoints, regional endpoints, mcr on)
   is rendered to every target the inputs allow, with the newest Public Service
   Tags file, by the installed CLI as a subprocess (the real start-up cost). Each
   run alternates with a run of the floor, a Python that only imports what
   acrrules needs and parses the same Service Tags file:

       python -c "import json, yaml, jinja2, jsonschema, typer; json.load(open(FILE))"

   The median wall times and their ratio are printed; the target is <= 1.3.
2. Growth. The same render for 1, 10, 100 and 1,000 registries, as a table.

Both sides run as an installed package does: from cached bytecode (pip compiles
.pyc files at install time; the warm-up run writes them to a temporary
PYTHONPYCACHEPREFIX, even when PYTHONDONTWRITEBYTECODE is set) and with
acrrules' compiled-template cache in a temporary XDG_CACHE_HOME. `--as-is` runs
both in the caller's environment instead. Everything is written under a
temporary directory that is removed afterwards.

Run: /work/venv/bin/python bench/bench_render.py [--runs 15] [--sizes 1,10,100,1000]
Exit 0 when the ratio is met, 1 when not, 2 when the inputs are missing.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("ACRRULES_SHARED", REPO.parent / "shared"))
SERVICETAGS = SHARED / "data" / "servicetags"
TARGET_RATIO = 1.3
DATA_MODES = ("storage", "dedicated", "both")


def newest_public_file() -> Path:
    files = sorted(SERVICETAGS.glob("ServiceTags_Public_*.json"))
    if not files:
        sys.stderr.write(
            f"bench_render: no ServiceTags_Public_<date>.json in {SERVICETAGS}.\n"
            "The benchmark renders the IP targets from a real Service Tags file: put ../shared next to the\n"
            "repository, or set ACRRULES_SHARED to the folder that holds data/servicetags/.\n")
        sys.exit(2)
    return files[-1]


def acr_regions(tags_file: Path) -> list[str]:
    """ARM locations with an AzureContainerRegistry.<Region> tag, from the file itself."""
    with open(tags_file, encoding="utf-8") as fh:
        names = [v["name"] for v in json.load(fh)["values"]]
    return sorted(n.split(".", 1)[1].lower() for n in names if n.startswith("AzureContainerRegistry."))


def layout(registries: int, regions: list[str], replicas: int = 2) -> list[tuple[str, list[str]]]:
    """(home, replicas) per registry: consecutive regions, wrapping round the list."""
    out = []
    for i in range(registries):
        home = (i * (replicas + 1)) % len(regions)
        out.append((regions[home], [regions[(home + k) % len(regions)] for k in range(1, replicas + 1)]))
    return out


def distinct_regions(registries: int, regions: list[str]) -> int:
    return len({r for home, reps in layout(registries, regions) for r in [home, *reps]})


def description(registries: int, regions: list[str]) -> str:
    """YAML for `registries` Premium registries spread over the regions, every feature in use."""
    lines = ["version: 1", "cloud: AzureCloud", "mcr: true", 'sources: ["10.0.0.0/8", "192.168.0.0/16"]',
             "registries:"]
    for i, (home, reps) in enumerate(layout(registries, regions)):
        lines += [
            f"  - name: benchacr{i:05d}",
            "    sku: Premium",
            f"    location: {home}",
            f"    replicas: [{', '.join(reps)}]",
            f"    data_endpoints: {DATA_MODES[i % len(DATA_MODES)]}",
            f"    regional_endpoints: {'true' if i % 2 else 'false'}",
        ]
    return "\n".join(lines) + "\n"


CLI: list[str] = []   # set by main(): --cli, else the installed console script
ENV: dict[str, str] = {}


def default_cli() -> list[str]:
    """The installed console script next to this Python (what users run), else `python -m acrrules`."""
    script = Path(sys.executable).parent / "acrrules"
    return [str(script)] if script.exists() else [sys.executable, "-m", "acrrules"]


def bench_env(tmp: Path, as_is: bool) -> dict[str, str]:
    env = dict(os.environ)
    if not as_is:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
        env["XDG_CACHE_HOME"] = str(tmp / "cache")
    return env


def timed(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=ENV)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.stderr.write(f"bench_render: {' '.join(cmd)} exited {proc.returncode}:\n{proc.stderr}")
        sys.exit(2)
    return elapsed


def render_command(spec: Path, tags_file: Path, out: Path) -> list[str]:
    return CLI + ["render", str(spec), "--service-tags", str(tags_file), "--out", str(out)]


def ratio(tmp: Path, tags_file: Path, regions: list[str], runs: int) -> tuple[float, float, float, float, Path]:
    """Medians of: the CLI writing into an empty directory (every file written and synced), the CLI
    re-rendering over its own unchanged output (files compared, none rewritten), and the floor."""
    spec = tmp / "large.yaml"
    spec.write_text(description(12, regions), encoding="utf-8")
    out = tmp / "out-large"
    floor_cmd = [sys.executable, "-c",
                 f"import json, yaml, jinja2, jsonschema, typer; json.load(open({str(tags_file)!r}))"]
    render = render_command(spec, tags_file, out)
    timed(render, tmp)  # warm the page cache and .pyc files for both before measuring
    timed(floor_cmd, tmp)
    fresh_times, again_times, floor_times = [], [], []
    for i in range(runs):
        floor_times.append(timed(floor_cmd, tmp))
        fresh_times.append(timed(render_command(spec, tags_file, tmp / f"fresh-{i}"), tmp))
        again_times.append(timed(render, tmp))
    return (statistics.median(fresh_times), statistics.median(again_times), statistics.median(floor_times),
            max(fresh_times), out)


def growth(tmp: Path, tags_file: Path, regions: list[str], sizes: list[int], runs: int) -> list[tuple]:
    rows = []
    for n in sizes:
        spec = tmp / f"n{n}.yaml"
        spec.write_text(description(n, regions), encoding="utf-8")
        out = tmp / f"out-{n}"
        cmd = render_command(spec, tags_file, out)
        times = [timed(cmd, tmp) for _ in range(runs)]
        files = sorted(out.iterdir())
        rows.append((n, distinct_regions(n, regions), statistics.median(times),
                     len(files), sum(f.stat().st_size for f in files)))
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=15, help="timed runs of the CLI and of the floor (default 15)")
    ap.add_argument("--sizes", default="1,10,100,1000", help="registry counts for the growth table ('' to skip)")
    ap.add_argument("--size-runs", type=int, default=3, help="timed runs per growth row (default 3)")
    ap.add_argument("--cli", help="command that runs acrrules (default: the console script next to this Python)")
    ap.add_argument("--as-is", action="store_true",
                    help="keep the caller's environment (e.g. PYTHONDONTWRITEBYTECODE=1: no cached bytecode)")
    args = ap.parse_args()
    CLI[:] = shlex.split(args.cli) if args.cli else default_cli()

    tags_file = newest_public_file()
    regions = acr_regions(tags_file)
    with tempfile.TemporaryDirectory(prefix="acrrules-bench-") as tmpdir:
        tmp = Path(tmpdir)
        ENV.clear()
        ENV.update(bench_env(tmp, args.as_is))
        cli, again, floor, worst, out = ratio(tmp, tags_file, regions, args.runs)
        files = sorted(p.name for p in out.iterdir())
        print(f"Python {platform.python_version()}, {os.cpu_count()} CPUs, load average "
              f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}; bytecode and template caches: "
              f"{'as the environment has them' if args.as_is else 'warm, in a temporary directory'}")
        print(f"Service Tags file: {tags_file.name}")
        print(f"description: 12 Premium registries, {distinct_regions(12, regions)} regions, mcr on; "
              f"files: {', '.join(files)}")
        print(f"CLI: {' '.join(CLI)} render SPEC --service-tags FILE --out DIR ({args.runs} runs, "
              "interleaved with the floor)")
        print(f"median wall time: CLI into an empty --out {cli * 1000:.0f} ms (max {worst * 1000:.0f} ms), "
              f"floor {floor * 1000:.0f} ms, ratio {cli / floor:.2f} "
              f"(target <= {TARGET_RATIO}: {'met' if cli / floor <= TARGET_RATIO else 'NOT met'})")
        print(f"                  CLI re-rendering unchanged files {again * 1000:.0f} ms, ratio {again / floor:.2f}")
        sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
        if sizes:
            print()
            print(f"{'registries':>10}  {'regions':>7}  {'median ms':>9}  {'files':>5}  {'bytes':>10}")
            for n, nregions, t, nfiles, size in growth(tmp, tags_file, regions, sizes, args.size_runs):
                print(f"{n:>10}  {nregions:>7}  {t * 1000:>9.0f}  {nfiles:>5}  {size:>10}")
    return 0 if cli / floor <= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
