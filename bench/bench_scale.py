#!/usr/bin/env python3
"""Benchmark: how `acrrules validate` scales with the number of registries.

For each size (default 1,000, 10,000 and 100,000 registries) a description is generated:
Premium registries over every Public region, each with two replicas, data endpoints cycling
storage / dedicated / both, regional endpoints on every other one, `mcr: true`, two sources.
Per size, two fresh processes:
  1. the real command, `python -m acrrules validate FILE` (load, validate, model, plan and the
     platform limits of every target): wall seconds, CPU seconds (user + system, which a machine
     shared with other work inflates less than wall time) and peak RSS (the child's own
     ru_maxrss, from wait4);
  2. the same stages in process, each timed (CPU seconds): load + validate + model
     (pipeline.load_description), plan.build, and the targets' limit checks, with the slowest.

Target (issue 13): 100,000 registries validate in under 10 s and under 500 MB.  Exit 0 when the
largest size given (if 100,000 or more) meets it by the real command's wall time, 1 when not,
2 when a run fails.

Run: python bench/bench_scale.py [--sizes 1000,10000,100000]
(python: the one whose venv has acrrules installed; ~1 min).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_SECONDS = 10.0
TARGET_RSS_MB = 500
TARGET_SIZE = 100_000

CHILD = r"""
import gc, json, resource, sys, time
gc.disable()  # as the console script does (cli.run)
from acrrules import pipeline, plan
from acrrules.targets import TARGETS
def clock():
    return time.perf_counter(), time.process_time()
t0 = clock()
loaded = pipeline.load_description(sys.argv[1])  # load, validate, model: what `validate` runs first
t1 = clock()
rule_plan = plan.build(loaded.description)
t2 = clock()
limits = {}
for tid in TARGETS:  # the platform limits `validate` checks, target by target
    a = clock()
    assert not pipeline.limit_problems(rule_plan, [tid], loaded.doc)
    limits[tid] = clock()[1] - a[1]
t3 = clock()
print(json.dumps({
    "describe": [t1[0] - t0[0], t1[1] - t0[1]], "plan": [t2[0] - t1[0], t2[1] - t1[1]],
    "limits": [t3[0] - t2[0], t3[1] - t2[1]], "by_target": limits,
    "endpoints": len(rule_plan.endpoints), "tags": len(rule_plan.tags),
    "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
}))
"""


def run(argv: list[str]) -> tuple[int, str, str, float, float, float]:
    """Run a child process: exit status, stdout, stderr, wall seconds, CPU seconds (user + system)
    and its own peak RSS in MB (from wait4)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return (proc.returncode, out.read(), err.read(), wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)


def description(n: int) -> str:
    from acrrules import catalog

    regions = sorted(catalog.CLOUDS["AzureCloud"].locations)
    modes = ("storage", "dedicated", "both")
    lines = ["version: 1", "mcr: true", 'sources: ["10.20.0.0/16", "192.0.2.0/24"]', "registries:"]
    for i in range(n):
        home = regions[i % len(regions)]
        replicas = ", ".join(regions[(i + k) % len(regions)] for k in (1, 2))
        lines.append(
            f"  - {{name: registry{i:06d}, sku: Premium, location: {home}, replicas: [{replicas}], "
            f"data_endpoints: {modes[i % 3]}, regional_endpoints: {'true' if i % 2 else 'false'}}}"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    print(f"Python {platform.python_version()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    print("wall = elapsed seconds, cpu = user + system seconds of the process (what a loaded machine inflates less)")
    header = (
        f"{'registries':>10} {'file MB':>7} | {'acrrules validate FILE: wall':>28} {'cpu':>6} {'peak RSS MB':>11} |"
        f" {'load+validate+model':>19} {'plan':>5} {'limits':>6} (cpu s)  slowest limit check"
    )
    print(header)
    met = True
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            path = Path(tmp, f"scale-{n}.yaml")
            path.write_text(description(n), encoding="utf-8")
            code, out, err, wall, cpu, rss = run([sys.executable, "-m", "acrrules", "validate", str(path)])
            if code != 0:
                print(err, file=sys.stderr)
                return 2
            code, out, err, _, _, _ = run([sys.executable, "-c", CHILD, str(path)])
            if code != 0:
                print(err, file=sys.stderr)
                return 2
            r = json.loads(out)
            slowest = max(r["by_target"], key=r["by_target"].get)
            print(
                f"{n:>10,} {path.stat().st_size / 1e6:>7.1f} | {wall:>28.2f} {cpu:>6.2f} {rss:>11.1f} |"
                f" {r['describe'][1]:>19.2f} {r['plan'][1]:>5.2f} {r['limits'][1]:>6.2f}"
                f"          {slowest} {r['by_target'][slowest]:.2f}"
            )
            if n == max(sizes) and n >= TARGET_SIZE:
                met = wall < TARGET_SECONDS and rss < TARGET_RSS_MB
                print(
                    f"{n:,} registries: `acrrules validate` {wall:.2f} s wall, {cpu:.2f} s cpu (target < {TARGET_SECONDS:.0f} s),"
                    f" peak RSS {rss:.0f} MB (target < {TARGET_RSS_MB} MB): {'met' if met else 'NOT met'}"
                )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
