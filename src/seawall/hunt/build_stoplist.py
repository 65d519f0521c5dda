"""Regenerate the shipped stoplist from public releases: ``python -m seawall.hunt.build_stoplist``.

Downloads each package below through seawall's own registry client (cached), walks it
with the same openers and lexer as ``index add``, and keeps the top 32 bits of every
k-gram, string shingle and anchor (``anchors.py``) that occurs in at least
``--min-packages`` different packages:
code that several unrelated projects share (bundler runtimes, polyfills, vendored
helpers, licence headers, well-known tables) is public whatever else it is, and the
cross-package rule keeps the file small enough to ship. The packages are chosen apart
from the benchmark's haystack and control bundle, so the benchmark stays a fair test.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

from seawall.hunt import stoplist
from seawall.engine import Target
from seawall.hunt.build import collect
from seawall.scan import resolve_target

PACKAGES = [
    # npm: runtimes and helpers that bundlers inline, and widely vendored libraries
    "npm:tslib", "npm:core-js", "npm:@babel/runtime", "npm:regenerator-runtime",
    "npm:@swc/helpers", "npm:webpack", "npm:rollup", "npm:esbuild-wasm", "npm:terser",
    "npm:prettier", "npm:eslint", "npm:commander", "npm:chalk", "npm:semver", "npm:uuid",
    "npm:debug", "npm:ws", "npm:undici", "npm:node-fetch", "npm:bluebird",
    "npm:underscore", "npm:async", "npm:qs", "npm:glob", "npm:minimatch", "npm:js-yaml",
    "npm:yaml", "npm:handlebars", "npm:marked", "npm:highlight.js", "npm:protobufjs",
    "npm:graphql", "npm:preact", "npm:ink", "npm:react-reconciler", "npm:jszip",
    "npm:pako", "npm:buffer", "npm:events", "npm:punycode", "npm:iconv-lite",
    "npm:source-map", "npm:esprima", "npm:ramda", "npm:immutable", "npm:luxon",
    "npm:dayjs", "npm:validator", "npm:joi", "npm:socket.io-client", "npm:@anthropic-ai/sdk",
    "npm:openai", "npm:@modelcontextprotocol/sdk", "npm:plist", "npm:@expo/plist",
    "npm:simple-plist", "npm:xmlbuilder",
    # PyPI: popular pure-Python releases
    "pypi:requests", "pypi:urllib3", "pypi:click", "pypi:six", "pypi:attrs", "pypi:flask",
    "pypi:jinja2", "pypi:pyyaml", "pypi:idna", "pypi:certifi", "pypi:packaging",
    "pypi:setuptools", "pypi:pip", "pypi:rich", "pypi:pydantic", "pypi:httpx",
    "pypi:werkzeug", "pypi:pygments", "pypi:docutils", "pypi:sqlalchemy",
]


def _one_file(target: Target) -> Target:
    """A PyPI release is every file of it (dozens of platform wheels of the same code):
    keep the sdist, else a pure-Python wheel, else the first file."""
    if len(target.files) <= 1:
        return target
    files = sorted(target.files, key=lambda p: (not p.name.endswith((".tar.gz", ".zip")),
                                                not p.name.endswith("-none-any.whl"), p.name))
    return dataclasses.replace(target, files=files[:1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path,
                        default=Path(__file__).with_name(stoplist.SHIPPED))
    parser.add_argument("--min-packages", type=int, default=2)
    parser.add_argument("--cache-dir", type=Path, default=None)
    parser.add_argument("packages", nargs="*", default=PACKAGES)
    args = parser.parse_args(argv)
    per_package: list[np.ndarray] = []
    used: list[str] = []
    for spec in args.packages:
        started = time.perf_counter()
        target = _one_file(resolve_target(spec, cache_dir=args.cache_dir))
        items, errors = collect([target])
        if not items:
            print(f"skip {spec}: {'; '.join(errors)[:200] or 'no source files'}", file=sys.stderr)
            continue
        parts = [stoplist.top32(fp.kgrams) for _, _, fp in items]
        parts += [stoplist.top32(fp.shingles) for _, _, fp in items]
        parts += [stoplist.top32(fp.anchors) for _, _, fp in items if fp.anchors is not None]
        values = np.unique(np.concatenate(parts))
        per_package.append(values)
        used.append(f"{spec}@{target.meta.get('version', '?')}")
        print(f"{spec}: {len(items)} files, {len(values):,} fingerprints "
              f"({time.perf_counter() - started:.1f} s)", file=sys.stderr)
    everything = np.concatenate(per_package) if per_package else np.zeros(0, np.uint32)
    values, counts = np.unique(everything, return_counts=True)
    kept = values[counts >= args.min_packages]
    info = {"packages": used, "min_packages": args.min_packages, "values": int(len(kept))}
    args.output.write_bytes(stoplist.encode(kept, info))
    print(json.dumps({**info, "packages": len(used), "all": int(len(values)),
                      "bytes": args.output.stat().st_size}), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
