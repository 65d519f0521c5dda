#!/usr/bin/env python3
"""Hunt index at scale (issue 5): build, size, memory and load time of a 5-million-line index.

Issue 5 asks for "< 1 GB peak for a 5-million-line index (build a synthetic one to show
it); index build for the 1,906 files in seconds". This script builds that index from real
code and measures it, each step in a fresh process:

1. A synthetic private codebase of about 5 M lines: N variants of the 1,906 first-party
   TypeScript files of @anthropic-ai/claude-code@2.1.88 (513,676 lines), enough copies to
   pass ``--lines``. Copying a file N times would give N identical fingerprints, which an
   index stores once per file but which a real codebase does not have, so each variant
   appends its own suffix (``Qv001``, ``Qv002``...) to every word of 4+ characters that is
   not a JS/TS keyword or a name the lexer treats specially (identifiers, property names
   and string words alike): member names and string words then differ per copy, and the
   parse stays valid. A sample of files is fingerprinted in this process to check that
   two variants of one file share (almost) no k-grams and parse as cleanly as the original.
2. ``seawall index add CORPUS --index BIG`` as a subprocess: wall time, CPU time, peak RSS
   (``os.wait4`` on the child), then the index file's size and ``seawall index info``.
3. ``seawall hunt SUSPECT --index BIG --jobs 1 --format json`` in a fresh process, on a
   folder holding one verbatim copy of an indexed file and one unrelated file (Python's
   own ``argparse.py``): wall, CPU, peak RSS, and whether exactly that copy is found. Then,
   in a tiny child of its own, ``Index.load`` + ``query_arrays()`` alone (best of 3).
4. The 1,906 originals indexed alone, once: the build time the issue asks for.

The originals are the ``originals`` folder that ``python benchmarks/hunt_vs_peers.py
--prepare-only`` writes under its cache dir (default path below). Everything else is
written under a temporary folder in ``--work-dir`` and removed at the end unless ``--keep``
(about 0.65 GB at 5 M lines: 342 MiB of corpus, 263 MiB of index). Run it on an idle
machine (it prints the load average first); it takes about 2 minutes on 2 cores.

Usage: python benchmarks/hunt_index_scale.py [--originals DIR] [--lines 5000000]
       [--copies N] [--work-dir DIR] [--keep] [--sample 60] [--cap-minutes 20]
Bars (issue 5): build and hunt peak RSS < 1 GiB each; load + query arrays well under 1 s.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DEFAULT_ORIGINALS = Path("/work/cache/hunt-bench/full-s5/originals")
RSS_BAR_MIB = 1024
LOAD_BAR_S = 0.5
"""'Well under a second': half of one, for load, checks and the lookup tables."""
ORIGINALS_BAR_S = 60.0
"""'In seconds': under a minute of wall time for the 1,906 files."""
SHARED_BAR = 0.10
"""Two variants of one file may share at most this share of their k-grams: runs of ``I``,
``N``, keywords and short names (``I N I else I I N``, ``.map``) are the same in any code."""
NAMED_BAR = 0.01
"""... and of those that hold a suffixed word, at most this (only hash collisions)."""

WORD = re.compile(rb"(?<![A-Za-z0-9_$])[A-Za-z_$][A-Za-z0-9_$]{3,}")
"""A word of 4+ characters not inside a number (``0xdeadbeef``, ``1e10``): what gets a suffix."""
LEXER_NAMES = {
    # literals the lexer reads by kind, and React: `import {x} from "react"` changes calls
    "true", "false", "null", "this", "super", "undefined", "react",
    # compiled JSX callees, dropped on the compiled side
    "createElement", "jsxs", "jsxDEV",
    # JS built-ins and contextual words whose rename would change the parse or the stream
    "constructor", "arguments", "prototype",
}
MARK = b"\0"

LOAD_CHILD = """
import json, sys, time
from seawall.hunt.index import Index
t0 = time.perf_counter()
index = Index.load(sys.argv[1])
t1 = time.perf_counter()
index.query_arrays()
t2 = time.perf_counter()
print(json.dumps({"load": t1 - t0, "query_arrays": t2 - t1, "files": len(index.files)}))
"""


@dataclass
class Run:
    """What one child process did: exact figures from ``os.wait4`` on it."""

    wall: float
    cpu: float
    rss_mib: float
    code: int
    stdout: bytes
    stderr: bytes
    killed: bool = False


def run(cmd: list[str], cap_s: float) -> Run:
    """Run ``cmd`` in its own session; kill the whole group past ``cap_s`` seconds."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, start_new_session=True)
        killed = threading.Event()

        def kill() -> None:
            killed.set()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

        timer = threading.Timer(cap_s, kill)
        timer.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        out.seek(0)
        err.seek(0)
        return Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024,
                   proc.returncode, out.read(), err.read(), killed.is_set())


def seawall(*args: str) -> list[str]:
    return [sys.executable, "-m", "seawall", *args]


# -- the synthetic codebase ---------------------------------------------------------------
def keep_words() -> frozenset[bytes]:
    """Words that keep their spelling: every keyword of the JS/TS grammars (read from the
    grammars themselves), the lexer's special names and the constructors it reads
    without ``new``."""
    from seawall.hunt.lexer import _NEW_OPTIONAL, _grammar

    words = set(LEXER_NAMES) | set(_NEW_OPTIONAL)
    for language in ("typescript", "tsx", "javascript"):
        grammar = _grammar(language)
        for i in range(grammar.node_kind_count):
            kind = grammar.node_kind_for_id(i)
            if kind and kind.isalpha() and not grammar.node_kind_is_named(i):
                words.add(kind)
    return frozenset(w.encode() for w in words)


def suffixed(data: bytes, keep: frozenset[bytes], suffix: bytes) -> bytes:
    """Every word that is not kept gets ``suffix``, before any trailing ``$`` (so the
    ``${`` of a template literal stays whole); HTML entities of JSX text (``&apos;``)
    stay as they are."""

    def one(m: re.Match[bytes]) -> bytes:
        word = m[0]
        core = word.rstrip(b"$")
        if len(core) < 4 or core in keep:
            return word
        if m.start() and data[m.start() - 1:m.start()] == b"&" and \
                data[m.end():m.end() + 1] == b";":
            return word
        return core + suffix + word[len(core):]

    return WORD.sub(one, data)


def template(data: bytes, keep: frozenset[bytes]) -> bytes:
    """The file with ``MARK`` where every suffix goes: a variant is then one C-level
    ``replace`` instead of a regex pass per copy."""
    return suffixed(data, keep, MARK)


def variant(data: bytes, tmpl: bytes, copy: int, keep: frozenset[bytes]) -> bytes:
    suffix = f"Qv{copy:03d}".encode()
    if MARK in data:  # a NUL in the file itself: do it the slow way
        return suffixed(data, keep, suffix)
    return tmpl.replace(MARK, suffix)


def line_count(data: bytes) -> int:
    """As the index counts lines (``fingerprint.fingerprint``)."""
    return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)


def read_originals(root: Path) -> list[tuple[Path, bytes]]:
    from seawall.hunt.lexer import language_for

    files = sorted(p for p in root.rglob("*") if p.is_file() and language_for(p.name))
    return [(p.relative_to(root), p.read_bytes()) for p in files]


def check_variants(originals: list[tuple[Path, bytes]], templates: list[bytes],
                   keep: frozenset[bytes], sample: int) -> dict[str, int]:
    """In this process: whether any variant parses with errors where its original does
    not (every file, variant 1), and what two variants of one file share (a sample).

    K-grams made only of ``I``, ``N``, keywords and names under 4 characters (``I N I else
    I I N ...``, ``.map``) are the same in any two pieces of code, copies or not; the ones
    holding a suffixed word are counted apart: they must all differ."""
    from seawall.hunt.fingerprint import K, fingerprint, kgram_hashes, token_array
    from seawall.hunt.lexer import language_for, parse, tokenize

    totals = {"files": 0, "kgrams": 0, "kgrams_shared": 0, "named": 0, "named_shared": 0,
              "shingles": 0, "shingles_shared": 0, "anchors": 0, "anchors_shared": 0,
              "new_errors": 0}
    for (rel, data), tmpl in zip(originals, templates):
        language = language_for(rel.name)
        assert language is not None
        if parse(variant(data, tmpl, 1, keep), language).root_node.has_error and \
                not parse(data, language).root_node.has_error:
            totals["new_errors"] += 1
    for i in random.Random(5).sample(range(len(originals)), min(sample, len(originals))):
        rel, data = originals[i]
        language = language_for(rel.name)
        assert language is not None
        one, two = (variant(data, templates[i], c, keep) for c in (1, 2))
        a, b = (fingerprint(v, language, anchors=True) for v in (one, two))
        totals["files"] += 1
        for name in ("kgrams", "shingles", "anchors"):
            mine, theirs = set(getattr(a, name).tolist()), set(getattr(b, name).tolist())
            totals[name] += len(mine)
            totals[name + "_shared"] += len(mine & theirs)
        norm = tokenize(one, language).norm
        names = np.cumsum([0] + ["qv001" in t.lower() for t in norm])
        windows = kgram_hashes(token_array(norm), K)
        named = {h for j, h in enumerate(windows.tolist()) if names[j + K] > names[j]}
        totals["named"] += len(named)
        totals["named_shared"] += len(named & set(b.kgrams.tolist()))
    return totals


def write_corpus(originals: list[tuple[Path, bytes]], templates: list[bytes],
                 keep: frozenset[bytes], copies: int, root: Path) -> int:
    written = 0
    for copy in range(1, copies + 1):
        base = root / f"copy{copy:03d}"
        for (rel, data), tmpl in zip(originals, templates):
            target = base / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            body = variant(data, tmpl, copy, keep)
            target.write_bytes(body)
            written += len(body)
    return written


# -- steps -------------------------------------------------------------------------------
def build(corpus: Path, index: Path, cap_s: float) -> tuple[Run, dict]:
    result = run(seawall("index", "add", str(corpus), "--index", str(index)), cap_s)
    if result.code != 0 or result.killed:
        tail = result.stderr.decode(errors="replace").strip().splitlines()[-3:]
        sys.exit(f"index add {corpus} failed (exit {result.code}, "
                 f"{'killed at the cap' if result.killed else ' | '.join(tail)})")
    info = run(seawall("index", "info", str(index), "--format", "json"), 120)
    return result, json.loads(info.stdout)


def suspect_folder(corpus: Path, originals: list[tuple[Path, bytes]], copy: int,
                   folder: Path) -> str:
    """One verbatim copy of an indexed file (the largest .ts original's variant ``copy``)
    and one unrelated file; returns the copied file's path relative to the corpus."""
    rel = max((len(data), r) for r, data in originals if r.suffix == ".ts")[1]
    source = corpus / f"copy{copy:03d}" / rel
    folder.mkdir(parents=True)
    shutil.copyfile(source, folder / rel.name)
    shutil.copyfile(argparse.__file__, folder / "argparse.py")
    return f"copy{copy:03d}/{rel.as_posix()}"


def found_originals(report: bytes) -> list[tuple[str, str, str]]:
    """(suspect path, original, kind) of every leak.code-copy finding of a JSON report."""
    return [(f["path"], f["evidence"]["original"], f["evidence"]["kind"])
            for f in json.loads(report)["findings"] if f["rule"] == "leak.code-copy"]


def mib(n: float) -> str:
    return f"{n / 2**20:,.0f} MiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--originals", type=Path, default=DEFAULT_ORIGINALS,
                        help="the 1,906 originals (hunt_vs_peers.py --prepare-only writes them)")
    parser.add_argument("--lines", type=int, default=5_000_000,
                        help="make enough variants to pass this many lines")
    parser.add_argument("--copies", type=int, default=0, help="variants to write (0: from --lines)")
    parser.add_argument("--work-dir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--keep", action="store_true", help="keep the corpus and the indexes")
    parser.add_argument("--sample", type=int, default=60,
                        help="files fingerprinted to check that variants differ")
    parser.add_argument("--cap-minutes", type=float, default=20.0,
                        help="kill a step that runs longer than this")
    args = parser.parse_args()
    if not args.originals.is_dir():
        sys.exit(f"{args.originals}: no originals; run python benchmarks/hunt_vs_peers.py "
                 "--prepare-only first, or pass --originals DIR")
    cap = args.cap_minutes * 60
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores", flush=True)

    originals = read_originals(args.originals)
    keep = keep_words()
    started = time.perf_counter()
    templates = [template(data, keep) for _, data in originals]
    lines = sum(line_count(d) for _, d in originals)
    copies = args.copies or math.ceil(args.lines / lines)
    print(f"originals: {len(originals):,} files, {lines:,} lines; {copies} variants "
          f"= {copies * len(originals):,} files, {copies * lines:,} lines", flush=True)

    check = check_variants(originals, templates, keep, args.sample)
    shared = check["kgrams_shared"] / max(check["kgrams"], 1)
    named = check["named_shared"] / max(check["named"], 1)
    print(f"sample of {check['files']} files, variant 1 vs 2 share: k-grams "
          f"{check['kgrams_shared']:,}/{check['kgrams']:,} "
          f"({shared:.1%}); k-grams holding a suffixed word "
          f"{check['named_shared']:,}/{check['named']:,} ({named:.2%}); "
          f"string shingles {check['shingles_shared']:,}/{check['shingles']:,}; anchors "
          f"{check['anchors_shared']:,}/{check['anchors']:,}", flush=True)
    print(f"variants that parse with errors where their original does not: "
          f"{check['new_errors']} of {len(originals):,}", flush=True)

    args.work_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="seawall-index-scale-", dir=args.work_dir))
    try:
        corpus = work / "corpus"
        size = write_corpus(originals, templates, keep, copies, corpus)
        print(f"wrote {corpus}: {mib(size)} in {time.perf_counter() - started:.1f} s", flush=True)
        report(args, originals, corpus, work, copies, cap, check, (shared, named))
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def report(args: argparse.Namespace, originals: list[tuple[Path, bytes]], corpus: Path,
           work: Path, copies: int, cap: float, check: dict, shared: tuple[float, float]
           ) -> None:
    small_idx, big_idx = work / "originals.idx", work / "big.idx"
    small, small_info = build(args.originals, small_idx, cap)
    print(f"index add originals: {small.wall:.1f} s", flush=True)
    big, info = build(corpus, big_idx, cap)
    print(f"index add corpus: {big.wall:.1f} s", flush=True)

    copied = suspect_folder(corpus, originals, max(1, copies // 2), work / "suspect")
    hunt = run(seawall("hunt", str(work / "suspect"), "--index", str(big_idx), "--jobs", "1",
                       "--format", "json"), cap)
    rows = found_originals(hunt.stdout) if hunt.code in (0, 1) else []
    loads = [run([sys.executable, "-c", LOAD_CHILD, str(big_idx)], cap) for _ in range(3)]
    timings = [json.loads(r.stdout) for r in loads]
    load = min(t["load"] for t in timings)
    arrays = min(t["query_arrays"] for t in timings)
    load_rss = max(r.rss_mib for r in loads)

    print()
    print("| step | wall s | CPU s | peak RSS MiB | result |")
    print("|---|---|---|---|---|")
    for name, r, what in (
        (f"index add: originals ({small_info['files']:,} files)", small,
         f"{small_info['lines']:,} lines, {small_info['kgrams']:,} k-grams, "
         f"{mib(small_idx.stat().st_size)}"),
        (f"index add: {copies} variants ({info['files']:,} files)", big,
         f"{info['lines']:,} lines, {mib(big_idx.stat().st_size)}"),
        ("hunt --jobs 1 (2 files)", hunt, f"exit {hunt.code}, {len(rows)} copy finding(s)"),
    ):
        print(f"| {name} | {r.wall:.1f} | {r.cpu:.1f} | {r.rss_mib:,.0f} | {what} |")
    print(f"| Index.load + query_arrays (best of 3) | {load + arrays:.3f} | | {load_rss:,.0f} | "
          f"load {load * 1000:.0f} ms + query arrays {arrays * 1000:.0f} ms |")
    print()
    for path, about in ((small_idx, small_info), (big_idx, info)):
        print(f"index info {path.name}: {about['files']:,} files, {about['lines']:,} lines, "
              f"{about['kgrams']:,} k-grams, {about['shingles']:,} string shingles, "
              f"{about['anchors']:,} anchors; {mib(path.stat().st_size)} "
              f"({path.stat().st_size / max(about['lines'], 1):.0f} bytes/line)")
    print(f"hunt findings: {rows}")
    expected = [r for r in rows if r[1].endswith(copied)]
    print()
    bars = [
        (f"variants fingerprint differently (k-grams shared < {SHARED_BAR:.0%}, those "
         f"holding a suffixed word < {NAMED_BAR:.0%}; no new parse errors): "
         f"{shared[0]:.1%}, {shared[1]:.2%}; {check['new_errors']}",
         shared[0] < SHARED_BAR and shared[1] < NAMED_BAR and check["new_errors"] == 0),
        (f"index of {info['lines']:,} lines >= {args.lines:,}", info["lines"] >= args.lines),
        (f"build peak RSS < 1 GiB: {big.rss_mib:,.0f} MiB", big.rss_mib < RSS_BAR_MIB),
        (f"hunt peak RSS < 1 GiB: {hunt.rss_mib:,.0f} MiB", hunt.rss_mib < RSS_BAR_MIB),
        (f"load + query arrays well under 1 s (< {LOAD_BAR_S} s): {load + arrays:.3f} s",
         load + arrays < LOAD_BAR_S),
        (f"the copy is found, nothing else: {copied}" + (f" ({expected[0][2]})" if expected
                                                          else ""),
         hunt.code == 1 and len(expected) == 1 and len(rows) == 1),
        (f"index build of the {small_info['files']:,} originals in seconds "
         f"(< {ORIGINALS_BAR_S:.0f} s): {small.wall:.1f} s", small.wall < ORIGINALS_BAR_S),
    ]
    for text, ok in bars:
        print(f"{'met' if ok else 'NOT met'}: {text}")


if __name__ == "__main__":
    main()
