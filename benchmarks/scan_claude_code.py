#!/usr/bin/env python3
"""Scan the real leaked @anthropic-ai/claude-code@2.1.88 tarball end to end.

Prints wall time, peak memory and MB/s of expanded content (the map's embedded sources
included) for seawall, and in the same run for peers:

- publint (npm, the only peer artifact checker installable from a registry here; it
  opens tarballs too but checks package.json correctness, not leaks),
- ``tar -xzOf`` to /dev/null: the floor, what merely decompressing and reading every
  member costs.

Usage: python benchmarks/scan_claude_code.py [--tarball PATH] [--runs 3]
Targets (issue 2): under 4 s and under 1 GB peak on a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

SPEC = "npm:@anthropic-ai/claude-code@2.1.88"
PUBLINT = "publint@0.3.25"
MEASURE = (
    "import resource, subprocess, sys, time\n"
    "t = time.perf_counter()\n"
    "p = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)\n"
    "wall = time.perf_counter() - t\n"
    "rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
    "sys.stderr.write(f'{wall} {rss} {p.returncode}\\n')\n"
    "sys.stdout.buffer.write(p.stdout)\n"
)


def measure(cmd: list[str]) -> tuple[float, float, int, bytes]:
    """Run ``cmd`` in a fresh process: (wall seconds, peak RSS MiB, exit code, stdout)."""
    proc = subprocess.run([sys.executable, "-c", MEASURE, *cmd], capture_output=True, check=False)
    wall, rss_kib, code = proc.stderr.decode().strip().splitlines()[-1].split()
    return float(wall), int(rss_kib) / 1024, int(code), proc.stdout


def tarball(path: str | None, cache: Path) -> Path:
    if path:
        return Path(path)
    from seawall import fetch

    target = fetch.resolve(SPEC, cache_dir=cache)
    if target.error or target.path is None:
        sys.exit(f"cannot fetch {SPEC}: {target.error}")
    return target.path


def publint_cmd(cache: Path) -> list[str] | None:
    if shutil.which("npm") is None:
        return None
    prefix = cache / "peers"
    binary = prefix / "node_modules" / ".bin" / "publint"
    if not binary.exists():
        prefix.mkdir(parents=True, exist_ok=True)
        subprocess.run(["npm", "install", "--prefix", str(prefix), "--no-audit", "--no-fund", PUBLINT],
                       check=False, capture_output=True)
    return [str(binary)] if binary.exists() else None


def run(name: str, cmd: list[str], runs: int) -> dict:
    walls, rsss, out, code = [], [], b"", 0
    for _ in range(runs):
        wall, rss, code, out = measure(cmd)
        walls.append(wall)
        rsss.append(rss)
    return {"name": name, "wall": statistics.median(walls), "rss": max(rsss), "code": code, "out": out}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--tarball", help="path to anthropic-ai-claude-code-2.1.88.tgz (default: fetch it)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cache-dir", default=os.environ.get("SEAWALL_CACHE_DIR"))
    args = parser.parse_args()
    cache = Path(args.cache_dir) if args.cache_dir else Path(tempfile.gettempdir()) / "seawall-bench"
    tgz = tarball(args.tarball, cache)

    seawall = run("seawall", [sys.executable, "-m", "seawall", "scan", str(tgz), "--format", "json",
                              "--no-progress"], args.runs)
    doc = json.loads(seawall["out"])
    expanded = doc["targets"][0]["bytes"]
    leak = [f for f in doc["findings"] if f["rule"] == "sourcemap.embedded-source"]
    rows = [seawall, run("tar -xzOf (floor)", ["sh", "-c", f"tar -xzOf '{tgz}' > /dev/null"], args.runs)]
    peer = publint_cmd(cache)
    if peer:
        rows.append(run(PUBLINT, [*peer, str(tgz)], args.runs))

    print(f"input: {tgz.name}, {tgz.stat().st_size / 1e6:.1f} MB compressed, "
          f"{expanded / 1e6:.1f} MB expanded content scanned by seawall (map sources included)")
    print(f"seawall found: {leak[0]['message'] if leak else 'NO source map leak (regression!)'}")
    print(f"cores: {os.cpu_count()}, runs: {args.runs} (median wall, max RSS)\n")
    print(f"{'tool':<24}{'wall s':>8}{'peak MiB':>10}{'MB/s':>8}{'seawall is':>14}")
    for row in rows:
        ratio = row["wall"] / seawall["wall"]
        if row is seawall:
            relation = "—"
        elif ratio >= 1:
            relation = f"{ratio:.2f}x faster"
        else:
            relation = f"{1 / ratio:.2f}x slower"
        print(f"{row['name']:<24}{row['wall']:>8.2f}{row['rss']:>10.0f}"
              f"{expanded / 1e6 / row['wall']:>8.0f}{relation:>14}")
    ok = seawall["wall"] < 4 and seawall["rss"] < 1024 and bool(leak)
    print(f"\ntarget (< 4 s, < 1 GB, leak found): {'met' if ok else 'NOT met'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
