#!/usr/bin/env python3
"""Secret scanning speed and findings: seawall against kingfisher and detect-secrets.

Inputs (same files for every tool, built from the real leaked tarball):
  1. the extracted @anthropic-ai/claude-code@2.1.88 package (103 MB: cli.js, cli.js.map...)
  2. the 1,906 first-party sources embedded in its cli.js.map, written out as files (30 MB)

Peers are installed from PyPI into a venv in the cache folder on first use:
kingfisher (``kingfisher-bin``: Rust with Vectorscan, run with validation off, after one
warm-up run that compiles its rule cache) and ``detect-secrets``.

Seawall scans each input as it does in CI (``seawall scan DIR``): besides secrets it runs
its other detectors, and it opens cli.js.map as a container, so on input 1 it scans the
4,756 embedded sources *as well as* the files the peers see.

Usage: python benchmarks/secrets_vs_peers.py [--runs 3] [--cache-dir DIR] [--tools seawall,kingfisher]
Goal (issue 3): at least 10x faster than detect-secrets, no slower than kingfisher.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from scan_claude_code import measure, tarball  # noqa: E402  (shared helpers)

PEERS = ["kingfisher-bin", "detect-secrets"]


def peer_venv(cache: Path) -> Path:
    venv = cache / "peers-venv"
    if not (venv / "bin" / "kingfisher").exists() or not (venv / "bin" / "detect-secrets").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", *PEERS], check=True)
    return venv / "bin"


def inputs(tgz: Path, cache: Path) -> dict[str, Path]:
    root = cache / "bench-inputs"
    package, sources = root / "package", root / "first-party-sources"
    if not (package / "package.json").exists():
        root.mkdir(parents=True, exist_ok=True)
        with tarfile.open(tgz) as tar:  # benchmark input only: the product never extracts
            tar.extractall(root, filter="data")
    if not sources.exists():
        doc = json.loads((package / "cli.js.map").read_bytes())
        for src, body in zip(doc["sources"], doc["sourcesContent"]):
            if body is None or "node_modules" in src.split("/"):
                continue
            rel = "/".join(p for p in src.split("/") if p not in ("", ".", ".."))
            out = sources / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(body, encoding="utf-8")
    return {"2.1.88 package": package, "1,906 first-party sources": sources}


def size_of(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def count_seawall(out: bytes) -> int:
    return sum(f["rule"].startswith("secret.") for f in json.loads(out)["findings"])


def count_kingfisher(out: bytes) -> int:
    return len(json.loads(out).get("findings", []))


def count_detect_secrets(out: bytes) -> int:
    return sum(len(v) for v in json.loads(out)["results"].values())


def tools(bin_dir: Path, folder: Path, scratch: Path) -> list[tuple[str, list[str], object]]:
    kf_out = scratch / "kingfisher.json"
    return [
        ("seawall", [sys.executable, "-m", "seawall", "scan", str(folder), "--format", "json",
                     "--no-progress"], count_seawall),
        ("kingfisher", ["sh", "-c", f"'{bin_dir / 'kingfisher'}' scan '{folder}' --no-validate "
                        f"--git-history none --format json -o '{kf_out}' >/dev/null && cat '{kf_out}'"],
         count_kingfisher),
        # detect-secrets resolves paths against the working directory (given an absolute
        # path it silently scans nothing), so it runs from inside the folder.
        ("detect-secrets", ["sh", "-c", f"cd '{folder}' && '{bin_dir / 'detect-secrets'}' scan --all-files ."],
         count_detect_secrets),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tarball", help="path to the 2.1.88 .tgz (default: fetch it)")
    parser.add_argument("--cache-dir", default=os.environ.get("SEAWALL_CACHE_DIR"))
    parser.add_argument("--tools", default="seawall,kingfisher,detect-secrets",
                        help="comma-separated subset to run (seawall always runs)")
    args = parser.parse_args()
    chosen = {"seawall", *args.tools.split(",")}
    cache = Path(args.cache_dir) if args.cache_dir else Path(tempfile.gettempdir()) / "seawall-bench"
    bin_dir = peer_venv(cache)
    folders = inputs(tarball(args.tarball, cache), cache)
    ok = True
    with tempfile.TemporaryDirectory() as scratch:
        for label, folder in folders.items():
            mb = size_of(folder) / 1e6
            print(f"\n== {label}: {folder} ({mb:.1f} MB)")
            print(f"{'tool':<16}{'wall s':>8}{'MB/s':>8}{'peak MiB':>10}{'findings':>10}{'seawall is':>16}")
            rows = []
            for name, cmd, count in tools(bin_dir, folder, Path(scratch)):
                if name not in chosen:
                    continue
                if name == "kingfisher":
                    measure(cmd)  # warm-up: compiles kingfisher's rule cache once
                walls, rss = [], 0.0
                for _ in range(args.runs):
                    wall, peak, _code, out = measure(cmd)
                    walls.append(wall)
                    rss = max(rss, peak)
                rows.append((name, statistics.median(walls), rss, count(out)))  # type: ignore[operator]
            base = rows[0][1]
            for name, wall, rss, found in rows:
                ratio = "—" if name == "seawall" else f"{wall / base:.1f}x faster" if wall >= base \
                    else f"{base / wall:.1f}x slower"
                print(f"{name:<16}{wall:>8.2f}{mb / wall:>8.1f}{rss:>10.0f}{found:>10}{ratio:>16}")
            walls = {name: wall for name, wall, _, _ in rows}
            ok &= walls.get("kingfisher", base) >= base and walls.get("detect-secrets", 10 * base) >= 10 * base
    print(f"\ngoal (>=10x detect-secrets, not slower than kingfisher): {'met' if ok else 'NOT met'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
