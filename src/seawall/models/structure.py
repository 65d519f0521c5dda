"""Find a transformer's skeleton from shapes, names if any, and file order.

Lineage compares layers, so it needs to know which tensor is the token embedding, which
matrices form each block's attention (q, k, v, o) and MLP (``w_in``: (d_ff, d),
``w_out``: (d, d_ff)). Names help when present (``layer.3``, ``blk.3``, ``query``,
``q_proj``...), but the tiers must survive renamed or anonymous tensors (an ONNX export
names them ``onnx::MatMul_481``), so the fallback is purely structural: the embedding is
the largest matrix, ``d`` its width, MLP matrices are the (d_ff, d)/(d, d_ff) pairs, and
blocks follow graph or file order, each ending at its ``w_out``.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from seawall.models.tensors import TensorInfo

LAYER_INDEX = re.compile(r"(?:^|[._])(?:layers?|blocks?|blk|h|block)[._](\d+)(?:[._]|$)")
ROLE_WORDS = {
    "q": ("query", "q_proj", "attn_q", "wq", ".q."),
    "k": ("key", "k_proj", "attn_k", "wk", ".k."),
    "v": ("value", "v_proj", "attn_v", "wv", ".v."),
    "o": ("attention.output", "o_proj", "attn_output", "wo", "out_proj", "attn_out", ".o."),
}


@dataclass
class Block:
    """One transformer block: attention matrices by role and the MLP pair."""

    index: int
    attn: dict[str, TensorInfo] = field(default_factory=dict)
    w_in: TensorInfo | None = None
    w_out: TensorInfo | None = None


@dataclass
class Skeleton:
    embedding: TensorInfo | None
    d: int
    d_ff: int
    blocks: list[Block]

    def describe(self) -> dict[str, object]:
        return {"embedding": list(self.embedding.shape) if self.embedding else None,
                "d_model": self.d, "d_ff": self.d_ff, "blocks": len(self.blocks),
                "attention_roles": sorted({r for b in self.blocks for r in b.attn})}


def _natural(name: str) -> list[object]:
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name)]


def skeleton(tensors: list[TensorInfo]) -> Skeleton:
    mats = [t for t in tensors if t.is_float and len(t.shape) == 2 and min(t.shape) > 1]
    if not mats:
        return Skeleton(None, 0, 0, [])
    embedding = max(mats, key=lambda t: (t.numel, -t.order))
    vocab, d = embedding.shape if embedding.shape[0] >= embedding.shape[1] else embedding.shape[::-1]
    others = [t for t in mats if t is not embedding]
    widths = Counter(t.shape[0] if t.shape[1] == d else t.shape[1] for t in others
                     if d in t.shape and t.shape[0] != t.shape[1] and vocab not in t.shape)
    pairs = [w for w, n in widths.items() if n >= 2]
    d_ff = max(pairs, key=lambda w: (widths[w], w)) if pairs else 0
    interesting = [t for t in others if t.shape == (d, d) or (d_ff and t.shape in ((d_ff, d), (d, d_ff)))]
    named = [t for t in interesting if LAYER_INDEX.search(t.name)]
    if interesting and len(named) >= 0.8 * len(interesting):  # a pooler or head has no index
        blocks = _by_name(named, d, d_ff)
    else:
        blocks = _by_order(sorted(interesting, key=lambda t: t.order), d, d_ff)
    return Skeleton(embedding, d, d_ff, [b for b in blocks if b.w_in or b.attn])


def _by_name(tensors: list[TensorInfo], d: int, d_ff: int) -> list[Block]:
    groups: dict[int, list[TensorInfo]] = {}
    for t in tensors:
        match = LAYER_INDEX.search(t.name)
        assert match is not None
        groups.setdefault(int(match.group(1)), []).append(t)
    blocks = []
    for index in sorted(groups):
        block = Block(len(blocks))
        squares = []
        for t in sorted(groups[index], key=lambda t: _natural(t.name)):
            if d_ff and t.shape == (d_ff, d):
                block.w_in = block.w_in or t
            elif d_ff and t.shape == (d, d_ff):
                block.w_out = block.w_out or t
            else:
                squares.append(t)
        _assign_roles(block, squares, by_name=True)
        blocks.append(block)
    return blocks


def _by_order(tensors: list[TensorInfo], d: int, d_ff: int) -> list[Block]:
    blocks: list[Block] = []
    squares: list[TensorInfo] = []
    block = Block(0)
    for t in tensors:
        if d_ff and t.shape == (d_ff, d):
            block.w_in = t
        elif d_ff and t.shape == (d, d_ff):
            block.w_out = t
            _assign_roles(block, squares[-4:], by_name=False)
            blocks.append(block)
            block, squares = Block(len(blocks)), []
        else:
            squares.append(t)
    return blocks


def _assign_roles(block: Block, squares: list[TensorInfo], by_name: bool) -> None:
    if by_name:
        for t in squares:
            lowered = t.name.lower()
            for role, words in ROLE_WORDS.items():
                if role not in block.attn and any(w in lowered for w in words):
                    block.attn[role] = t
                    break
        if len(block.attn) == 4 or len(squares) < 4:
            return
        block.attn.clear()
        squares = sorted(squares, key=lambda t: t.order)
    for role, t in zip("qkvo", squares[:4]):
        block.attn[role] = t
