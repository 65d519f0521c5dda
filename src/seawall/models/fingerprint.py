"""What lineage needs from a model, computed in one streaming pass, and the ``.swmf`` file.

A fingerprint lets the protected weights stay where they are: it keeps per-tensor
canonical hashes, a 512-bucket count sketch of every matrix (cosines survive a sketch,
the weights do not), 2,048 probe rows of the token embedding (to align a suspect's
residual basis), each block's MLP units and attention dimensions projected to 128
random directions, and the block's double-centred invariant products on 256 probe
tokens, in float16. For MiniLM-L6 (91 MB) that is about 11 MB, from which the weights
cannot be rebuilt.

``.swmf`` layout (version 1), all little-endian::

    b"SWMF" | u16 version | u16 reserved | u64 header length | JSON header | array bytes

The JSON header holds ``meta``, ``params``, ``tensors`` (name, shape, dtype, hash, ...)
and ``arrays``: name -> {dtype: F16|F32|I64, shape, offset, length} into the bytes that
follow. Nothing in it is code; readers bound-check every offset.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from seawall.models.structure import Skeleton, skeleton
from seawall.models.tensors import ModelError, TensorInfo, WeightFile, canonical_hash

MAGIC = b"SWMF"
VERSION = 1
MAX_HEADER = 64 * 1024 * 1024
MAX_FINGERPRINT = 1024 * 1024 * 1024
"""A fingerprint is read whole; real ones are a few MB (12 MB for a 91 MB model)."""
PARAMS = {"probe_start": 1000, "probe_align": 2048, "probe_inv": 256, "sketch_k": 512,
          "unit_k": 128, "seed": 20_251_125, "min_sketch": 4096}
STORED = {"F16": np.float16, "F32": np.float32, "I64": np.int64}


@dataclass
class Fingerprint:
    meta: dict[str, Any]
    params: dict[str, int]
    tensors: list[dict[str, Any]]
    arrays: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def blocks(self) -> int:
        return int(self.meta.get("skeleton", {}).get("blocks", 0))

    def array(self, name: str) -> np.ndarray | None:
        value = self.arrays.get(name)
        return None if value is None else value.astype(np.float32)

    # -- file format ---------------------------------------------------------------
    def save(self, path: Path) -> None:
        index: dict[str, Any] = {}
        blobs: list[bytes] = []
        offset = 0
        for name, array in self.arrays.items():
            kind = {np.dtype(np.float16): "F16", np.dtype(np.int64): "I64"}.get(array.dtype, "F32")
            raw = np.ascontiguousarray(array, dtype=STORED[kind]).astype(
                STORED[kind]().dtype.newbyteorder("<")).tobytes()
            index[name] = {"dtype": kind, "shape": list(array.shape), "offset": offset,
                           "length": len(raw)}
            blobs.append(raw)
            offset += len(raw)
        header = json.dumps({"format_version": VERSION, "meta": self.meta, "params": self.params,
                             "tensors": self.tensors, "arrays": index}).encode()
        with open(path, "wb") as fh:
            fh.write(MAGIC + struct.pack("<HHQ", VERSION, 0, len(header)) + header)
            for raw in blobs:
                fh.write(raw)

    @classmethod
    def load(cls, path: Path) -> "Fingerprint":
        size = Path(path).stat().st_size
        if size > MAX_FINGERPRINT:
            raise ModelError(f"{path}: {size:,} bytes is too large for a fingerprint")
        data = Path(path).read_bytes()
        if not data.startswith(MAGIC) or len(data) < 16:
            raise ModelError(f"{path}: not a seawall fingerprint (.swmf)")
        version, _reserved, length = struct.unpack_from("<HHQ", data, 4)
        if version != VERSION:
            raise ModelError(f"{path}: fingerprint version {version}; this seawall reads {VERSION}")
        if length > MAX_HEADER or 16 + length > len(data):
            raise ModelError(f"{path}: fingerprint header length {length} out of range")
        try:
            header = json.loads(data[16 : 16 + length])
            base = 16 + length
            arrays = {}
            for name, spec in header["arrays"].items():
                dtype = STORED[spec["dtype"]]
                start, size = base + int(spec["offset"]), int(spec["length"])
                count = math.prod(spec["shape"])
                if start + size > len(data) or size != count * np.dtype(dtype).itemsize:
                    raise ModelError(f"{path}: array {name} runs past the end of the file")
                arrays[name] = np.frombuffer(data, dtype=np.dtype(dtype).newbyteorder("<"),
                                             count=count, offset=start).reshape(spec["shape"])
            return cls(header["meta"], header["params"], header["tensors"], arrays)
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"{path}: corrupt fingerprint ({exc})") from None


def is_fingerprint(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(4) == MAGIC


# -- computing one -----------------------------------------------------------------------
SKETCH_CHUNK = 1 << 20


def count_sketch(flat: np.ndarray, k: int, seed: int, centre: float = 0.0) -> np.ndarray:
    """A k-bucket count sketch: E<S a, S b> = <a, b>, so cosines survive it.

    Bucket and sign of position i come from a 64-bit multiplicative hash of (i, seed),
    computed per 1M-value slice: no table the size of the tensor is ever built.
    """
    out = np.zeros(k, dtype=np.float64)
    for start in range(0, flat.size, SKETCH_CHUNK):
        part = flat[start : start + SKETCH_CHUNK] - np.float32(centre)
        index = np.arange(start, start + part.size, dtype=np.uint64)
        with np.errstate(over="ignore"):
            mixed = (index + np.uint64(seed)) * np.uint64(0x9E3779B97F4A7C15)
            mixed ^= mixed >> np.uint64(29)
            mixed *= np.uint64(0xBF58476D1CE4E5B9)
        buckets = (mixed >> np.uint64(33)) % np.uint64(k)
        signs = ((mixed >> np.uint64(13)) & np.uint64(1)).astype(np.float32) * 2 - 1
        out += np.bincount(buckets.astype(np.intp), weights=part * signs, minlength=k)
    return out.astype(np.float32)


def unit_basis(d: int, params: dict[str, int]) -> np.ndarray:
    rng = np.random.default_rng([params["seed"], d, 1])
    return (rng.standard_normal((d, params["unit_k"])) / math.sqrt(params["unit_k"])).astype(
        np.float32)


def centred(m: np.ndarray) -> np.ndarray:
    """Double-centre an invariant matrix and scale it to unit Frobenius norm."""
    m = m - m.mean(axis=0, keepdims=True) - m.mean(axis=1, keepdims=True) + m.mean()
    norm = float(np.linalg.norm(m))
    return (m / norm if norm else m).astype(np.float32)


@dataclass
class Alignment:
    """How a suspect's residual coordinates map onto the base's (from the embeddings)."""

    perm: np.ndarray
    sign: np.ndarray
    score: float


def align(base_probe: np.ndarray, suspect_probe: np.ndarray) -> Alignment | None:
    """Match embedding columns by correlation over the same probe tokens (LAP on |r|)."""
    from scipy.optimize import linear_sum_assignment

    if base_probe.shape != suspect_probe.shape:
        return None
    a = _standard(base_probe)
    b = _standard(suspect_probe)
    corr = a.T @ b / a.shape[0]
    rows, cols = linear_sum_assignment(-np.abs(corr))
    perm = cols[np.argsort(rows)]
    matched = corr[np.arange(len(perm)), perm]
    return Alignment(perm, np.where(matched < 0, -1.0, 1.0).astype(np.float32),
                     float(np.mean(np.abs(matched))))


def _standard(x: np.ndarray) -> np.ndarray:
    x = x - x.mean(axis=0, keepdims=True)
    return x / np.maximum(x.std(axis=0, keepdims=True), 1e-12)


def fingerprint(model: WeightFile, base: "Fingerprint | None" = None) -> Fingerprint:
    """Fingerprint ``model``; with ``base``, project its units in ``base``'s residual basis."""
    params = dict(base.params if base is not None else PARAMS)
    skel = skeleton(model.tensors)
    meta: dict[str, Any] = {"source": str(model.path.name), **model.summary(),
                            "skeleton": skel.describe(), "metadata": _small(model.metadata)}
    meta["roles"] = [{"index": b.index, "roles": {
        **{r: t.name for r, t in b.attn.items()},
        **({"in": b.w_in.name, "out": b.w_out.name} if b.w_in and b.w_out else {})}}
        for b in skel.blocks]
    fp = Fingerprint(meta, params, [])
    roles = _roles(skel)
    emb_rows = None
    alignment: Alignment | None = None
    ordered = list(model.tensors)
    if skel.embedding is not None:  # the embedding first: every block product needs it
        ordered.remove(skel.embedding)
        ordered.insert(0, skel.embedding)
    partial: dict[tuple[int, str], np.ndarray] = {}
    basis = unit_basis(skel.d, params) if skel.d else None
    for info in ordered:
        array = model.load(info)
        if info is skel.embedding:
            emb = array if array.shape[1] == skel.d else array.T
            emb_rows = _probe_rows(emb, params)
            fp.arrays["emb_probe"] = emb_rows[0].astype(np.float16)
            if base is not None and base.array("emb_probe") is not None:
                alignment = align(base.array("emb_probe"), emb_rows[0])
                if alignment is not None:
                    fp.meta["alignment_score"] = alignment.score
        fp.tensors.append(_tensor_entry(info, array, fp, params))
        role = roles.get(id(info))
        if role is not None and emb_rows is not None:
            _block_part(fp, partial, role, array, emb_rows[1], basis, alignment,
                        base is not None)
        del array
    fp.meta["aligned"] = alignment is not None
    return fp


def _small(metadata: dict[str, Any]) -> dict[str, str]:
    return {str(k)[:100]: str(v)[:200] for k, v in list(metadata.items())[:20]}


def _roles(skel: Skeleton) -> dict[int, tuple[int, str]]:
    roles: dict[int, tuple[int, str]] = {}
    for block in skel.blocks:
        for role, info in block.attn.items():
            roles[id(info)] = (block.index, role)
        if block.w_in is not None and block.w_out is not None:
            roles[id(block.w_in)] = (block.index, "in")
            roles[id(block.w_out)] = (block.index, "out")
    return roles


def _probe_rows(emb: np.ndarray, params: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    vocab = emb.shape[0]
    start = min(params["probe_start"], max(0, vocab - params["probe_align"]))
    rows = emb[start : start + params["probe_align"]].astype(np.float32)
    return rows, rows[: params["probe_inv"]]


def _tensor_entry(info: TensorInfo, array: np.ndarray, fp: Fingerprint,
                  params: dict[str, int]) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": info.name, "shape": list(info.shape), "dtype": info.dtype,
                             "hash": canonical_hash(array)}
    if array.size:
        entry["std"] = float(array.std())
    if info.is_float and array.ndim == 2 and array.size >= params["min_sketch"]:
        flat = array.reshape(-1)
        sketch = count_sketch(flat, params["sketch_k"], params["seed"], float(flat.mean()))
        entry["sketch"] = len([t for t in fp.tensors if "sketch" in t])
        fp.arrays[f"sketch/{entry['sketch']}"] = sketch
    return entry


PAIRS = {"qk": ("q", "k"), "ov": ("v", "o"), "mlp": ("in", "out")}


def _block_part(fp: Fingerprint, partial: dict[tuple[int, str], np.ndarray],
                role: tuple[int, str], w: np.ndarray, probe: np.ndarray,
                basis: np.ndarray | None, alignment: Alignment | None, suspect: bool) -> None:
    """Accumulate a block's invariant products and unit summaries from one matrix."""
    index, name = role
    # E W^T for inputs-side matrices (q, k, v, in); E W for outputs-side (o, out).
    partial[(index, name)] = probe @ (w if name in ("o", "out") else w.T)
    if basis is not None and (alignment is not None or not suspect):
        # One row per hidden unit (MLP) or attention dimension (q, k, v, o), residual in columns.
        units = w.T if name in ("o", "out") else w
        if alignment is not None:
            units = units[:, alignment.perm] * alignment.sign
        fp.arrays[f"units_{name}/{index}"] = (units @ basis).astype(np.float16)
    for kind, (left, right) in PAIRS.items():
        a, b = partial.get((index, left)), partial.get((index, right))
        if a is not None and b is not None:
            fp.arrays[f"inv/{index}/{kind}"] = centred(a @ b.T).astype(np.float16)
            partial.pop((index, left))
            partial.pop((index, right))
