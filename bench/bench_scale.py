#!/usr/bin/env python3
"""Benchmark: how `acrrules validate` (and planning) scales with the number of registries.

For each size (default 1,000, 10,000 and 100,000 registries) a description is generated:
Premium registries over every Public region, each with two replicas, data endpoints cycling
storage / dedicated / both, regional endpoints on every other one, `mcr: true`, two sources.
Each size runs in a fresh process of its own, which reads the file and runs what
`acrrules validate FILE` runs (load, validate, model) and then plans it (plan.build, without a
Service Tags file: the endpoints and tags every target starts from).  Printed per size: the
file's size, the seconds of each stage, the total, and the process's peak RSS
(`ru_maxrss`, which covers the interpreter and its imports too).

Target (issue 13): 100,000 registries validate in under 10 s and under 500 MB.  Exit 0 when the
largest size given meets it, 1 when not.

Run: python bench/bench_scale.py [--sizes 1000,10000,100000]
(python: the one whose venv has acrrules installed).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

TARGET_SECONDS = 10.0
TARGET_RSS_MB = 500
TARGET_SIZE = 100_000

CHILD = r"""
import json, resource, sys, time
t0 = time.perf_counter()
from acrrules import model, plan, validate
from acrrules.load import load_yaml
t1 = time.perf_counter()
doc = load_yaml(sys.argv[1])
t2 = time.perf_counter()
validate.validate(doc)
t3 = time.perf_counter()
desc = model.build(doc)
t4 = time.perf_counter()
rule_plan = plan.build(desc)
t5 = time.perf_counter()
print(json.dumps({
    "import": t1 - t0, "load": t2 - t1, "validate": t3 - t2, "model": t4 - t3, "plan": t5 - t4,
    "endpoints": len(rule_plan.endpoints), "tags": len(rule_plan.tags),
    "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
}))
"""


def description(n: int) -> str:
    from acrrules import catalog

    regions = sorted(catalog.CLOUDS["AzureCloud"].locations)
    modes = ("storage", "dedicated", "both")
    lines = ["version: 1", "mcr: true", 'sources: ["10.20.0.0/16", "2001:db8::/48"]', "registries:"]
    for i in range(n):
        home = regions[i % len(regions)]
        replicas = ", ".join(regions[(i + k) % len(regions)] for k in (1, 2))
        lines.append(
            f"  - {{name: registry{i:06d}, sku: Premium, location: {home}, replicas: [{replicas}], "
            f"data_endpoints: {modes[i % 3]}, regional_endpoints: {'true' if i % 2 else 'false'}}}"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    print(f"Python {platform.python_version()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    print(f"{'registries':>10} {'file MB':>8} {'load s':>7} {'validate s':>10} {'model s':>8} {'plan s':>7}"
          f" {'total s':>8} {'peak RSS MB':>11} {'endpoints':>9} {'tags':>5}")
    met = True
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            path = Path(tmp, f"scale-{n}.yaml")
            path.write_text(description(n), encoding="utf-8")
            p = subprocess.run([sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True)
            if p.returncode != 0:
                print(p.stderr, file=sys.stderr)
                return 2
            r = json.loads(p.stdout)
            total = r["load"] + r["validate"] + r["model"] + r["plan"]
            print(
                f"{n:>10,} {path.stat().st_size / 1e6:>8.1f} {r['load']:>7.2f} {r['validate']:>10.2f}"
                f" {r['model']:>8.2f} {r['plan']:>7.2f} {total:>8.2f} {r['rss_mb']:>11.1f}"
                f" {r['endpoints']:>9,} {r['tags']:>5}"
            )
            if n == max(sizes) and n >= TARGET_SIZE:
                met = total < TARGET_SECONDS and r["rss_mb"] < TARGET_RSS_MB
                print(
                    f"{n:,} registries: load + validate + model + plan {total:.2f} s (target < {TARGET_SECONDS:.0f} s),"
                    f" peak RSS {r['rss_mb']:.0f} MB (target < {TARGET_RSS_MB} MB): {'met' if met else 'NOT met'}"
                )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
