"""GGUF (llama.cpp): parsed and dequantised with the ``gguf`` package, one tensor at a time.

``gguf`` is llama.cpp's own Python reader: it memory-maps the file and dequantises
Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 and the K-quants in numpy. GGUF lists a tensor's
dimensions innermost first; its numpy view is ``(out, in)`` for linear weights, which is
already the canonical layout.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from seawall.models.tensors import ModelError, TensorInfo, WeightFile


def _gguf():  # type: ignore[no-untyped-def]
    try:
        import gguf
    except ImportError:
        raise ModelError("reading GGUF needs the gguf package: install 'seawall[models]'") from None
    return gguf


class GGUFFile(WeightFile):
    format = "gguf"

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        gguf = _gguf()
        try:
            self.reader = gguf.GGUFReader(path, "r")
        except Exception as exc:  # noqa: BLE001 - any parse failure is an unreadable file
            raise ModelError(f"{path}: unreadable GGUF ({type(exc).__name__}: {exc})") from None
        arch = self.reader.fields.get("general.architecture")
        if arch is not None:
            try:
                self.metadata["architecture"] = bytes(arch.parts[arch.data[0]]).decode()
            except (IndexError, UnicodeDecodeError):
                pass
        self.raw = {}
        for order, tensor in enumerate(self.reader.tensors):
            qtype = gguf.GGMLQuantizationType(tensor.tensor_type)
            shape = tuple(int(d) for d in reversed(tensor.shape.tolist()))
            self.tensors.append(TensorInfo(tensor.name, shape, qtype.name, order))
            self.raw[tensor.name] = tensor

    def load(self, info: TensorInfo) -> np.ndarray:
        gguf = _gguf()
        tensor = self.raw[info.name]
        try:
            values = gguf.quants.dequantize(np.asarray(tensor.data), tensor.tensor_type)
        except (NotImplementedError, ValueError) as exc:
            raise ModelError(f"{self.path}: cannot dequantise {info.name} ({exc})") from None
        return np.asarray(values, dtype=np.float32).reshape(info.shape)

    def close(self) -> None:
        mm = getattr(self.reader, "data", None)
        mmap_obj = getattr(mm, "_mmap", None)
        if mmap_obj is not None:
            try:
                mmap_obj.close()
            except (BufferError, ValueError):
                pass
