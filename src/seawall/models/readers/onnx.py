"""ONNX: initialisers read straight from the protobuf, int8 weights dequantised.

No ``onnx`` import: a bounded protobuf walk (``seawall.protowire``, strict: a message cut
short is an error, never a partial model) indexes the graph's initialisers and nodes. Two
quantisation patterns are followed back to float weights: ``DequantizeLinear(q, scale,
zero_point)`` and ``Mul(Cast(q), scale)`` (what per-channel int8 exporters emit). A weight
consumed as the second input of ``MatMul`` (or of ``Gemm`` without ``transB``) is stored
``(in, out)`` and is transposed to the canonical ``(out, in)``. External data files are
not followed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from seawall.models.tensors import ITEM_SIZES, ModelError, TensorInfo, WeightFile, map_file
from seawall.models.tensors import release, to_float32
from seawall.protowire import WireError, iter_fields, read_varint

MAX_FIELDS = 20_000_000
ONNX_TYPES = {1: "F32", 2: "U8", 3: "I8", 4: "U16", 5: "I16", 6: "I32", 7: "I64", 9: "BOOL",
              10: "F16", 11: "F64", 12: "U32", 13: "U64", 16: "BF16"}


@dataclass
class _Init:
    name: str
    dims: tuple[int, ...]
    dtype: int
    raw: tuple[int, int] | None = None
    packed: dict[int, list[tuple[int, int]]] = field(default_factory=dict)
    external: bool = False


@dataclass
class _Node:
    op: str
    inputs: list[str]
    outputs: list[str]
    ints: dict[str, int]


class ONNXFile(WeightFile):
    format = "onnx"

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.data = map_file(path)
        try:
            graph = self._graph()
            inits, nodes = self._walk_graph(*graph)
        except (WireError, UnicodeDecodeError) as exc:
            raise ModelError(f"{path}: unreadable ONNX protobuf ({exc})") from None
        self.inits = inits
        self._index(inits, nodes)

    # -- protobuf ------------------------------------------------------------------
    def _graph(self) -> tuple[int, int]:
        for number, wire, start, stop in iter_fields(self.data, 0, len(self.data), strict=True):
            if number == 7 and wire == 2:
                return start, stop
            if number == 2 and wire == 2:
                self.metadata["producer"] = bytes(self.data[start:stop][:100]).decode("utf-8")
        raise WireError("no graph")

    def _walk_graph(self, start: int, stop: int) -> tuple[dict[str, _Init], list[_Node]]:
        inits: dict[str, _Init] = {}
        nodes: list[_Node] = []
        for number, wire, s, e in iter_fields(self.data, start, stop, strict=True,
                                              max_fields=MAX_FIELDS):
            if number == 5 and wire == 2:
                init = self._tensor(s, e)
                inits[init.name] = init
            elif number == 1 and wire == 2:
                nodes.append(self._node(s, e))
        return inits, nodes

    def _tensor(self, start: int, stop: int) -> _Init:
        dims: list[int] = []
        init = _Init("", (), 0)
        for number, wire, s, e in iter_fields(self.data, start, stop, strict=True):
            if number == 1:
                if wire == 0:
                    dims.append(s)
                else:
                    pos = s
                    while pos < e:
                        dim, pos = read_varint(self.data, pos, e)
                        dims.append(dim)
            elif number == 2 and wire == 0:
                init.dtype = s
            elif number == 8 and wire == 2:
                init.name = bytes(self.data[s:e]).decode("utf-8")
            elif number == 9 and wire == 2:
                init.raw = (s, e)
            elif number in (4, 5, 7, 10, 11):
                init.packed.setdefault(number, []).append((s, e) if wire == 2 else (-1, s))
            elif number in (13, 14):
                init.external = True
        if len(dims) > 8:
            raise WireError(f"tensor {init.name!r} has {len(dims)} dimensions")
        init.dims = tuple(dims)
        return init

    def _node(self, start: int, stop: int) -> _Node:
        node = _Node("", [], [], {})
        for number, wire, s, e in iter_fields(self.data, start, stop, strict=True):
            if wire != 2:
                continue
            text = bytes(self.data[s:e]).decode("utf-8") if number in (1, 2, 4) else ""
            if number == 1:
                node.inputs.append(text)
            elif number == 2:
                node.outputs.append(text)
            elif number == 4:
                node.op = text
            elif number == 5:
                name, value = "", None
                for an, aw, av, ae in iter_fields(self.data, s, e, strict=True):
                    if an == 1 and aw == 2:
                        name = bytes(self.data[av:ae]).decode("utf-8")
                    elif an == 3 and aw == 0:
                        value = av - (1 << 64) if av >= 1 << 63 else av
                if name and value is not None:
                    node.ints[name] = value
        return node

    # -- which tensors are weights, and how they are laid out ------------------------
    def _index(self, inits: dict[str, _Init], nodes: list[_Node]) -> None:
        producer: dict[str, tuple[_Node, int]] = {}
        for i, node in enumerate(nodes):
            for out in node.outputs:
                producer[out] = (node, i)
        dequant: dict[str, dict[str, Any]] = {}
        hidden: set[str] = set()
        for node in nodes:
            recipe = _dequant_recipe(node, inits, producer)
            if recipe is not None:
                dequant[node.outputs[0]] = recipe
                hidden.update(recipe["hide"])
        transposed: set[str] = set()
        first_use: dict[str, int] = {}
        for i, node in enumerate(nodes):
            for pos, name in enumerate(node.inputs):
                first_use.setdefault(name, i)
                if pos == 1 and (node.op == "MatMul" or (node.op == "Gemm"
                                                         and not node.ints.get("transB", 0))):
                    transposed.add(name)
        order = len(nodes)
        listed: list[TensorInfo] = []
        for name, init in inits.items():
            if name in hidden or not init.dims and init.dtype not in ONNX_TYPES:
                continue
            listed.append(self._info(name, init.dims, ONNX_TYPES.get(init.dtype, f"T{init.dtype}"),
                                     first_use.get(name, order), name in transposed,
                                     {"init": name}))
        for name, recipe in dequant.items():
            q = inits[recipe["q"]]
            listed.append(self._info(name, q.dims, ONNX_TYPES.get(q.dtype, "I8"),
                                     first_use.get(name, order), name in transposed,
                                     {"dequant": recipe, "dequantized": True}))
        listed.sort(key=lambda t: t.order)
        for i, info in enumerate(listed):
            info.order = i
        self.tensors = listed

    @staticmethod
    def _info(name: str, dims: tuple[int, ...], dtype: str, order: int, transposed: bool,
              extra: dict[str, Any]) -> TensorInfo:
        flip = transposed and len(dims) == 2
        shape = (dims[1], dims[0]) if flip else dims
        return TensorInfo(name, tuple(shape), dtype, order, {**extra, "transposed": flip})

    # -- data ----------------------------------------------------------------------
    def _array(self, name: str) -> np.ndarray:
        init = self.inits[name]
        if init.external:
            raise ModelError(f"{self.path}: {name} lives in an external data file (not followed)")
        dtype = ONNX_TYPES.get(init.dtype)
        if dtype is None:
            raise ModelError(f"{self.path}: {name} has an unsupported ONNX type {init.dtype}")
        count = math.prod(init.dims)
        if init.raw is not None:
            start, end = init.raw
            if end - start != ITEM_SIZES[dtype] * count:
                raise ModelError(f"{self.path}: {name} has {end - start} bytes for {count} values")
            with memoryview(self.data)[start:end] as raw:
                values = to_float32(raw, dtype, init.dims)
            release(self.data, start, end)
            return values
        return self._packed(init, dtype, count)

    def _packed(self, init: _Init, dtype: str, count: int) -> np.ndarray:
        if 4 in init.packed:  # float_data
            parts = [bytes(self.data[s:e]) for s, e in init.packed[4] if s >= 0]
            values = np.frombuffer(b"".join(parts), dtype="<f4")
        elif 10 in init.packed:  # double_data
            values = np.frombuffer(b"".join(bytes(self.data[s:e]) for s, e in init.packed[10]
                                            if s >= 0), dtype="<f8")
        else:
            ints: list[int] = []
            for number in (5, 7, 11):
                for s, e in init.packed.get(number, []):
                    if s < 0:
                        ints.append(e)
                        continue
                    pos = s
                    while pos < e and len(ints) <= count:  # never more values than dims say
                        try:
                            value, pos = read_varint(self.data, pos, e)
                        except WireError as exc:
                            raise ModelError(f"{self.path}: {init.name}: unreadable ONNX "
                                             f"protobuf ({exc})") from None
                        ints.append(value)
            arr = np.array(ints, dtype=np.uint64)
            if dtype == "F16":
                values = arr.astype(np.uint16).view(np.float16)
            elif dtype == "BF16":
                values = (arr.astype(np.uint32) << 16).view(np.float32)
            else:
                signed = {"I8": np.int8, "I16": np.int16, "I32": np.int32, "I64": np.int64}
                values = arr.astype(np.int64).astype(signed.get(dtype, np.int64))
        if values.size != count:
            raise ModelError(f"{self.path}: {init.name} has {values.size} values, expected {count}")
        return values.astype(np.float32).reshape(init.dims)

    def load(self, info: TensorInfo) -> np.ndarray:
        recipe = info.extra.get("dequant")
        if recipe is None:
            values = self._array(info.extra["init"])
        else:
            values = self._array(recipe["q"])  # a fresh float32 array: scaled in place
            # In place, so a zero point or scale shaped to broadcast the weight up (a hostile
            # (n, 1) scale on an (n,) weight would make n * n values) is an error, not a copy.
            for key in ("zero", "scale"):
                if recipe.get(key) is None:
                    continue
                other = _axis(self._array(recipe[key]), values.ndim, recipe)
                try:
                    if key == "zero":
                        values -= other
                    else:
                        values *= other
                except ValueError:
                    raise ModelError(f"{self.path}: {info.name}: {key} of shape {other.shape} "
                                     f"does not fit the weight {values.shape}") from None
        if info.extra.get("transposed"):
            values = np.ascontiguousarray(values.T)
        return values

    def close(self) -> None:
        if hasattr(self.data, "close"):
            self.data.close()


def _axis(scale: np.ndarray, ndim: int, recipe: dict[str, Any]) -> np.ndarray:
    """Shape a DequantizeLinear per-axis scale for broadcasting; Mul scales broadcast as is."""
    if recipe["kind"] != "dql" or scale.ndim != 1 or scale.size == 1:
        return scale
    axis = recipe.get("axis", 1) % max(ndim, 1)
    shape = [1] * ndim
    shape[axis] = scale.size
    return scale.reshape(shape)


def _dequant_recipe(node: _Node, inits: dict[str, _Init],
                    producer: dict[str, tuple[_Node, int]]) -> dict[str, Any] | None:
    """Recognise a weight rebuilt from integers: ``DequantizeLinear`` or ``Mul(Cast(q), s)``."""
    ints = (2, 3, 4, 5, 6)
    if node.op == "DequantizeLinear" and len(node.inputs) >= 2:
        q, scale = node.inputs[0], node.inputs[1]
        zero = node.inputs[2] if len(node.inputs) > 2 and node.inputs[2] else None
        if q in inits and scale in inits and inits[q].dtype in ints and (zero is None or zero in inits):
            hide = {q, scale} | ({zero} if zero else set())
            return {"kind": "dql", "q": q, "scale": scale, "zero": zero,
                    "axis": node.ints.get("axis", 1), "hide": sorted(hide)}
    if node.op == "Mul" and len(node.inputs) == 2:
        for a, b in (node.inputs, node.inputs[::-1]):
            made = producer.get(a)
            if made is None or made[0].op != "Cast" or b not in inits:
                continue
            q = made[0].inputs[0] if made[0].inputs else ""
            if q in inits and inits[q].dtype in ints and inits[b].dtype in (1, 10, 11, 16):
                return {"kind": "mul", "q": q, "scale": b, "zero": None, "hide": [q, b]}
    return None
