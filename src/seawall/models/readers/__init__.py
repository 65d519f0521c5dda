"""Pick a reader by content (magic bytes and structure), never by file name."""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path

from seawall.models.tensors import ModelError, WeightFile

TORCH_MAGIC = b"\x8a\x0a" + (0x1950A86A20F9469CFC6C).to_bytes(10, "little")


def sniff(path: Path) -> str | None:
    """The format of ``path`` from its first bytes: safetensors, gguf, onnx, npy, npz, pytorch."""
    with open(path, "rb") as fh:
        head = fh.read(64)
    if head.startswith(b"GGUF"):
        return "gguf"
    if head.startswith(b"\x93NUMPY"):
        return "npy"
    if head[:1] == b"\x80" and len(head) > 2 and 2 <= head[1] <= 5 and TORCH_MAGIC in head[:32]:
        return "pytorch"
    if (len(head) > 9 and head[8:9] == b"{"
            and 2 <= struct.unpack_from("<Q", head)[0] <= 100 * 1024 * 1024):
        return "safetensors"
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
        except (zipfile.BadZipFile, OSError):
            return None
        if any(n == "data.pkl" or n.endswith("/data.pkl") for n in names):
            return "pytorch"
        if names and all(n.endswith(".npy") for n in names):
            return "npz"
        return None
    if len(head) > 2 and head[0] == 0x08 and 1 <= head[1] <= 0x20:
        return "onnx"
    return None


def open_weights(path: Path | str) -> WeightFile:
    """Index a model file; raises ``ModelError`` naming the file when it cannot."""
    path = Path(path)
    try:
        kind = sniff(path)
    except OSError as exc:
        raise ModelError(f"{path}: {exc.strerror or exc}") from None
    if kind is None:
        raise ModelError(f"{path}: not a model format seawall reads (safetensors, GGUF, "
                         "PyTorch, ONNX, NumPy)")
    try:
        if kind == "safetensors":
            from seawall.models.readers.safetensors import SafetensorsFile
            return SafetensorsFile(path)
        if kind == "gguf":
            from seawall.models.readers.gguf import GGUFFile
            return GGUFFile(path)
        if kind == "onnx":
            from seawall.models.readers.onnx import ONNXFile
            return ONNXFile(path)
        if kind in ("npy", "npz"):
            from seawall.models.readers.numpy import NumpyFile
            return NumpyFile(path)
        from seawall.models.readers.torch import TorchFile
        return TorchFile(path)
    except (OSError, zipfile.BadZipFile, struct.error, MemoryError) as exc:
        raise ModelError(f"{path}: unreadable {kind} file ({exc})") from None
