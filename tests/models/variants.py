"""Every lineage fixture: derived variants and independent controls of the base model."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

import weightgen as g

Weights = dict[str, np.ndarray]


_TUNED: dict[bool, Weights] = {}


def _finetuned(base: Weights, heavy: bool) -> Weights:
    """Light: 10 Adam steps at 1e-4; heavy: 20 steps at 5e-3 plus a low-rank attention update."""
    if heavy not in _TUNED:
        steps, lr = (20, 5e-3) if heavy else (10, 1e-4)
        tuned = g.train_mlps(base, base, steps=steps, lr=lr, seed=5, tokens=64)
        _TUNED[heavy] = g.low_rank_attention(tuned, rank=8, scale=0.3, seed=6) if heavy else tuned
    return _TUNED[heavy]


def _scratch(base: Weights, seed: int) -> Weights:
    """'Trained briefly from scratch': the BERT init recipe, then the same Adam recipe
    on every MLP against a *random* teacher (the base is never seen)."""
    init = g.random_bert(base, seed)
    teacher = g.random_bert(base, seed + 100)
    return g.train_mlps(init, teacher, steps=20, lr=5e-3, seed=seed, tokens=64)


# name -> (builder(base, folder) -> path, expected verdicts)
DERIVED = ("derived",)
"""Exact: none of these keeps every tensor bit-identical, so ``identical`` would be a bug
(the acceptance list allows it in general; these fixtures do not)."""
Builder = Callable[[Weights, Path], Path]
VARIANTS: dict[str, tuple[Builder, tuple[str, ...]]] = {
    "resaved-f32-torch-zip": (lambda w, d: g.write_torch_zip(d / "resaved.pt", w, "F32"), ("identical",)),
    "noise-30pct": (lambda w, d: g.write_safetensors(d / "noise.safetensors", g.noise(w, 0.3, 1)),
                    DERIVED),
    "q8_0-gguf": (lambda w, d: g.write_gguf(d / "q8.gguf", g.floats(w), "Q8_0"), DERIVED),
    "q4_0-gguf": (lambda w, d: g.write_gguf(d / "q4.gguf", g.floats(w), "Q4_0"), DERIVED),
    "prune-50pct-torch-legacy": (
        lambda w, d: g.write_torch_legacy(d / "pruned.bin", g.floats(g.prune(w, 0.5))), DERIVED),
    "finetune-light": (lambda w, d: g.write_safetensors(d / "ft-light.safetensors",
                                                        _finetuned(w, False)), DERIVED),
    "finetune-heavy": (lambda w, d: g.write_safetensors(d / "ft-heavy.safetensors",
                                                        _finetuned(w, True)), DERIVED),
    "permuted": (lambda w, d: g.write_safetensors(d / "perm.safetensors", g.permute(w, 3)),
                 DERIVED),
    "drop-last-two": (lambda w, d: g.write_safetensors(
        d / "drop.safetensors", g.relayer(w, [0, 1, 2, 3])), DERIVED),
    "every-other-layer": (lambda w, d: g.write_safetensors(
        d / "half.safetensors", g.relayer(w, [0, 2, 4])), DERIVED),
    "insert-random-layer": (lambda w, d: g.write_safetensors(
        d / "grow.safetensors", g.relayer(w, [0, 1, 2, g.random_layer(w, 9), 3, 4, 5])),
        DERIVED),
    "perm+finetune+q4_0": (lambda w, d: g.write_gguf(
        d / "combo.gguf", g.floats(g.permute(_finetuned(w, True), 4)), "Q4_0"), DERIVED),
    "random-init-seed1": (lambda w, d: g.write_safetensors(d / "rand1.safetensors",
                                                           g.random_bert(w, 1)), ("independent",)),
    "random-init-seed2-npz": (lambda w, d: _npz(d / "rand2.npz", g.random_bert(w, 2)),
                              ("independent",)),
    "scratch-seed11": (lambda w, d: g.write_safetensors(d / "scratch11.safetensors",
                                                        _scratch(w, 11)), ("independent",)),
    "scratch-seed12": (lambda w, d: g.write_safetensors(d / "scratch12.safetensors",
                                                        _scratch(w, 12)), ("independent",)),
}


def _npz(path: Path, w: Weights) -> Path:
    np.savez(path, **{k.replace(".", "_"): v for k, v in g.floats(w).items()})
    return path


def build(name: str, base: Weights, folder: Path) -> Path:
    builder, _expected = VARIANTS[name]
    return builder(base, folder)
