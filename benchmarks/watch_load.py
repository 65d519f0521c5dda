#!/usr/bin/env python3
"""`seawall watch` load test: 2,000 releases across 200 packages, announced on a stub feed.

A stub npm registry (in this process, on 127.0.0.1) serves 200 packages ``@bench/pkg-N``
with 10 versions each: real gzip tarballs (package.json, a dozen source files, a README),
packuments with sha512 integrity, and a ``_changes`` feed naming every package. Some
releases leak (a source map with embedded sources every 10th version, an ``.env`` with a
key every 50th release). The watcher is configured with the scope only, so it learns
every package from the feed, and ``backfill = "all"``, so every version is scanned and
diffed against the one before it.

Measured in the same run, each in a fresh process (wall time, peak RSS):

- ``seawall watch --once`` over all 2,000 releases (SQLite; concurrency 4);
- the same with 500 releases (50 packages), to show memory does not grow with the backlog;
- the naive baseline: one ``seawall scan npm:NAME@VERSION --against-previous`` process per
  release, run sequentially as a cron job would, on a sample (``--sample``) and given as
  releases per minute. No open-source registry watcher that scans release contents exists to
  compare with (``npm-follower`` and PyPI's RSS readers only list names).

Usage: python benchmarks/watch_load.py [--packages 200] [--versions 10] [--sample 30]
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import io
import json
import os
import random
import sqlite3
import string
import sys
import tarfile
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from scan_claude_code import measure  # noqa: E402  (shared helper)


def key(rng: random.Random) -> str:
    body = "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(93))
    return f"sk-ant-api03-{body}AA"


def tarball(name: str, version: str, n: int, rng: random.Random) -> bytes:
    files = {"package/package.json": json.dumps({"name": name, "version": version}).encode(),
             "package/README.md": f"# {name}\n\nRelease {version}.\n".encode()}
    for i in range(12):
        body = "".join(f"export function f{i}_{j}(a, b) {{ return a * {j} + b; }}\n"
                       for j in range(40 + rng.randrange(40)))
        files[f"package/lib/m{i}.js"] = body.encode()
    if version.endswith(".9"):  # a source map that embeds first-party sources
        sources = [f"../src/m{i}.ts" for i in range(12)]
        files["package/lib/index.js.map"] = json.dumps({
            "version": 3, "file": "index.js", "sources": sources, "mappings": "AAAA",
            "sourcesContent": [f"export const v{i}: number = {i};\n" * 30 for i in range(12)],
        }).encode()
    if n % 50 == 49:
        files["package/.env"] = f"ANTHROPIC_API_KEY={key(rng)}\n".encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for path, data in files.items():
            info = tarfile.TarInfo(path)
            info.size, info.mtime = len(data), 499162500
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(buf.getvalue(), mtime=0)


class Registry:
    def __init__(self, packages: int, versions: int) -> None:
        rng = random.Random(6)
        self.tarballs: dict[str, bytes] = {}
        self.packuments: dict[str, bytes] = {}
        self.names = [f"@bench/pkg-{p}" for p in range(packages)]
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self.handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        n = 0
        for name in self.names:
            base = name.split("/")[1]
            doc: dict = {"name": name, "dist-tags": {}, "versions": {}}
            for v in range(versions):
                version = f"1.0.{v}"
                data = tarball(name, version, n, rng)
                n += 1
                path = f"{name}/-/{base}-{version}.tgz"
                self.tarballs["/" + path] = data
                doc["versions"][version] = {"name": name, "version": version, "dist": {
                    "tarball": self.url + path,
                    "integrity": "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode(),
                }}
                doc["dist-tags"]["latest"] = version
            self.packuments["/" + name.replace("/", "%2f")] = json.dumps(doc).encode()
        self.releases = n
        self.announced = packages

    def handler(self) -> type[BaseHTTPRequestHandler]:
        registry = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802
                path = self.path.split("?", 1)[0]
                if path == "/registry/_changes":
                    since = self.path.split("since=", 1)[1].split("&", 1)[0]
                    rows = [{"seq": str(i + 1), "id": name}
                            for i, name in enumerate(registry.names[:registry.announced])]
                    body = json.dumps({"results": rows if since == "0" else [],
                                       "last_seq": str(len(rows))}).encode()
                else:
                    body = registry.packuments.get(path) or registry.tarballs.get(path)
                if body is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        return Handler

    def start(self) -> None:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def watch_run(registry: Registry, work: Path, packages: int) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    registry.announced = packages
    config = work / "watch.toml"
    config.write_text(f"""
database = "watch.db"
interval = 30
concurrency = 4
backfill = "all"
cache-dir = "cache"
[npm]
registry = "{registry.url}"
scopes = ["@bench"]
changes = "{registry.url}registry/_changes"
changes-since = "0"
[politeness]
requests-per-second = 1000
burst = 100
[alerts]
stdout = true
""")
    wall, rss, code, _ = measure([sys.executable, "-m", "seawall", "watch", "--config",
                                  str(config), "--once"])
    with sqlite3.connect(work / "watch.db") as db:
        states = dict(db.execute("SELECT state, count(*) FROM releases GROUP BY state").fetchall())
        alerts = db.execute("SELECT count(*) FROM alerts").fetchone()[0]
        rules = dict(db.execute("SELECT rule, count(*) FROM findings GROUP BY rule").fetchall())
        errors = db.execute("SELECT count(*) FROM releases WHERE error IS NOT NULL").fetchone()[0]
    return {"wall": wall, "rss": rss, "code": code, "states": states, "alerts": alerts,
            "rules": rules, "errors": errors}


def baseline(registry: Registry, work: Path, sample: int, versions: int) -> tuple[float, float]:
    """Sequential ``seawall scan --against-previous`` per release: (seconds per release, RSS)."""
    env_cache = work / "scan-cache"
    os.environ["NPM_CONFIG_REGISTRY"] = registry.url
    os.environ["NPM_CONFIG_USERCONFIG"] = os.devnull
    walls, rss = [], 0.0
    specs = [f"npm:{registry.names[i % len(registry.names)]}@1.0.{1 + i % (versions - 1)}"
             for i in range(sample)]
    for spec in specs:
        wall, peak, code, _ = measure([sys.executable, "-m", "seawall", "scan", spec,
                                       "--against-previous", "--format", "json",
                                       "--cache-dir", str(env_cache)])
        assert code in (0, 1), (spec, code)
        walls.append(wall)
        rss = max(rss, peak)
    return sum(walls) / len(walls), rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--packages", type=int, default=200)
    parser.add_argument("--versions", type=int, default=10)
    parser.add_argument("--sample", type=int, default=30)
    args = parser.parse_args()
    registry = Registry(args.packages, args.versions)
    registry.start()
    print(f"stub registry: {registry.releases:,} releases across {args.packages} packages",
          flush=True)
    with tempfile.TemporaryDirectory(prefix="seawall-watch-load-") as tmp:
        work = Path(tmp)
        full = watch_run(registry, work / "full", args.packages)
        quarter = watch_run(registry, work / "quarter", max(1, args.packages // 4))
        per_release, base_rss = baseline(registry, work, args.sample, args.versions)
    done = full["states"].get("done", 0)
    rate = done / full["wall"] * 60
    print(f"seawall watch --once: {done:,}/{registry.releases:,} releases done "
          f"({full['states']}), exit {full['code']}, {full['wall']:.1f} s, "
          f"{rate:,.0f} releases/min, peak RSS {full['rss']:.0f} MiB; "
          f"{full['alerts']} alerts; {full['errors']} scan errors; "
          f"new findings by rule: {full['rules']}")
    q_done = quarter["states"].get("done", 0)
    print(f"  same with {q_done:,} releases: {quarter['wall']:.1f} s, "
          f"{q_done / quarter['wall'] * 60:,.0f} releases/min, peak RSS {quarter['rss']:.0f} MiB")
    print(f"baseline, sequential `seawall scan --against-previous` per release ({args.sample} "
          f"sampled): {per_release:.2f} s/release = {60 / per_release:,.0f} releases/min, "
          f"peak RSS {base_rss:.0f} MiB")
    print(f"seawall watch is {rate / (60 / per_release):.1f}x the naive baseline")
    if done != registry.releases:
        sys.exit("not every release was processed")
    leaks = registry.releases // 50  # an .env with a fresh key every 50th release
    if full["errors"] or full["rules"].get("secret.anthropic-api-key", 0) != leaks:
        sys.exit(f"{full['errors']} release(s) scanned with errors; expected {leaks} keys found")


if __name__ == "__main__":
    main()
