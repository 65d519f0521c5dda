"""Calibrate lineage thresholds on unrelated pairs; writes ``thresholds.json``.

Run ``python -m seawall.models.calibrate [MODEL ...] --out thresholds.json``.

The null set has two parts, both about pairs that must *not* be called derived:

* **random pairs**: independently initialised transformers (BERT's init recipe, normal
  0.02) of several widths and depths, every pair of distinct seeds per shape, compared
  end to end exactly as ``seawall model compare`` does;
* **hard pairs** from each real MODEL given: every block against every *other* block of
  the same model. They share an embedding, a residual basis and a training run, which
  makes them harder than two unrelated models (the unit-matching p-value is badly
  uncalibrated there, see docs/models.md); tensors of the same role and shape in
  different blocks give the name-free cosine null.

Each threshold is the null maximum plus a margin (``MARGIN``). With N null pairs and no
exceedance, the false-positive rate per pair is below 3/N at 95% confidence (the rule of
three); the file records N and that bound, and the report prints it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from seawall.models.fingerprint import fingerprint
from seawall.models.lineage import compare_fingerprints
from seawall.models.readers import open_weights
from seawall.models.tensors import TensorInfo, WeightFile

MARGIN = {"tensor_cos": 0.1, "xcos": 0.1, "invariant": 0.1, "embedding_alignment": 0.1}
FLOORS = {"embedding_alignment": 0.5}
"""Floors from measurements the generated nulls cannot reproduce: two BERTs trained from
scratch with the same recipe aligned their embeddings at 0.455 in the research prototype
(shared/notes/model-lineage.md, section 4), far above random inits (0.07)."""
SHAPES = ((384, 1536, 6, 3), (256, 1024, 4, 4), (128, 512, 3, 6), (96, 384, 3, 8), (64, 256, 2, 10),
          (48, 192, 2, 16), (32, 128, 2, 16))
"""(d_model, d_ff, blocks, seeds): every pair of seeds per shape is a null pair."""
VOCAB = 4096


class ArrayModel(WeightFile):
    """An in-memory model (generated weights) behind the reader interface."""

    format = "generated"

    def __init__(self, name: str, arrays: dict[str, np.ndarray]) -> None:
        super().__init__(Path(name))
        self.arrays = arrays
        self.tensors = [TensorInfo(k, tuple(v.shape), "F32", i) for i, (k, v) in
                        enumerate(arrays.items())]

    def load(self, info: TensorInfo) -> np.ndarray:
        return self.arrays[info.name]


def random_transformer(d: int, d_ff: int, blocks: int, seed: int) -> ArrayModel:
    rng = np.random.default_rng(seed)

    def init(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.02).astype(np.float32)

    arrays = {"embeddings.word_embeddings.weight": init(VOCAB, d)}
    for i in range(blocks):
        p = f"encoder.layer.{i}."
        for role in ("query", "key", "value"):
            arrays[p + f"attention.self.{role}.weight"] = init(d, d)
        arrays[p + "attention.output.dense.weight"] = init(d, d)
        arrays[p + "intermediate.dense.weight"] = init(d_ff, d)
        arrays[p + "output.dense.weight"] = init(d, d_ff)
    return ArrayModel(f"random-d{d}-s{seed}", arrays)


def _random_nulls(stats: dict[str, list[float]]) -> int:
    pairs = 0
    for d, d_ff, blocks, seeds in SHAPES:
        fps = [fingerprint(random_transformer(d, d_ff, blocks, 1000 * d + s)) for s in range(seeds)]
        for a in range(seeds):
            for b in range(seeds):
                if a == b:
                    continue
                model = random_transformer(d, d_ff, blocks, 1000 * d + b)
                result = compare_fingerprints(fps[a], fingerprint(model, fps[a]),
                                              all_tiers=True, limits=_open_limits())
                _collect(result.to_dict(), stats)
                pairs += 1
    return pairs


def _open_limits() -> dict[str, Any]:
    return {"thresholds": {"tensor_cos": 2.0, "xcos": 2.0, "invariant": 2.0,
                           "embedding_alignment": 2.0}}


def _collect(result: dict[str, Any], stats: dict[str, list[float]]) -> None:
    tiers = result["tiers"]
    stats["tensor_cos"].append(tiers["cosine"]["max_best"])
    units = tiers.get("units", {})
    if units.get("ran"):
        stats["embedding_alignment"].append(units["alignment_score"])
        matrix = result["heatmap"]["matrix"]
        stats["xcos"].extend(max(row) for row in matrix)
    inv = tiers.get("invariants", {})
    if inv.get("ran"):
        stats["invariant"].extend(inv["best_per_suspect_block"])


def _hard_nulls(path: Path, stats: dict[str, list[float]]) -> int:
    """Block i against block j != i of one real model, exact LAP for every pair."""
    from seawall.models.lineage import _invariants, _unit_arrays, block_xcos

    with open_weights(path) as weights:
        fp = fingerprint(weights)
        aligned = fingerprint(weights, fp)  # the same embedding: identity alignment
    pairs = 0
    inv = _invariants(fp, aligned)
    a, b = _unit_arrays(fp), _unit_arrays(aligned)
    for i in range(fp.blocks):
        for j in range(fp.blocks):
            if i == j:
                continue
            pairs += 1
            score = block_xcos(a, b, i, j, exact=True)
            if score is not None:
                stats["xcos"].append(score)
            if inv is not None:
                stats["invariant"].append(float(inv[j, i]))
    roles = fp.meta.get("roles", [])
    sketch = {e["name"]: fp.array(f"sketch/{e['sketch']}") for e in fp.tensors if "sketch" in e}
    for i, a in enumerate(roles):
        for b in roles[i + 1:]:
            for role, name in a["roles"].items():
                other = b["roles"].get(role)
                if name in sketch and other in sketch:
                    x, y = sketch[name], sketch[other]
                    stats["tensor_cos"].append(abs(float(x @ y / (np.linalg.norm(x) * np.linalg.norm(y)))))
    return pairs


def calibrate(models: list[Path]) -> dict[str, Any]:
    stats: dict[str, list[float]] = {k: [] for k in MARGIN}
    random_pairs = _random_nulls(stats)
    hard_pairs = sum(_hard_nulls(p, stats) for p in models)
    thresholds = {k: round(max(max(v) + MARGIN[k], FLOORS.get(k, 0.0)), 4)
                  for k, v in stats.items()}
    pairs = random_pairs
    layer_pairs = len(stats["xcos"])
    return {
        "version": 1,
        "thresholds": thresholds,
        "calibration": {
            "null_pairs": pairs, "null_layer_pairs": layer_pairs,
            "hard_layer_pairs": hard_pairs, "models": [p.name for p in models],
            "fpr_bound_95": round(3 / pairs, 4), "layer_fpr_bound_95": round(3 / layer_pairs, 5),
            "null_max": {k: round(max(v), 4) for k, v in stats.items()},
            "null_p99": {k: round(float(np.quantile(v, 0.99)), 4) for k, v in stats.items()},
            "null_count": {k: len(v) for k, v in stats.items()},
            "margin": MARGIN, "floors": FLOORS,
            "shapes": [list(s) for s in SHAPES],
            "rule": "threshold = max(null maximum + margin, floor); FPR bound = 3 / null pairs",
        },
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", type=Path, help="real models for hard nulls")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("thresholds.json"))
    args = parser.parse_args(argv)
    result = calibrate(args.models)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["thresholds"]), f"FPR <= {result['calibration']['fpr_bound_95']}")


if __name__ == "__main__":
    main()
