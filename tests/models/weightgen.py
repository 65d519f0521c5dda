"""Build model files and lineage variants in code: writers, a BERT forward pass, edits.

Everything here is deliberately plain numpy so a reader can check each variant does
what its name says: the permuted copy is checked to compute the same function, the
fine-tunes take real Adam steps on a real loss, quantisation goes through llama.cpp's
own ``gguf`` package.
"""

from __future__ import annotations

import io
import json
import math
import pickle
import re
import struct
import sys
import types
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

Weights = dict[str, np.ndarray]
HEADS = 12
LAYER = re.compile(r"^encoder\.layer\.(\d+)\.")


# -- writers ----------------------------------------------------------------------------
def write_safetensors(path: Path, weights: Weights, dtype: str = "F32") -> Path:
    np_types = {"F32": "<f4", "F16": "<f2", "I64": "<i8"}
    header: dict[str, Any] = {}
    blobs = []
    offset = 0
    for name, array in weights.items():
        kind = "I64" if array.dtype.kind == "i" else dtype
        raw = np.ascontiguousarray(array, dtype=np_types[kind]).tobytes()
        header[name] = {"dtype": kind, "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    head = json.dumps(header).encode()
    head += b" " * (-len(head) % 8)
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(head)) + head)
        for raw in blobs:
            fh.write(raw)
    return path


def write_gguf(path: Path, weights: Weights, qtype: str = "Q4_0") -> Path:
    """Quantise every matrix whose rows fit the block size with llama.cpp's ``gguf``."""
    import gguf
    from gguf import quants

    kind = gguf.GGMLQuantizationType[qtype]
    writer = gguf.GGUFWriter(str(path), "bert")
    for name, array in weights.items():
        array = np.ascontiguousarray(array, dtype=np.float32)
        if array.ndim == 2 and array.shape[1] % 32 == 0 and kind != gguf.GGMLQuantizationType.F32:
            data = quants.quantize(array, kind)
            writer.add_tensor(name, data, raw_shape=data.shape, raw_dtype=kind)
        else:
            writer.add_tensor(name, array)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


class _Storage:
    """Stands for a torch storage while pickling: written as a persistent id."""

    def __init__(self, key: str, kind: Any, numel: int) -> None:
        self.key, self.kind, self.numel = key, kind, numel


def _fake_torch() -> tuple[types.ModuleType, types.ModuleType]:
    """Just enough ``torch``/``torch._utils`` for pickle to name the real globals."""
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(*args: Any) -> None:  # never called: only named
        raise AssertionError("not to be called")

    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2  # type: ignore[attr-defined]
    for name in ("FloatStorage", "HalfStorage", "BFloat16Storage"):
        cls = type(name, (), {"__module__": "torch"})
        setattr(torch, name, cls)
    torch._utils = utils  # type: ignore[attr-defined]
    return torch, utils


class _Tensor:
    def __init__(self, storage: _Storage, shape: tuple[int, ...], rebuild: Any) -> None:
        self.storage, self.shape, self.rebuild = storage, shape, rebuild

    def __reduce__(self) -> tuple[Any, ...]:
        stride = tuple(int(np.prod(self.shape[i + 1:])) for i in range(len(self.shape)))
        return (self.rebuild, (self.storage, 0, self.shape, stride, False, {}))


def torch_pickle(weights: Weights, dtype: str = "F16", protocol: int = 2,
                 extra: Any = None) -> tuple[bytes, dict[str, bytes]]:
    """A ``torch.save``-style state-dict pickle and its storages, built by real pickle."""
    from collections import OrderedDict

    torch, utils = _fake_torch()
    saved = {k: sys.modules.get(k) for k in ("torch", "torch._utils")}
    sys.modules["torch"], sys.modules["torch._utils"] = torch, utils
    try:
        kind = {"F16": torch.HalfStorage, "F32": torch.FloatStorage}[dtype]
        np_type = {"F16": "<f2", "F32": "<f4"}[dtype]
        state: Any = OrderedDict()
        storages: dict[str, bytes] = {}
        for i, (name, array) in enumerate(weights.items()):
            storage = _Storage(str(i), kind, array.size)
            storages[str(i)] = np.ascontiguousarray(array, dtype=np_type).tobytes()
            state[name] = _Tensor(storage, tuple(array.shape), utils._rebuild_tensor_v2)
        if extra is not None:
            state["extra"] = extra
        buf = io.BytesIO()
        pickler = pickle.Pickler(buf, protocol=protocol)
        pickler.persistent_id = lambda obj: (  # type: ignore[method-assign]
            ("storage", obj.kind, obj.key, "cpu", obj.numel) if isinstance(obj, _Storage) else None)
        pickler.dump(state)
        return buf.getvalue(), storages
    finally:
        for key, module in saved.items():
            if module is None:
                sys.modules.pop(key, None)
            else:
                sys.modules[key] = module


def write_torch_zip(path: Path, weights: Weights, dtype: str = "F16", extra: Any = None) -> Path:
    data, storages = torch_pickle(weights, dtype, extra=extra)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("archive/data.pkl", data)
        zf.writestr("archive/byteorder", b"little")
        for key, raw in storages.items():
            zf.writestr(f"archive/data/{key}", raw)
        zf.writestr("archive/version", b"3\n")
    return path


def write_torch_legacy(path: Path, weights: Weights) -> Path:
    data, storages = torch_pickle(weights, "F32")
    head = b"".join(pickle.dumps(x, protocol=2) for x in (
        0x1950A86A20F9469CFC6C, 1001,
        {"protocol_version": 1001, "little_endian": True,
         "type_sizes": {"short": 2, "int": 4, "long": 4}}))
    keys = pickle.dumps(list(storages), protocol=2)
    body = b"".join(struct.pack("<Q", len(raw) // 4) + raw for raw in storages.values())
    path.write_bytes(head + data + keys + body)
    return path


# -- a BERT encoder forward pass (for the function-preservation check) -------------------
def _ln(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + 1e-12) * w + b


def gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1 + np.tanh(0.7978845608 * (x + 0.044715 * x ** 3)))


def bert_forward(w: Weights, ids: np.ndarray) -> np.ndarray:
    x = w["embeddings.word_embeddings.weight"][ids] + w[
        "embeddings.position_embeddings.weight"][: len(ids)] + w[
        "embeddings.token_type_embeddings.weight"][0]
    x = _ln(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
    for i in range(layer_count(w)):
        p = f"encoder.layer.{i}."

        def lin(name: str, h: np.ndarray, p: str = p) -> np.ndarray:
            return h @ w[p + name + ".weight"].T + w[p + name + ".bias"]
        q, k, v = (lin(f"attention.self.{n}", x) for n in ("query", "key", "value"))
        hd = q.shape[1] // HEADS
        split = [a.reshape(len(ids), HEADS, hd).transpose(1, 0, 2) for a in (q, k, v)]
        att = split[0] @ split[1].transpose(0, 2, 1) / math.sqrt(hd)
        att = np.exp(att - att.max(-1, keepdims=True))
        att /= att.sum(-1, keepdims=True)
        ctx = (att @ split[2]).transpose(1, 0, 2).reshape(len(ids), -1)
        x = _ln(x + lin("attention.output.dense", ctx), w[p + "attention.output.LayerNorm.weight"],
                w[p + "attention.output.LayerNorm.bias"])
        h = gelu(lin("intermediate.dense", x))
        x = _ln(x + lin("output.dense", h), w[p + "output.LayerNorm.weight"],
                w[p + "output.LayerNorm.bias"])
    return x


def layer_count(w: Weights) -> int:
    return 1 + max(int(m.group(1)) for k in w if (m := LAYER.match(k)))


# -- variants ---------------------------------------------------------------------------
def floats(w: Weights) -> Weights:
    return {k: v for k, v in w.items() if v.dtype.kind == "f"}


def noise(w: Weights, scale: float, seed: int) -> Weights:
    rng = np.random.default_rng(seed)
    return {k: (v + rng.standard_normal(v.shape).astype(np.float32) * scale * v.std()
                if v.ndim == 2 else v) for k, v in w.items()}


def prune(w: Weights, fraction: float) -> Weights:
    out = {}
    for k, v in w.items():
        if v.ndim == 2 and "embeddings" not in k:
            cut = np.quantile(np.abs(v), fraction)
            v = np.where(np.abs(v) < cut, 0, v).astype(np.float32)
        out[k] = v
    return out


def permute(w: Weights, seed: int) -> Weights:
    """Permute residual coordinates, heads, dims within heads and MLP units consistently."""
    rng = np.random.default_rng(seed)
    d = w["embeddings.word_embeddings.weight"].shape[1]
    res = rng.permutation(d)
    out = dict(w)
    for k, v in w.items():
        if k.startswith("embeddings.") and v.ndim == 2:
            out[k] = v[:, res]
        elif "LayerNorm" in k:
            out[k] = v[res]
    out["pooler.dense.weight"] = w["pooler.dense.weight"][res][:, res]
    out["pooler.dense.bias"] = w["pooler.dense.bias"][res]
    for i in range(layer_count(w)):
        p = f"encoder.layer.{i}."
        hd = d // HEADS
        heads = rng.permutation(HEADS)
        qk = np.concatenate([h * hd + rng_perm for h, rng_perm in
                             zip(heads, [rng.permutation(hd)] * HEADS)])
        vo = np.concatenate([h * hd + rng.permutation(hd) for h in heads])
        for name, idx in (("query", qk), ("key", qk), ("value", vo)):
            out[p + f"attention.self.{name}.weight"] = w[p + f"attention.self.{name}.weight"][idx][:, res]
            out[p + f"attention.self.{name}.bias"] = w[p + f"attention.self.{name}.bias"][idx]
        out[p + "attention.output.dense.weight"] = w[p + "attention.output.dense.weight"][res][:, vo]
        out[p + "attention.output.dense.bias"] = w[p + "attention.output.dense.bias"][res]
        units = rng.permutation(w[p + "intermediate.dense.weight"].shape[0])
        out[p + "intermediate.dense.weight"] = w[p + "intermediate.dense.weight"][units][:, res]
        out[p + "intermediate.dense.bias"] = w[p + "intermediate.dense.bias"][units]
        out[p + "output.dense.weight"] = w[p + "output.dense.weight"][res][:, units]
        out[p + "output.dense.bias"] = w[p + "output.dense.bias"][res]
    return out


def relayer(w: Weights, plan: list[int | Weights]) -> Weights:
    """Rebuild the stack: an int keeps that base layer, a dict inserts those layer weights."""
    out = {k: v for k, v in w.items() if not LAYER.match(k)}
    for new, source in enumerate(plan):
        if isinstance(source, int):
            items = {k[len(f"encoder.layer.{source}."):]: v for k, v in w.items()
                     if k.startswith(f"encoder.layer.{source}.")}
        else:
            items = source
        out.update({f"encoder.layer.{new}.{k}": v for k, v in items.items()})
    return out


def random_bert(template: Weights, seed: int, layers: int | None = None) -> Weights:
    """BERT's own init recipe (normal 0.02, LayerNorm 1/0, zero biases) with this seed."""
    rng = np.random.default_rng(seed)
    out = {}
    for k, v in template.items():
        m = LAYER.match(k)
        if m and layers is not None and int(m.group(1)) >= layers:
            continue
        if v.dtype.kind != "f":
            out[k] = v
        elif "LayerNorm.weight" in k:
            out[k] = np.ones_like(v)
        elif v.ndim == 1:
            out[k] = np.zeros_like(v)
        else:
            out[k] = (rng.standard_normal(v.shape) * 0.02).astype(np.float32)
    return out


def random_layer(template: Weights, seed: int) -> Weights:
    """One freshly initialised block, named relative to its layer."""
    layer0 = {k: v for k, v in template.items() if k.startswith("encoder.layer.0.")}
    return {k[len("encoder.layer.0."):]: v for k, v in random_bert(layer0, seed).items()}


def train_mlps(w: Weights, teacher: Weights, *, steps: int, lr: float, seed: int,
               tokens: int = 256) -> Weights:
    """Adam on every block's MLP: regress the teacher's MLP output plus a new linear task.

    A real objective and real gradients (hand-written backprop of a GELU MLP), on
    inputs made of the model's own normalised token embeddings. Attention is left alone.
    """
    rng = np.random.default_rng(seed)
    out = dict(w)
    emb = w["embeddings.word_embeddings.weight"]
    for i in range(layer_count(w)):
        p = f"encoder.layer.{i}."
        x = emb[rng.integers(1000, emb.shape[0], tokens)]
        x = (x - x.mean(1, keepdims=True)) / (x.std(1, keepdims=True) + 1e-6)
        tw = {k: teacher[p + k] for k in ("intermediate.dense.weight", "intermediate.dense.bias",
                                          "output.dense.weight", "output.dense.bias")}
        task = rng.standard_normal((x.shape[1], x.shape[1])).astype(np.float32) * 0.05
        target = gelu(x @ tw["intermediate.dense.weight"].T + tw["intermediate.dense.bias"]) @ \
            tw["output.dense.weight"].T + tw["output.dense.bias"] + x @ task
        params = [out[p + "intermediate.dense.weight"].copy(), out[p + "intermediate.dense.bias"].copy(),
                  out[p + "output.dense.weight"].copy(), out[p + "output.dense.bias"].copy()]
        m = [np.zeros_like(a) for a in params]
        s = [np.zeros_like(a) for a in params]
        for step in range(1, steps + 1):
            w1, b1, w2, b2 = params
            h = x @ w1.T + b1
            t = np.tanh(0.7978845608 * (h + 0.044715 * h ** 3))
            a = 0.5 * h * (1 + t)
            y = a @ w2.T + b2
            dy = 2 * (y - target) / y.size
            da = dy @ w2
            dgelu = 0.5 * (1 + t) + 0.5 * h * (1 - t ** 2) * 0.7978845608 * (1 + 3 * 0.044715 * h ** 2)
            dh = da * dgelu
            grads = [dh.T @ x, dh.sum(0), dy.T @ a, dy.sum(0)]
            for j, g in enumerate(grads):
                m[j] = 0.9 * m[j] + 0.1 * g
                s[j] = 0.999 * s[j] + 0.001 * g * g
                mh, sh = m[j] / (1 - 0.9 ** step), s[j] / (1 - 0.999 ** step)
                params[j] = (params[j] - lr * mh / (np.sqrt(sh) + 1e-8)).astype(np.float32)
        for k, value in zip(("intermediate.dense.weight", "intermediate.dense.bias",
                             "output.dense.weight", "output.dense.bias"), params):
            out[p + k] = value
    return out


def low_rank_attention(w: Weights, rank: int, scale: float, seed: int) -> Weights:
    """Simulated attention fine-tune: W + U V^T with ||UV^T|| = scale * ||W|| (documented)."""
    rng = np.random.default_rng(seed)
    out = dict(w)
    for k, v in w.items():
        if ".attention." in k and v.ndim == 2:
            u = rng.standard_normal((v.shape[0], rank)).astype(np.float32)
            vt = rng.standard_normal((rank, v.shape[1])).astype(np.float32)
            delta = u @ vt
            out[k] = v + delta * (scale * np.linalg.norm(v) / np.linalg.norm(delta))
    return out


def relative_change(a: Weights, b: Weights, key_part: str = "intermediate.dense.weight") -> float:
    keys = [k for k in a if key_part in k and k in b]
    num = sum(float(np.linalg.norm(b[k] - a[k]) ** 2) for k in keys)
    den = sum(float(np.linalg.norm(a[k]) ** 2) for k in keys)
    return math.sqrt(num / den)
