"""``seawall model inspect``: what a weights file holds, read without running anything."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from seawall.models.readers import open_weights
from seawall.models.structure import skeleton
from seawall.models.tensors import canonical_hash


def inspect_file(path: Path, *, hashes: bool = True) -> dict[str, Any]:
    """A JSON-ready description; with ``hashes``, every tensor is read once (streamed)."""
    with open_weights(path) as weights:
        skel = skeleton(weights.tensors)
        report: dict[str, Any] = {"file": str(path), **weights.summary(),
                                  "skeleton": skel.describe(), "hints": _hints(weights, skel)}
        listed = []
        for info in weights.tensors:
            entry: dict[str, Any] = {"name": info.name, "shape": list(info.shape),
                                     "dtype": info.dtype}
            if info.extra.get("transposed"):
                entry["stored_transposed"] = True
            if hashes:
                entry["hash"] = canonical_hash(weights.load(info))
            listed.append(entry)
        report["tensor_list"] = listed
    return report


def _hints(weights: Any, skel: Any) -> dict[str, Any]:
    hints: dict[str, Any] = {}
    if weights.metadata.get("architecture"):
        hints["architecture"] = weights.metadata["architecture"]
    names = " ".join(t.name for t in weights.tensors[:400]).lower()
    for family, marks in (("BERT-like encoder", ("attention.self.query", "intermediate.dense")),
                          ("Llama-like decoder", ("q_proj", "gate_proj")),
                          ("GPT-2-like decoder", ("attn.c_attn", "mlp.c_fc")),
                          ("llama.cpp GGUF names", ("attn_q", "ffn_up"))):
        if all(m in names for m in marks):
            hints["family"] = family
            break
    if skel.embedding is not None:
        hints["vocabulary"] = max(skel.embedding.shape)
    return hints
