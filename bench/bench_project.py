#!/usr/bin/env python3
"""Benchmark: `acrrules render` of a project of 20 descriptions, in one process (issue 14).

A project (acrrules.toml) of N generated descriptions, every target, their IP targets from the
newest Public Service Tags file (a directory with that one file), is rendered by the installed CLI
as a subprocess into empty output directories, and compared with the same project of one
description. Each round times, one after the other so that both see the same machine load: the
project of 1, the project of N, and, for comparison, N separate `render SPEC` runs (what a
repository of N descriptions cost before the project layer: one process, one parse of the 4 MB
file, per description).

Target: the project of 20 takes <= 2x the time of the project of 1 (the median of the per-round
ratios, which a machine whose load drifts moves less; the ratio of the medians is printed too).

Run: python bench/bench_project.py [--runs 7] [--descriptions 20]
(python: the one whose venv has acrrules installed). Exit 0 when the target is met, 1 when not,
2 when the inputs are missing or a run fails.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("ACRRULES_SHARED", REPO.parent / "shared"))
SERVICETAGS = SHARED / "data" / "servicetags"
TARGET = 2.0
TARGETS = "[azure-firewall, nsg-arm, nsg-tf, nftables, iptables, squid, lists, cilium, calico]"


def newest_public_file() -> Path:
    files = sorted(SERVICETAGS.glob("ServiceTags_Public_*.json"))
    if not files:
        sys.stderr.write(f"bench_project: no ServiceTags_Public_<date>.json in {SERVICETAGS}\n")
        sys.exit(2)
    return files[-1]


def regions(tags_file: Path) -> list[str]:
    text = tags_file.read_text(encoding="utf-8")
    return sorted({m.lower() for m in re.findall(r'"name"\s*:\s*"AzureContainerRegistry\.(\w+)"', text)})


def description(i: int, where: list[str]) -> str:
    """Two geo-replicated Premium registries; its own name, priority blocks and NSG."""
    home = [where[(i * 5 + k * 3) % len(where)] for k in range(2)]
    lines = [
        "version: 1",
        f"name: team{i:02d}",
        "mcr: true",
        f'sources: ["10.{i}.0.0/16"]',
        f"outputs: {TARGETS}",
        "registries:",
    ]
    for k, loc in enumerate(home):
        lines += [
            f"  - name: bench{i:02d}reg{k}",
            "    sku: Premium",
            f"    location: {loc}",
            f"    replicas: [{where[(where.index(loc) + 1) % len(where)]}]",
            "    data_endpoints: dedicated",
        ]
    lines += [
        "targets:",
        f"  azure-firewall: {{priority: {200 + i}}}",
        "  nsg-tf:",
        f"    resource_group_name: rg-team{i:02d}",
        f"    network_security_group_name: nsg-team{i:02d}",
    ]
    return "\n".join(lines) + "\n"


def make_project(root: Path, n: int, tags_file: Path, where: list[str]) -> Path:
    (root / "acr").mkdir(parents=True)
    (root / "servicetags").mkdir()
    (root / "servicetags" / tags_file.name).symlink_to(tags_file)
    for i in range(n):
        (root / "acr" / f"team{i:02d}.acr.yaml").write_text(description(i, where), encoding="utf-8")
    (root / "acrrules.toml").write_text(
        'service-tags = "servicetags"\n\n[[descriptions]]\npaths = ["acr/*.acr.yaml"]\nout = "rules/{name}"\n',
        encoding="utf-8",
    )
    return root


def timed(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    p = subprocess.run(cmd, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if p.returncode != 0:
        sys.stderr.write(f"bench_project: {' '.join(cmd)} exited {p.returncode}:\n{p.stderr}")
        sys.exit(2)
    return elapsed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--descriptions", type=int, default=20)
    args = ap.parse_args()
    script = Path(sys.executable).parent / "acrrules"
    cli = [str(script)] if script.exists() else [sys.executable, "-m", "acrrules"]
    tags_file = newest_public_file()
    where = regions(tags_file)
    n = args.descriptions
    with tempfile.TemporaryDirectory(prefix="acrrules-bench-project-") as tmp:
        base = Path(tmp)
        one, many = make_project(base / "one", 1, tags_file, where), make_project(base / "many", n, tags_file, where)
        timed([*cli, "render"], one)  # warm-up: bytecode, page cache
        t1, tn, sep = [], [], []
        for _ in range(args.runs):
            for p in (one, many):
                shutil.rmtree(p / "rules", ignore_errors=True)
            t1.append(timed([*cli, "render"], one))
            tn.append(timed([*cli, "render"], many))
            start = 0.0
            for spec in sorted((many / "acr").iterdir()):
                out = base / "separate" / spec.stem
                shutil.rmtree(out, ignore_errors=True)
                start += timed(
                    [*cli, "render", str(spec), "--service-tags", str(many / "servicetags"), "--out", str(out)], many
                )
            sep.append(start)
        files = sum(1 for _ in (many / "rules").rglob("*") if _.is_file())
    paired = statistics.median(b / a for a, b in zip(t1, tn, strict=True))
    ratio = statistics.median(tn) / statistics.median(t1)
    separate = statistics.median(b / a for a, b in zip(t1, sep, strict=True))

    def ms(xs: list[float]) -> str:
        return f"median {statistics.median(xs) * 1000:5.0f} ms (min {min(xs) * 1000:.0f}, max {max(xs) * 1000:.0f})"

    print(
        f"Service Tags file: {tags_file.name}; {args.runs} rounds; {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}"
    )
    print(f"project of 1 description             {ms(t1)}")
    print(f"project of {n} descriptions            {ms(tn)}, {files} files")
    print(f"{n} separate `render SPEC` runs        {ms(sep)}")
    met = paired <= TARGET
    print(
        f"{n} in one process / 1: x{ratio:.2f} (medians), x{paired:.2f} paired "
        f"(target <= {TARGET}: {'met' if met else 'NOT met'}); {n} separate runs / 1: x{separate:.2f} paired"
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
