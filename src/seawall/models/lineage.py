"""Is the suspect derived from the base? Tiers, cheapest first, and a verdict with evidence.

1. **exact**: canonical per-tensor hashes (a re-serialised, renamed or transposed copy).
2. **cosine**: name-free best cosine between sketches of same-shape matrices
   (quantised, noisy, pruned, lightly or heavily fine-tuned copies).
3. **units**: the suspect's residual basis is aligned to the base's through the
   embedding; MLP units, attention value dimensions and query/key dimensions are matched
   by linear assignment on one matrix, and the effect size is the cosine of the matrix
   that moves with it (output weights, O columns, K rows) under that matching (``xcos``):
   cross-validated, so about 0 for unrelated layers whatever the permutation. Every base
   block is tried against every suspect block: the layer map.
4. **invariants**: double-centred products ``E Wq^T Wk E^T``, ``E Wv^T Wo^T E^T``,
   ``E Win^T Wout^T E^T`` on probe tokens, which no permutation or rotation changes.

Thresholds are calibrated on unrelated pairs (``thresholds.json``, ``calibrate.py``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import numpy as np

from seawall.models.fingerprint import Fingerprint, fingerprint
from seawall.models.tensors import WeightFile

VERDICTS = ("identical", "derived", "related", "independent")


def thresholds() -> dict[str, Any]:
    """The calibrated thresholds shipped with seawall."""
    text = resources.files("seawall.models").joinpath("thresholds.json").read_text()
    return json.loads(text)


@dataclass
class Comparison:
    verdict: str
    reason: str
    base: dict[str, Any]
    suspect: dict[str, Any]
    tiers: dict[str, Any] = field(default_factory=dict)
    layers: list[dict[str, Any]] = field(default_factory=list)
    heatmap: dict[str, Any] = field(default_factory=dict)
    thresholds: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "reason": self.reason, "base": self.base,
                "suspect": self.suspect, "tiers": self.tiers, "layers": self.layers,
                "heatmap": self.heatmap, "thresholds": self.thresholds}


def compare(base: Fingerprint, suspect: WeightFile, *, all_tiers: bool = False,
            limits: dict[str, Any] | None = None) -> Comparison:
    """Fingerprint ``suspect`` in ``base``'s basis and decide."""
    return compare_fingerprints(base, fingerprint(suspect, base), all_tiers=all_tiers,
                                limits=limits)


def compare_fingerprints(base: Fingerprint, sus: Fingerprint, *, all_tiers: bool = False,
                         limits: dict[str, Any] | None = None) -> Comparison:
    limits = limits or thresholds()
    t = limits["thresholds"]
    result = Comparison("independent", "", _side(base), _side(sus), thresholds=limits)
    exact = _exact(base, sus)
    result.tiers["exact"] = exact
    if exact["identical"]:
        result.verdict = "identical"
        result.reason = f"all {exact['base_significant']} significant tensors are bit-identical"
        return result
    cosine = _cosine(base, sus, t["tensor_cos"])
    result.tiers["cosine"] = cosine
    result.heatmap = {"metric": "tensor cosine", "matrix": cosine.pop("layer_matrix")}
    if exact["shared_fraction"] >= 0.5:
        result.verdict = "derived"
        result.reason = (f"{exact['shared']} of the suspect's {exact['suspect_significant']} "
                         "significant tensors are bit-identical to the base's")
    elif cosine["matched_fraction"] >= 0.5:
        result.verdict = "derived"
        result.reason = (f"{cosine['matched']} of {cosine['compared']} matrices have a name-free "
                         f"cosine >= {t['tensor_cos']:.3f} with a base matrix (median "
                         f"{cosine['median_best']:.3f})")
    if result.verdict == "derived" and not all_tiers:
        result.layers = _layers_from_cosine(result.heatmap["matrix"])
        return result
    units = _units(base, sus)
    invariants = _invariants(base, sus)
    result.tiers["units"] = _unit_summary(units, t["xcos"], sus)
    result.tiers["invariants"] = _inv_summary(invariants, t["invariant"])
    result.layers = _layer_map(units, invariants, t)
    if units is not None:
        result.heatmap = {"metric": "unit-matching xcos", "matrix": _rounded(units)}
    elif invariants is not None:
        result.heatmap = {"metric": "centred invariant", "matrix": _rounded(invariants)}
    if result.verdict != "derived":
        _decide(result, t)
    return result


def _side(fp: Fingerprint) -> dict[str, Any]:
    keys = ("source", "format", "tensors", "parameters", "dtypes", "skeleton")
    return {k: fp.meta.get(k) for k in keys}


def _significant(fp: Fingerprint) -> list[dict[str, Any]]:
    """Tensors worth hashing: 1,024+ values and not constant (LayerNorm ones collide)."""
    return [e for e in fp.tensors
            if math.prod(e["shape"]) >= 1024 and e.get("std", 0) > 0]


def _exact(base: Fingerprint, sus: Fingerprint) -> dict[str, Any]:
    a = {e["hash"]: e["name"] for e in _significant(base)}
    b = {e["hash"]: e["name"] for e in _significant(sus)}
    shared = set(a) & set(b)
    renamed = sorted((a[h], b[h]) for h in shared if a[h] != b[h])[:20]
    return {"base_significant": len(a), "suspect_significant": len(b), "shared": len(shared),
            "shared_fraction": len(shared) / len(b) if b else 0.0,
            "identical": bool(a) and set(a) == set(b), "renamed_examples": renamed}


def _cosine(base: Fingerprint, sus: Fingerprint, threshold: float) -> dict[str, Any]:
    def sketches(fp: Fingerprint) -> list[tuple[dict[str, Any], np.ndarray]]:
        out = []
        for e in fp.tensors:
            if "sketch" in e:
                s = fp.array(f"sketch/{e['sketch']}")
                n = float(np.linalg.norm(s))
                out.append((e, s / n if n else s))
        return out

    a, b = sketches(base), sketches(sus)
    best: list[float] = []
    pairs: list[tuple[str, str, float]] = []
    for eb, sb in b:
        cands = [(ea, float(sa @ sb)) for ea, sa in a if ea["shape"] == eb["shape"]]
        if not cands:
            continue
        ea, score = max(cands, key=lambda c: c[1])
        best.append(score)
        pairs.append((ea["name"], eb["name"], score))
    matched = sum(s >= threshold for s in best)
    return {"compared": len(best), "matched": matched,
            "matched_fraction": matched / len(best) if best else 0.0,
            "median_best": float(np.median(best)) if best else 0.0,
            "max_best": max(best) if best else 0.0,
            "examples": [{"base": p[0], "suspect": p[1], "cos": round(p[2], 4)}
                         for p in sorted(pairs, key=lambda p: -p[2])[:8]],
            "layer_matrix": _layer_cos(base, sus, a, b)}


def _layer_cos(base: Fingerprint, sus: Fingerprint, a: list[Any], b: list[Any]) -> list[list[float]]:
    """Per block pair: mean sketch cosine of same-role matrices (rows: suspect blocks)."""
    ra, rb = _role_sketch(base, a), _role_sketch(sus, b)
    matrix = []
    for j in range(sus.blocks):
        row = []
        for i in range(base.blocks):
            scores = [float(ra[(i, r)] @ rb[(j, r)]) for r in ("q", "k", "v", "o", "in", "out")
                      if (i, r) in ra and (j, r) in rb and ra[(i, r)].shape == rb[(j, r)].shape]
            row.append(round(float(np.mean(scores)), 4) if scores else 0.0)
        matrix.append(row)
    return matrix


def _role_sketch(fp: Fingerprint, sketches: list[Any]) -> dict[tuple[int, str], np.ndarray]:
    by_name = {e["name"]: s for e, s in sketches}
    out = {}
    for block in fp.meta.get("roles", []):
        for role, name in block["roles"].items():
            if name in by_name:
                out[(block["index"], role)] = by_name[name]
    return out


def _normal_rows(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


UNIT_PAIRS = {"mlp": ("in", "out"), "ov": ("v", "o"), "qk": ("q", "k")}
"""Matched on the first matrix's units, scored on the second's: MLP units (input weights,
output weights), attention value dimensions (V rows, O columns) and query/key dimensions
(Q rows, K rows), which a head or unit permutation moves together."""


def _unit_arrays(fp: Fingerprint) -> dict[tuple[str, int], np.ndarray]:
    out = {}
    for i in range(fp.blocks):
        for role in ("in", "out", "q", "k", "v", "o"):
            a = fp.array(f"units_{role}/{i}")
            if a is not None:
                out[(role, i)] = a
    return out


def block_xcos(a: dict[tuple[str, int], np.ndarray], b: dict[tuple[str, int], np.ndarray],
               i: int, j: int, exact: bool) -> float | None:
    """Mean cross-validated effect size over the unit kinds both blocks have."""
    from scipy.optimize import linear_sum_assignment

    scores = []
    for left, right in UNIT_PAIRS.values():
        ain, aout, bin_, bout = a.get((left, i)), a.get((right, i)), b.get((left, j)), b.get((right, j))
        if ain is None or aout is None or bin_ is None or bout is None or ain.shape != bin_.shape:
            continue
        sim = _normal_rows(ain) @ _normal_rows(bin_).T
        if exact:
            rows, cols = linear_sum_assignment(-sim)
            scores.append(_cos(aout[rows], bout[cols]))
        else:
            scores.append(_cos(aout, bout[np.argmax(sim, axis=1)]))
    return float(np.mean(scores)) if scores else None


def _units(base: Fingerprint, sus: Fingerprint) -> np.ndarray | None:
    """xcos for every (suspect block, base block): match on inputs, score on outputs.

    Every pair gets a greedy matching (each base unit takes its most similar suspect
    unit): cheap, and already near 1 for a derived pair. Each suspect block's best
    candidate is then re-scored with an exact linear assignment, which is what the
    thresholds were calibrated on, so assignments run once per suspect block, not per pair.
    """
    if not sus.meta.get("aligned"):
        return None
    a, b = _unit_arrays(base), _unit_arrays(sus)
    if not a or not b:
        return None
    matrix = np.zeros((sus.blocks, base.blocks), dtype=np.float32)
    found = False
    for j in range(sus.blocks):
        for i in range(base.blocks):
            score = block_xcos(a, b, i, j, exact=False)
            if score is not None:
                matrix[j, i] = score
                found = True
        best = int(np.argmax(matrix[j])) if base.blocks else 0
        exact = block_xcos(a, b, best, j, exact=True) if base.blocks else None
        if exact is not None:
            matrix[j, best] = exact
    return matrix if found else None


def _cos(x: np.ndarray, y: np.ndarray) -> float:
    x, y = x.reshape(-1), y.reshape(-1)
    return float(x @ y / max(float(np.linalg.norm(x) * np.linalg.norm(y)), 1e-12))


def _invariants(base: Fingerprint, sus: Fingerprint) -> np.ndarray | None:
    matrix = np.zeros((sus.blocks, base.blocks), dtype=np.float32)
    found = False
    for j in range(sus.blocks):
        for i in range(base.blocks):
            scores = []
            for kind in ("qk", "ov", "mlp"):
                ma, mb = base.array(f"inv/{i}/{kind}"), sus.array(f"inv/{j}/{kind}")
                if ma is None or mb is None or ma.shape != mb.shape:
                    continue
                scores.append(max(float(np.sum(ma * mb)), float(np.sum(ma * mb.T))))
            if scores:
                found = True
                matrix[j, i] = float(np.mean(scores))
    return matrix if found else None


def _rounded(m: np.ndarray) -> list[list[float]]:
    return [[round(float(v), 4) for v in row] for row in m]


def _unit_summary(units: np.ndarray | None, threshold: float, sus: Fingerprint) -> dict[str, Any]:
    if units is None:
        return {"ran": False, "why": "no residual alignment (no shared embedding shape)"}
    best = units.max(axis=1) if units.size else np.zeros(0)
    return {"ran": True, "alignment_score": round(float(sus.meta.get("alignment_score", 0)), 4),
            "best_per_suspect_block": [round(float(v), 4) for v in best],
            "matched_blocks": int(np.sum(best >= threshold)), "blocks": int(len(best))}


def _inv_summary(inv: np.ndarray | None, threshold: float) -> dict[str, Any]:
    if inv is None:
        return {"ran": False}
    best = inv.max(axis=1)
    return {"ran": True, "best_per_suspect_block": [round(float(v), 4) for v in best],
            "matched_blocks": int(np.sum(best >= threshold)), "blocks": int(len(best))}


def _layer_map(units: np.ndarray | None, inv: np.ndarray | None,
               t: dict[str, float]) -> list[dict[str, Any]]:
    source = units if units is not None else inv
    if source is None:
        return []
    out = []
    for j in range(source.shape[0]):
        i = int(np.argmax(source[j]))
        row: dict[str, Any] = {"suspect_block": j, "base_block": i}
        if units is not None:
            row["xcos"] = round(float(units[j, i]), 4)
            row["matched"] = bool(units[j, i] >= t["xcos"])
        if inv is not None:
            row["invariant"] = round(float(inv[j, i]), 4)
            row.setdefault("matched", bool(inv[j, i] >= t["invariant"]))
        if not row["matched"]:
            row["base_block"] = None  # inserted or replaced: no base block explains it
        out.append(row)
    return out


def _layers_from_cosine(matrix: list[list[float]]) -> list[dict[str, Any]]:
    out = []
    for j, row in enumerate(matrix):
        if row:
            i = int(np.argmax(row))
            out.append({"suspect_block": j, "base_block": i, "cos": row[i]})
    return out


def _decide(result: Comparison, t: dict[str, float]) -> None:
    units, inv = result.tiers["units"], result.tiers["invariants"]
    if units.get("ran") and units["blocks"] and units["matched_blocks"] * 2 >= units["blocks"]:
        result.verdict = "derived"
        result.reason = (f"{units['matched_blocks']} of {units['blocks']} suspect blocks match a "
                         f"base block's hidden units after residual alignment (xcos >= "
                         f"{t['xcos']:.3f})")
        return
    signals = []
    if units.get("ran") and units["matched_blocks"]:
        signals.append(f"{units['matched_blocks']} block(s) with xcos >= {t['xcos']:.3f}")
    if units.get("ran") and units["alignment_score"] >= t["embedding_alignment"]:
        signals.append(f"embedding alignment {units['alignment_score']:.3f} >= "
                       f"{t['embedding_alignment']:.3f}")
    if inv.get("ran") and inv["matched_blocks"]:
        signals.append(f"{inv['matched_blocks']} block(s) with centred invariant >= "
                       f"{t['invariant']:.3f}")
    cos = result.tiers["cosine"]
    if cos["matched"]:
        signals.append(f"{cos['matched']} matrices with cosine >= {t['tensor_cos']:.3f}")
    if signals:
        result.verdict = "related"
        result.reason = "shared-ancestry evidence, not enough for derivation: " + "; ".join(signals)
    else:
        result.verdict = "independent"
        result.reason = "no tier found similarity above its calibrated threshold"
