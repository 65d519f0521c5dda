"""Run the peers (copydetect, Dolos) and seawall on the benchmark sets; collect scored pairs.

Every tool's output is reduced to rows ``{suspect, original, score, cov_original}`` with
``suspect`` relative to the set's target folder and ``original`` relative to the private
folder, so one scorer serves all tools. Pairwise peers score positives and negatives in
separate runs that are pooled afterwards (their scores are pair-local, as in the study).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from hunt.inputs import Inputs, list_files
from hunt.measure import Run, measure

HERE = Path(__file__).resolve().parent
COPYDETECT = "copydetect==0.5.0"
NODE_HEAP_MB = 12 * 1024
Rows = list[dict]


def copydetect_python(cache: Path) -> Path:
    venv = cache / "copydetect-venv"
    python = venv / "bin" / "python"
    if not (venv / "bin" / "copydetect").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", COPYDETECT], check=True)
    return python


def peer_rows(out: Path, suspect_root: Path, originals: Path, score_key: str,
              best_only: bool = False) -> Rows:
    """Rows of a peer's JSON-lines output. ``best_only`` keeps one row per suspect, its
    best-scoring pair: all that scoring negatives needs (Dolos emits ~6 M haystack pairs)."""
    rows: Rows = []
    best: dict[str, dict] = {}
    if not out.exists():
        return rows
    with open(out, encoding="utf-8", errors="replace") as lines:
        for line in lines:
            if not line.startswith("{"):
                continue
            row = json.loads(line)
            if best_only and row["suspect"] in best \
                    and best[row["suspect"]]["score"] >= row[score_key]:
                continue
            item = {"suspect": row["suspect"], "original": row["original"],
                    "score": row[score_key], "cov_original": row["cov_original"]}
            if best_only:
                best[row["suspect"]] = item
            else:
                rows.append(item)
    for item in best.values() if best_only else rows:
        item["suspect"] = Path(item["suspect"]).relative_to(suspect_root).as_posix()
        item["original"] = Path(item["original"]).relative_to(originals).as_posix()
    return list(best.values()) if best_only else rows


def run_peer(peer: str, inp: Inputs, label: str, suspect_root: Path, rels: list[str],
             workdir: Path, tools: Path, chunk: int) -> tuple[Run, Rows]:
    """One peer on one batch of suspects (all against the whole private side)."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / f"{peer}-{label}.json"
    config.write_text(json.dumps({
        "originals": [str(inp.originals / r) for r in list_files(inp.originals)],
        "suspects": [str(suspect_root / r) for r in rels], "chunk": chunk}))
    out = workdir / f"{peer}-{label}.jsonl"
    if peer == "copydetect":
        cmd = [str(copydetect_python(inp.cache)), str(HERE / "copydetect_run.py"), str(config)]
    else:
        cmd = ["node", f"--max-old-space-size={NODE_HEAP_MB}", str(tools / "dolos.mjs"),
               str(config)]
    run = measure(f"{peer}:{label}", cmd, out, cwd=tools)
    return run, peer_rows(out, suspect_root, inp.originals, "similarity",
                          best_only=label.startswith(("d", "e-stdlib")))


# -- seawall ----------------------------------------------------------------------------------

def seawall_available() -> bool:
    proc = subprocess.run([sys.executable, "-m", "seawall", "--help"], capture_output=True,
                          text=True, check=False)
    words = {line.split()[0] for line in proc.stdout.splitlines() if line.startswith("  ")
             and line.split()}
    return {"hunt", "index"} <= words


def seawall_index(inp: Inputs, workdir: Path) -> tuple[Run, Path]:
    workdir.mkdir(parents=True, exist_ok=True)
    index = workdir / "private.idx"
    index.unlink(missing_ok=True)
    run = measure("seawall:index", [sys.executable, "-m", "seawall", "index", "add",
                                    str(inp.originals), "--index", str(index),
                                    "--label", "private"], workdir / "seawall-index.out")
    return run, index


def _relative(path: str, target: Path) -> str:
    path = path.split("!/", 1)[0] if path.startswith(str(target)) else path
    for prefix in (str(target) + "/", target.name + "/", "./"):
        if path.startswith(prefix):
            return path[len(prefix):]
    return path


def seawall_hunt(label: str, target: Path, index: Path, workdir: Path) -> tuple[Run, Rows, dict]:
    """``seawall hunt TARGET --index IDX --format json``: file findings and the verdict."""
    out = workdir / f"seawall-{label}.json"
    run = measure(f"seawall:{label}", [sys.executable, "-m", "seawall", "hunt", str(target),
                                       "--index", str(index), "--format", "json"], out)
    rows: Rows = []
    verdict: dict = {"artifact_findings": 0, "artifact_originals": 0}
    try:
        doc = json.loads(out.read_text() or "{}")
    except json.JSONDecodeError as exc:
        run.notes.append(f"unreadable JSON: {exc}")
        return run, rows, verdict
    for finding in doc.get("findings", []):
        ev = finding.get("evidence") or {}
        if finding.get("rule") == "leak.code-copy":
            rows.append({"suspect": _relative(finding.get("path", ""), target),
                         "original": ev.get("original", ""), "score": 1.0,
                         "cov_original": float(ev.get("coverage_original") or 0.0),
                         "kind": ev.get("kind")})
        elif finding.get("rule") == "leak.code-copy-artifact":
            verdict["artifact_findings"] += 1
            originals = ev.get("originals") or 0
            verdict["artifact_originals"] += originals if isinstance(originals, int) \
                else len(originals)
    return run, rows, verdict
