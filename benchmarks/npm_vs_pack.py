#!/usr/bin/env python3
"""`seawall npm` on a 5,000-file project against `npm pack --dry-run --ignore-scripts`.

The project is generated (seeded): nested source folders, a `files` field, nested
.npmignore/.gitignore files, maps in dist/, a bundled dependency. Three commands run in
the same run:

- ``seawall npm --list``: the file set alone, which is what npm's dry run computes;
- ``seawall npm``: the file set, then a full scan of it (every detector);
- ``npm pack --dry-run --json --ignore-scripts``: npm listing the same set (and packing it
  in memory to report sizes).

Usage: python benchmarks/npm_vs_pack.py [--files 5000] [--runs 3]
Goal (issue 4): seawall must be faster than npm pack --dry-run.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from scan_claude_code import measure  # noqa: E402  (shared helper)


def make_project(root: Path, files: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    (root / "package.json").write_text(json.dumps({
        "name": "bench-project", "version": "1.0.0", "main": "lib/index.js",
        "files": ["lib/", "dist/", "!dist/**/*.test.js", "README.md"],
        "bundleDependencies": ["left-dep"],
        "dependencies": {"left-dep": "1.0.0"},
        "scripts": {"prepare": "exit 1"},
    }))
    (root / "README.md").write_text("# bench\n")
    (root / "node_modules" / "left-dep").mkdir(parents=True)
    (root / "node_modules" / "left-dep" / "package.json").write_text('{"name":"left-dep","version":"1.0.0"}')
    (root / "node_modules" / "left-dep" / "index.js").write_text("module.exports = 1;\n")
    for folder in ("lib", "dist", "src", "test"):
        (root / folder).mkdir(exist_ok=True)
    (root / "lib" / ".npmignore").write_text("*.tmp\nfixtures/\n")
    (root / "dist" / ".gitignore").write_text("*.log\n")
    body = "export function f(a, b) { return a + b; }\n" * 20
    for i in range(files):
        folder = rng.choice(["lib", "dist", "src", "test"])
        depth = "/".join(f"d{rng.randrange(8)}" for _ in range(rng.randrange(1, 4)))
        name = rng.choice([f"m{i}.js", f"m{i}.ts", f"m{i}.test.js", f"m{i}.js.map", f"m{i}.tmp"])
        path = root / folder / depth / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("npm") is None:
        sys.exit("npm is needed for the peer measurement")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "project"
        root.mkdir()
        make_project(root, args.files)
        seawall = [sys.executable, "-m", "seawall", "npm", str(root)]
        npm = ["sh", "-c", f"cd '{root}' && npm pack --dry-run --json --ignore-scripts --offline"]
        rows = {}
        for label, cmd in (("seawall npm --list", [*seawall, "--list"]),
                           ("seawall npm (list + full scan)", [*seawall, "--format", "json"]),
                           ("npm pack --dry-run", npm)):
            walls, rss, out = [], 0.0, b""
            for _ in range(args.runs):
                wall, peak, _code, out = measure(cmd)
                walls.append(wall)
                rss = max(rss, peak)
            rows[label] = (statistics.median(walls), rss, out)
        ours = set(rows["seawall npm --list"][2].decode().split())
        theirs = {f["path"] for f in json.loads(rows["npm pack --dry-run"][2])[0]["files"]}
        print(f"project: {args.files} files generated; npm would pack {len(theirs)}; "
              f"seawall's file set {'matches' if ours == theirs else 'DIFFERS from'} npm's")
        print(f"{'command':<32}{'wall s':>8}{'peak MiB':>10}{'npm pack is':>16}")
        npm_wall = rows["npm pack --dry-run"][0]
        for label, (wall, rss, _) in rows.items():
            ratio = "—" if label.startswith("npm") else f"{npm_wall / wall:.1f}x slower"
            print(f"{label:<32}{wall:>8.2f}{rss:>10.0f}{ratio:>16}")
        faster = rows["seawall npm (list + full scan)"][0] < npm_wall and ours == theirs
        print(f"\ngoal (seawall npm faster than npm pack --dry-run, same file set): "
              f"{'met' if faster else 'NOT met'}")
        sys.exit(0 if faster else 1)


if __name__ == "__main__":
    main()
