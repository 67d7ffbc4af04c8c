#!/usr/bin/env python3
"""Benchmark: `acrrules render` of a large description vs a minimal CLI on the same stack.

1. Ratio. A generated description (12 Premium registries over 30+ Public
   regions: replicas, dedicated/both data endpoints, regional endpoints, mcr on)
   is rendered to every target the inputs allow, with the newest Public Service
   Tags file, by the installed CLI as a subprocess (the real start-up cost), into
   an empty --out directory:
     - warm: with $XDG_CACHE_HOME as earlier runs left it (a user's second run);
     - cold: with an empty $XDG_CACHE_HOME each run (CI, a first run; acrrules kept
       compiled templates there before they were compiled at build time);
     - again: over its own unchanged output (nothing is rewritten).
   Each round runs these and the floor, one after the other, so all see the same
   machine load. The floor is what any CLI on the mandated stack pays: a minimal
   typer app with the same arguments and options as `render`, parsed as typer
   parses them (which imports pydantic), that imports jinja2, yaml and jsonschema
   and loads the Service Tags file with json (FLOOR below).
   For comparison only, the floor is also timed with gc.disable() before app(), as
   acrrules' console script does before its run (FLOOR_NO_GC): what of acrrules'
   lead is its own code, and what the collector's.
   Medians, their spread (min-max) and the ratios of the medians are printed (the
   targets: warm <= 1.2 and cold <= 1.3 times the floor), and the median of the
   ratios within each round ("paired"), which a machine whose load drifts moves less.
2. Growth. The same render (warm) for 1, 10, 100 and 1,000 registries, each size
   once per round: median wall time and peak RSS (max over the runs) per size.
   Targets: 1,000 registries take <= 2x the time of 1, and <= 100 MB.

Both sides run as an installed package does: from cached bytecode (pip compiles
.pyc files at install time; the warm-up run writes them to a temporary
PYTHONPYCACHEPREFIX, even when PYTHONDONTWRITEBYTECODE is set). `--as-is` runs
everything in the caller's environment instead (no cold runs then). Everything is
written under a temporary directory that is removed afterwards.

Run: python bench/bench_render.py [--runs 15] [--sizes 1,10,100,1000]
(python: the one whose venv has acrrules installed). Exit 0 when every target
is met, 1 when not, 2 when the inputs are missing or a run fails.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import resource
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
TARGET_WARM = 1.2
TARGET_COLD = 1.3
TARGET_GROWTH = 2.0
TARGET_RSS_MB = 100
DATA_MODES = ("storage", "dedicated", "both")

# The floor: `render`'s arguments and options, parsed by typer as it intends (pydantic
# included), the other mandated libraries imported, the Service Tags file loaded.
FLOOR = """\
import json
from typing import List, Optional

import jinja2
import jsonschema
import typer
import yaml

app = typer.Typer()


@app.command()
def render(
    spec: str = typer.Argument(..., metavar="SPEC"),
    target: Optional[List[str]] = typer.Option(None, "--target", "-t", metavar="T"),
    out: str = typer.Option(".", "--out", "-o", metavar="DIR|-"),
    service_tags: Optional[str] = typer.Option(None, "--service-tags", metavar="FILE"),
    check: bool = typer.Option(False, "--check"),
):
    if service_tags:
        with open(service_tags, encoding="utf-8") as fh:
            json.load(fh)


app()
"""

# For comparison only: the floor with what acrrules' console script does before its run,
# moving everything imported out of the cyclic garbage collector's sight (cli.run).
FLOOR_NO_GC = FLOOR.replace("\napp()\n", "\nimport gc\n\ngc.disable()\napp()\n")


def newest_public_file() -> Path:
    files = sorted(SERVICETAGS.glob("ServiceTags_Public_*.json"))
    if not files:
        sys.stderr.write(
            f"bench_render: no ServiceTags_Public_<date>.json in {SERVICETAGS}.\n"
            "The benchmark renders the IP targets from a real Service Tags file: put ../shared next to the\n"
            "repository, or set ACRRULES_SHARED to the folder that holds data/servicetags/.\n"
        )
        sys.exit(2)
    return files[-1]


def acr_regions(tags_file: Path) -> list[str]:
    """ARM locations with an AzureContainerRegistry.<Region> tag, from the file itself.

    Read with a pattern, not json.load: the peak RSS of a child started with vfork (as
    subprocess does) counts this process's own peak, which must stay below the CLI's.
    """
    text = tags_file.read_text(encoding="utf-8")
    return sorted({m.lower() for m in re.findall(r'"name"\s*:\s*"AzureContainerRegistry\.(\w+)"', text)})


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
    lines = ["version: 1", "cloud: AzureCloud", "mcr: true", 'sources: ["10.0.0.0/8", "192.168.0.0/16"]', "registries:"]
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


CLI: list[str] = []  # set by main(): --cli, else the installed console script
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


class Run:
    """One finished subprocess: wall time (s) and peak resident set size (bytes)."""

    def __init__(self, seconds: float, max_rss: int):
        self.seconds, self.max_rss = seconds, max_rss


def timed(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> Run:
    """Run cmd to the end; its wall time and its own peak RSS (wait4, not the whole process tree)."""
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(
            cmd, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, env=env or ENV
        )
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            sys.stderr.write(
                f"bench_render: {' '.join(cmd)} exited {proc.returncode}:\n{err.read().decode(errors='replace')}"
            )
            sys.exit(2)
    return Run(elapsed, usage.ru_maxrss * 1024)  # Linux: kilobytes


def render_command(spec: Path, tags_file: Path, out: Path) -> list[str]:
    return CLI + ["render", str(spec), "--service-tags", str(tags_file), "--out", str(out)]


class Series(list):
    """Wall times of one command over the rounds."""

    @property
    def median(self) -> float:
        return statistics.median(self)

    def spread(self) -> str:
        return f"min {min(self) * 1000:.0f}, max {max(self) * 1000:.0f}"


def ratio(tmp: Path, tags_file: Path, regions: list[str], runs: int, cold: bool) -> dict[str, Series]:
    """Per round: the floor, the CLI into an empty --out with a warm and (unless `cold` is False)
    an empty $XDG_CACHE_HOME, and the CLI re-rendering over its own unchanged output."""
    spec = tmp / "large.yaml"
    spec.write_text(description(12, regions), encoding="utf-8")
    floor_script = tmp / "floor.py"
    floor_script.write_text(FLOOR, encoding="utf-8")
    floor_cmd = [
        sys.executable,
        str(floor_script),
        str(spec),
        "--service-tags",
        str(tags_file),
        "--out",
        str(tmp / "floor-out"),
    ]
    (tmp / "floor_no_gc.py").write_text(FLOOR_NO_GC, encoding="utf-8")
    no_gc_cmd = [sys.executable, str(tmp / "floor_no_gc.py"), *floor_cmd[2:]]
    again = render_command(spec, tags_file, tmp / "out-large")
    timed(again, tmp)  # warm the page cache, .pyc files and template cache before measuring
    timed(floor_cmd, tmp)
    times = {k: Series() for k in ("floor", "warm", "cold", "again", "no_gc")}
    for i in range(runs):
        times["floor"].append(timed(floor_cmd, tmp).seconds)
        times["warm"].append(timed(render_command(spec, tags_file, tmp / f"warm-{i}"), tmp).seconds)
        if cold:
            env = dict(ENV, XDG_CACHE_HOME=str(tmp / f"empty-cache-{i}"))
            times["cold"].append(timed(render_command(spec, tags_file, tmp / f"cold-{i}"), tmp, env).seconds)
        times["again"].append(timed(again, tmp).seconds)
        times["no_gc"].append(timed(no_gc_cmd, tmp).seconds)
    return times


def growth(tmp: Path, tags_file: Path, regions: list[str], sizes: list[int], runs: int) -> list[tuple]:
    """Per size: times, peak RSS, files. Each round renders every size once, so that all sizes see
    the same machine load; the timed runs write into empty folders."""
    specs = {}
    for n in sizes:
        specs[n] = tmp / f"n{n}.yaml"
        specs[n].write_text(description(n, regions), encoding="utf-8")
        timed(render_command(specs[n], tags_file, tmp / f"out-{n}"), tmp)  # warm-up
    done: dict[int, list[Run]] = {n: [] for n in sizes}
    for i in range(runs):
        for n in sizes:
            done[n].append(timed(render_command(specs[n], tags_file, tmp / f"out-{n}-{i}"), tmp))
    rows = []
    for n in sizes:
        files = sorted((tmp / f"out-{n}").iterdir())
        rows.append(
            (
                n,
                distinct_regions(n, regions),
                Series(r.seconds for r in done[n]),
                max(r.max_rss for r in done[n]),
                len(files),
                sum(f.stat().st_size for f in files),
            )
        )
    return rows


def paired(a: Series, b: Series) -> float:
    """Median of the ratios of runs made one after the other (a[i] / b[i]): slow drifts of the
    machine's load cancel out."""
    return statistics.median(x / y for x, y in zip(a, b, strict=True))


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=15, help="rounds of the floor and the CLI runs (default 15)")
    ap.add_argument("--sizes", default="1,10,100,1000", help="registry counts for the growth table ('' to skip)")
    ap.add_argument("--size-runs", type=int, default=7, help="rounds of the growth table (default 7)")
    ap.add_argument("--cli", help="command that runs acrrules (default: the console script next to this Python)")
    ap.add_argument(
        "--as-is",
        action="store_true",
        help="keep the caller's environment (e.g. PYTHONDONTWRITEBYTECODE=1: no cached bytecode)",
    )
    args = ap.parse_args()
    CLI[:] = shlex.split(args.cli) if args.cli else default_cli()

    tags_file = newest_public_file()
    regions = acr_regions(tags_file)
    met = True
    with tempfile.TemporaryDirectory(prefix="acrrules-bench-") as tmpdir:
        tmp = Path(tmpdir)
        ENV.clear()
        ENV.update(bench_env(tmp, args.as_is))
        t = ratio(tmp, tags_file, regions, args.runs, cold=not args.as_is)
        files = sorted(p.name for p in (tmp / "out-large").iterdir())
        print(
            f"Python {platform.python_version()}, {os.cpu_count()} CPUs, load average "
            f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}; bytecode: "
            f"{'as the environment has it' if args.as_is else 'cached, in a temporary directory'}"
        )
        print(
            f"Service Tags file: {tags_file.name}; this script's own peak RSS "
            f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1000:.1f} MB (a child's cannot read lower)"
        )
        print(
            f"description: 12 Premium registries, {distinct_regions(12, regions)} regions, mcr on; "
            f"files: {', '.join(files)}"
        )
        print(
            f"CLI: {' '.join(CLI)} render SPEC --service-tags FILE --out DIR; {args.runs} rounds, "
            "each: floor, warm, cold, again, floor without the collector"
        )
        floor = t["floor"].median
        print(f"floor (minimal typer app, same options)  median {floor * 1000:4.0f} ms ({t['floor'].spread()})")
        rows = [
            ("warm", "CLI, warm $XDG_CACHE_HOME", TARGET_WARM),
            ("cold", "CLI, empty $XDG_CACHE_HOME", TARGET_COLD),
            ("again", "CLI re-rendering unchanged files", None),
            ("no_gc", "floor with gc.disable() (comparison only)", None),
        ]
        for key, label, target in rows:
            if not t[key]:
                continue
            r = t[key].median / floor
            goal = ""
            if target is not None:
                goal = f" (target <= {target}: {verdict(r <= target)})"
                met &= r <= target
            print(
                f"{label:<41} median {t[key].median * 1000:4.0f} ms ({t[key].spread()}), ratio {r:.2f}{goal}; "
                f"paired {paired(t[key], t['floor']):.2f}"
            )
        sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
        if sizes:
            print()
            print(
                f"{'registries':>10}  {'regions':>7}  {'median ms':>9}  {'min-max ms':>10}  {'peak RSS MB':>11}  "
                f"{'files':>5}  {'bytes':>10}"
            )
            table = growth(tmp, tags_file, regions, sizes, args.size_runs)
            for n, nregions, s, rss, nfiles, size in table:
                spread = f"{min(s) * 1000:.0f}-{max(s) * 1000:.0f}"
                print(
                    f"{n:>10}  {nregions:>7}  {s.median * 1000:>9.0f}  {spread:>10}  {rss / 1e6:>11.1f}  "
                    f"{nfiles:>5}  {size:>10}"
                )
            first, last = table[0], table[-1]
            g = last[2].median / first[2].median
            print(f"{first[0]} -> {last[0]} registries, paired (same round): time x{paired(last[2], first[2]):.2f}")
            peak = max(row[3] for row in table) / 1e6
            print(
                f"{first[0]} -> {last[0]} registries: time x{g:.2f} (target <= {TARGET_GROWTH}: "
                f"{verdict(g <= TARGET_GROWTH)}), peak RSS {peak:.1f} MB (target <= {TARGET_RSS_MB}: "
                f"{verdict(peak <= TARGET_RSS_MB)})"
            )
            met &= g <= TARGET_GROWTH and peak <= TARGET_RSS_MB
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
