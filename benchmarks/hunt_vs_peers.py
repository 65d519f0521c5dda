#!/usr/bin/env python3
"""Hunt benchmark (issue 5): seawall index/hunt against copydetect and Dolos, same run.

Private code: the 1,906 first-party files of @anthropic-ai/claude-code@2.1.88's cli.js.map.
Sets (see docs/hunt-benchmark.md): (a) verbatim, (b1) locals renamed + reformatted, (b2)
transpiled + mangled + reformatted copies of a seeded 5% planted into a haystack of ~8,000
files of 17 npm packages; (c) the real 13 MB cli.js vs a control bundle; (d) the haystack
alone; (e) a synthetic Python port carrying the originals' string literals vs the stdlib.
Everything heavy is built once under --cache-dir from npm, PyPI and the seed.

Usage: python benchmarks/hunt_vs_peers.py [--sets a,b1,b2,c,d,e] [--peers copydetect,dolos]
       [--seed 5] [--quick] [--cache-dir DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from hunt import score  # noqa: E402
from hunt.inputs import Inputs, list_files, node_tools  # noqa: E402
from hunt.measure import Run  # noqa: E402
from hunt.peers import (  # noqa: E402
    peer_rows,
    run_peer,
    seawall_available,
    seawall_hunt,
    seawall_index,
)

ALL_SETS = ["a", "b1", "b2", "c", "d", "e"]
ALL_PEERS = ["copydetect", "dolos"]
DEFAULT_THRESHOLD = {"copydetect": 0.33, "dolos": 1e-9}  # Dolos' CLI reports every pair
NEG_PARTS = 4  # the haystack goes to the pairwise peers in 4 processes (memory, time caps)
CHUNK = {"copydetect": 500, "dolos": 2200}


def private_sources(cache: Path) -> tuple[Path, Path]:
    """The extracted package and its 1,906 first-party files, shared with the other benchmarks."""
    from scan_claude_code import tarball
    from secrets_vs_peers import inputs

    root = cache.parent if (cache.parent / "bench-inputs" / "first-party-sources").is_dir() \
        else cache
    sources, package = root / "bench-inputs" / "first-party-sources", root / "bench-inputs" / "package"
    if not sources.is_dir() or not (package / "cli.js.map").exists():
        inputs(tarball(None, root), root)
    return sources, package


def code_version() -> str:
    """A digest of src/seawall/hunt (the hunt code may be uncommitted while this runs)."""
    digest = hashlib.sha256()
    root = HERE.parent / "src" / "seawall" / "hunt"
    for path in sorted(root.rglob("*.py")) if root.is_dir() else []:
        digest.update(path.as_posix().encode() + path.read_bytes())
    return digest.hexdigest()[:12] if root.is_dir() else "absent"


class Bench:
    def __init__(self, inp: Inputs, sets: list[str], peers: list[str], tools: Path) -> None:
        self.inp, self.sets, self.peers, self.tools = inp, sets, peers, tools
        self.work = inp.root / "runs"
        self.work.mkdir(parents=True, exist_ok=True)
        self.runs: dict[str, dict[str, Run]] = {}
        self.rows: dict[str, dict[str, list[dict]]] = {}
        self.verdicts: dict[str, dict] = {}
        self.notes: list[str] = []
        self.hunt_code = "not run"

    def _record(self, tool: str, label: str, run: Run, rows: list[dict]) -> None:
        self.runs.setdefault(tool, {})[label] = run
        self.rows.setdefault(tool, {})[label] = rows
        state = run.skipped or (run.notes[0] if run.notes else "ok")
        print(f"  {tool:<11}{label:<10}{run.wall:8.1f} s wall {run.cpu:8.1f} s CPU "
              f"{run.rss_mb:8.0f} MiB  {len(rows):7} rows  {state}", flush=True)

    def targets(self) -> dict[str, Path]:
        inp, out = self.inp, {}
        for name in ("a", "b1", "b2"):
            if name in self.sets:
                out[name] = inp.set_dir(name)
        if "c" in self.sets:
            out["c-bundle"] = inp.root / "c" / "bundle"
            out["c-control"] = inp.root / "c" / "control"
        if "d" in self.sets:
            out["d"] = inp.haystack
        if "e" in self.sets:
            out["e-port"] = inp.root / "e" / "port"
            out["e-stdlib"] = inp.root / "e" / "stdlib"
        return out

    def run_seawall(self) -> None:
        if not seawall_available():
            print("seawall hunt not available (no `index`/`hunt` in `seawall --help`): skipped")
            self.notes.append("seawall hunt not available")
            return
        self.hunt_code = code_version()  # the hunt code may change while peers run
        run, index = seawall_index(self.inp, self.work)
        self._record("seawall", "index", run, [])
        if run.code != 0:
            print("seawall index failed: hunt runs skipped")
            return
        run.notes.append(f"index file: {index.stat().st_size / 1e6:.1f} MB")
        for label, target in self.targets().items():
            run, rows, verdict = seawall_hunt(label, target, index, self.work)
            self.verdicts[label] = verdict
            self._record("seawall", label, run, rows)

    STAGES = ("planted", "haystack", "bundle", "port")

    def load_peer(self, peer: str, saved: dict) -> None:
        """Take a peer's runs from an earlier results file and its raw outputs in runs/."""
        roots = {name: self.inp.pos_dir(name) for name in ("a", "b1", "b2")}
        roots |= {label: path for label, path in self.targets().items()
                  if label.startswith(("c-", "e-"))}
        for label, info in saved.get("runs", {}).get(peer, {}).items():
            run = Run(info["name"], info["wall_s"], info["cpu_s"], info["peak_rss_mb"],
                      info["exit"], info["skipped"], notes=info.get("notes", []))
            files = sorted(self.work.glob(f"{peer}-d[0-9].jsonl")) if label == "d" \
                else [self.work / f"{peer}-{label}.jsonl"]
            root = self.inp.haystack if label == "d" else roots.get(label)
            if root is None:
                continue
            best_only = label == "d" or label == "e-stdlib"
            rows = [r for f in files
                    for r in peer_rows(f, root, self.inp.originals, "similarity", best_only)]
            self.runs.setdefault(peer, {})[label] = run
            self.rows.setdefault(peer, {})[label] = rows
        self.notes.append(f"{peer}: figures reused from the runs saved at {saved.get('when')} "
                          "(same inputs)")

    def run_stage(self, stage: str, peer: str) -> None:
        """One stage for one peer; stages go in order of importance so a partial run helps."""
        inp = self.inp
        if stage == "planted":
            for name in ("a", "b1", "b2"):
                if name in self.sets:
                    pos = inp.pos_dir(name)
                    run, rows = run_peer(peer, inp, name, pos, list_files(pos), self.work,
                                         self.tools, CHUNK[peer])
                    self._record(peer, name, run, rows)
        elif stage == "haystack" and {"a", "b1", "b2", "d"} & set(self.sets):
            hay = inp.manifest["haystack"]
            total, rows = Run(f"{peer}:haystack"), []
            step = -(-len(hay) // NEG_PARTS)
            for part in range(0, len(hay), step):
                run, part_rows = run_peer(peer, inp, f"d{part // step}", inp.haystack,
                                          hay[part:part + step], self.work, self.tools,
                                          CHUNK[peer])
                total.add(run)
                rows += part_rows
                total.notes += run.notes
            self._record(peer, "d", total, rows)
        elif stage == "bundle" and "c" in self.sets:
            for label in ("c-bundle", "c-control"):
                target = self.targets()[label]
                run, rows = run_peer(peer, inp, label, target, list_files(target), self.work,
                                     self.tools, 1)
                self._record(peer, label, run, rows)
        elif stage == "port" and "e" in self.sets:
            if peer == "dolos":
                self.notes.append("dolos skipped on (e): one language per run, so a Python "
                                  "port cannot be compared with TypeScript originals")
                return
            for label in ("e-port", "e-stdlib"):
                target = self.targets()[label]
                run, rows = run_peer(peer, inp, label, target, list_files(target), self.work,
                                     self.tools, CHUNK[peer])
                self._record(peer, label, run, rows)

    # -- scoring ----------------------------------------------------------------------------

    def scores(self, tool: str) -> dict:
        rows, man, out = self.rows.get(tool, {}), self.inp.manifest, {}
        if not rows:
            return out
        default = DEFAULT_THRESHOLD.get(tool, 1.0)
        neg = rows.get("d", [])
        for name in ("a", "b1", "b2"):
            if name in rows and (tool == "seawall" or "d" in rows):
                planted = man["planted"][name]["files"]
                if tool == "seawall":  # one run over haystack + planted copies
                    hay = set(man["haystack"])
                    pos = [r for r in rows[name] if r["suspect"] not in hay]
                    neg_set = [r for r in rows[name] if r["suspect"] in hay]
                    out[name] = {"default": score.file_level(pos, neg_set, planted, 1.0)}
                else:
                    def at(t: float, n: str = name) -> dict:
                        return score.file_level(rows[n], neg, man["planted"][n]["files"], t)
                    out[name] = {"default": at(default), "oracle": score.oracle(at)}
        if "d" in rows:
            total = len(man["haystack"])
            out["d"] = {"default": score.negatives(neg, 1.0 if tool == "seawall" else default,
                                                    total)}
            if "a" in out and "oracle" in out["a"]:
                out["d"]["at_a_oracle"] = score.negatives(neg, out["a"]["oracle"]["threshold"],
                                                          total)
        if "c-bundle" in rows and "c-control" in rows:
            seg = man["c"]["segments"]
            if tool == "seawall":
                out["c"] = {"default": score.bundle(rows["c-bundle"], rows["c-control"], seg,
                                                    1.0, key="score"),
                            "control_verdict": self.verdicts.get("c-control", {}),
                            "bundle_verdict": self.verdicts.get("c-bundle", {})}
            else:
                def at_c(t: float) -> dict:
                    return score.bundle(rows["c-bundle"], rows["c-control"], seg, t)
                native = score.bundle(rows["c-bundle"], rows["c-control"], seg, default,
                                      key="score")
                out["c"] = {"default": native, "oracle": score.oracle(
                    at_c, [0.01, 0.02, 0.03] + score.SWEEP)}
        if "e-port" in rows and "e-stdlib" in rows:
            port = [{"suspect": p["suspect"], "original": p["original"], "lines": 40}
                    for p in man["e"]["port"]]
            thr = 1.0 if tool == "seawall" else default

            def at_e(t: float) -> dict:
                return score.file_level(rows["e-port"], rows["e-stdlib"], port, t)
            out["e"] = {"default": at_e(thr), "stdlib_files": len(man["e"]["stdlib"])}
            if tool != "seawall":
                out["e"]["oracle"] = score.oracle(at_e)
        if tool == "seawall":  # seawall decides itself: no threshold to show
            for per_set in out.values():
                for entry in per_set.values():
                    if isinstance(entry, dict) and "threshold" in entry:
                        entry["threshold"] = None
        return out


def _pr(s: dict | None, p: str = "precision", r: str = "recall") -> str:
    if not s:
        return "—"
    fmt = [f"{s[p]:.3f}" if s.get(p) is not None else "n/a",
           f"{s[r]:.3f}" if s.get(r) is not None else "n/a"]
    thr = s.get("threshold")
    tag = "" if thr is None else " @any pair" if thr < 1e-6 else f" @{thr:g}"
    return f"P {fmt[0]} R {fmt[1]}{tag}"


def table(bench: Bench, scores: dict[str, dict]) -> list[str]:
    tools = ["seawall", *bench.peers]
    head = ["set / metric", "seawall"]
    for peer in bench.peers:
        head += [f"{peer} default", f"{peer} best F1"]
    lines = [" | ".join(head), " | ".join("---" for _ in head)]

    def row(label: str, fn) -> None:
        cells = [label]
        for tool in tools:
            sc = scores.get(tool, {})
            cells.append(fn(sc, "default"))
            if tool != "seawall":
                cells.append(fn(sc, "oracle"))
        lines.append(" | ".join(cells))

    for name in ("a", "b1", "b2"):
        if name in bench.sets:
            row(f"({name}) all sizes", lambda sc, k, n=name: _pr(sc.get(n, {}).get(k)))
            row(f"({name}) ≥ 40 lines", lambda sc, k, n=name: _pr(
                sc.get(n, {}).get(k), "precision_big", "recall_big"))
    if "c" in bench.sets:
        row("(c) originals found in cli.js", lambda sc, k: _pr(sc.get("c", {}).get(k)))
        row("(c) recall, ≥ 20 segments", lambda sc, k: (
            f"{sc['c'][k]['recall_ge20_segments']}" if sc.get("c", {}).get(k) else "—"))
        row("(c) originals 'found' in control", lambda sc, k: (
            f"{sc['c'][k]['found_in_control']}" if sc.get("c", {}).get(k) else "—"))
        row("(c) control artifact verdict", lambda sc, k: (
            ("match" if sc["c"]["control_verdict"].get("artifact_findings") else "no match")
            if k == "default" and sc.get("c", {}).get("control_verdict") is not None else "—"))
    if "d" in bench.sets:
        row("(d) haystack false alarms", lambda sc, k: (
            f"{sc['d']['default']['flagged']} / {sc['d']['default']['files']}" if k == "default"
            and sc.get("d") else f"{sc['d']['at_a_oracle']['flagged']} @"
            f"{sc['d']['at_a_oracle']['threshold']:g}" if sc.get("d", {}).get("at_a_oracle")
            else "—"))
    if "e" in bench.sets:
        row("(e) port files found", lambda sc, k: (
            f"{sc['e'][k]['tp']} / {sc['e'][k]['positives']}" if sc.get("e", {}).get(k) else "—"))
        row("(e) stdlib false alarms", lambda sc, k: (
            f"{sc['e'][k]['fp_negatives']} / {sc['e']['stdlib_files']}"
            if sc.get("e", {}).get(k) else "—"))
    return lines


def cost_table(bench: Bench) -> list[str]:
    head = ["run", "MB", "seawall wall s / CPU s / MiB", "seawall MB per CPU s"]
    targets = bench.targets()
    sizes = {label: sum(p.stat().st_size for p in t.rglob("*") if p.is_file()) / 1e6
             for label, t in targets.items()}
    sizes["index"] = sum(p.stat().st_size for p in bench.inp.originals.rglob("*")
                         if p.is_file()) / 1e6
    for peer in bench.peers:
        head += [f"{peer} wall s / CPU s / MiB", "vs seawall (CPU, memory)"]
    lines = [" | ".join(head), " | ".join("---" for _ in head)]
    lines.insert(0, "(a)/(b1)/(b2): seawall hunts haystack + planted files in one run; a peer's "
                    "figure adds its planted-files run and its haystack run (d)")
    labels = list(dict.fromkeys(label for tool in bench.runs.values() for label in tool))
    for label in labels:
        sw = bench.runs.get("seawall", {}).get(label)
        size = sizes.get(label)
        rate = f"{size / sw.cpu:.1f}" if sw and size and sw.cpu > 0 else "—"
        cells = [label, f"{size:.1f}" if size else "—", _cost(sw), rate]
        for peer in bench.peers:
            pr = bench.runs.get(peer, {}).get(label)
            hay = bench.runs.get(peer, {}).get("d")
            if label in ("a", "b1", "b2") and pr and hay:  # the same files seawall hunted
                pr = Run(pr.name, pr.wall, pr.cpu, pr.rss_mb, pr.code, pr.skipped)
                pr.add(hay)
            cells.append(_cost(pr))
            if sw and pr and not pr.skipped and sw.cpu > 0 and sw.rss_mb > 0:
                cells.append(f"{pr.cpu / sw.cpu:.0f}x CPU, {pr.rss_mb / sw.rss_mb:.1f}x RSS")
            else:
                cells.append("—")
        lines.append(" | ".join(cells))
    return lines


def _cost(run: Run | None) -> str:
    if run is None:
        return "—"
    base = f"{run.wall:.1f} / {run.cpu:.1f} / {run.rss_mb:.0f}"
    return f"{base} ({run.skipped})" if run.skipped else base


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--cache-dir", default=os.environ.get("SEAWALL_HUNT_CACHE",
                                                              "/work/cache/hunt-bench"))
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--sets", default=",".join(ALL_SETS))
    parser.add_argument("--peers", default=",".join(ALL_PEERS))
    parser.add_argument("--quick", action="store_true", help="small subsets, for smoke tests")
    parser.add_argument("--prepare-only", action="store_true", help="build the inputs and stop")
    parser.add_argument("--reuse-peers", metavar="RESULTS_JSON",
                        help="take the peers' figures from an earlier full run's results file "
                             "(its raw outputs in runs/) instead of running them again")
    args = parser.parse_args()
    sets = [s for s in args.sets.split(",") if s]
    peers = [p for p in args.peers.split(",") if p]
    if unknown := (set(sets) - set(ALL_SETS)) | (set(peers) - set(ALL_PEERS)):
        parser.error(f"unknown sets/peers: {sorted(unknown)}")
    cache = Path(args.cache_dir).resolve()
    cache.mkdir(parents=True, exist_ok=True)
    started = time.time()
    sources, package = private_sources(cache)
    tools = node_tools(cache)
    inp = Inputs(cache, args.seed, args.quick, sources, package)
    inp.build(sets, tools)
    man = inp.manifest
    print(f"inputs ({inp.root}, {time.time() - started:.0f} s): {man['originals']} originals, "
          f"{len(man['haystack'])} haystack files ({man['haystack_bytes'] / 1e6:.1f} MB), "
          f"{len(man['sample'])} planted per set")
    if args.prepare_only:
        return
    bench = Bench(inp, sets, peers, tools)
    out = inp.root / f"results-{time.strftime('%Y%m%dT%H%M%S')}.json"
    print("runs:")
    bench.run_seawall()
    report(bench, args, out)
    if args.reuse_peers:
        saved: dict = {"runs": {}}
        for path in args.reuse_peers.split(","):  # later files add to / override earlier ones
            doc = json.loads(Path(path).read_text())
            for tool, runs in doc.get("runs", {}).items():
                saved["runs"].setdefault(tool, {}).update(runs)
            saved.setdefault("whens", []).append(doc.get("when", "?"))
        saved["when"] = ", ".join(saved.get("whens", []))
        for peer in peers:
            bench.load_peer(peer, saved)
        report(bench, args, out, final=True)
        return
    for stage in Bench.STAGES:
        for peer in peers:
            bench.run_stage(stage, peer)
        report(bench, args, out, final=stage == Bench.STAGES[-1])


def report(bench: Bench, args: argparse.Namespace, out: Path, final: bool = False) -> None:
    """Write the results JSON (after every stage, so a partial run leaves figures behind);
    print the tables at the end."""
    man, peers = bench.inp.manifest, bench.peers
    scores = {tool: bench.scores(tool) for tool in ["seawall", *peers]}
    quality, cost = table(bench, scores), cost_table(bench)
    result = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "seed": args.seed,
        "quick": args.quick, "sets": bench.sets, "peers": peers, "hunt_code": bench.hunt_code,
        "complete": final,
        "inputs": {k: v for k, v in man.items() if k not in ("haystack", "original_lines")}
        | {"haystack_files": len(man["haystack"])},
        "runs": {t: {label: r.as_dict() for label, r in runs.items()}
                 for t, runs in bench.runs.items()},
        "scores": scores, "notes": bench.notes, "table": quality, "cost_table": cost,
    }
    if "e" in man:
        result["inputs"]["e"] = {k: v for k, v in man["e"].items() if k != "stdlib"} \
            | {"stdlib_files": len(man["e"]["stdlib"])}
    if "c" in man:
        result["inputs"]["c"] = {k: v for k, v in man["c"].items() if k != "segments"} \
            | {"originals_with_code": sum(n > 0 for n in man["c"]["segments"].values())}
    out.write_text(json.dumps(result, indent=1))
    if not final:
        return
    print("\nquality (peers: default threshold, and best-F1 threshold = oracle)")
    print("\n".join(quality))
    print("\ncost (wall s / CPU s / peak RSS MiB; machine: "
          f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f})")
    print("\n".join(cost))
    for note in bench.notes:
        print(f"note: {note}")
    print(f"\nresults: {out}")

if __name__ == "__main__":
    main()
