"""Pick a reader by content (magic bytes and structure), never by file name."""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path

from seawall.models.tensors import ModelError, WeightFile, map_file

DETECTOR_KINDS = {"gguf": "gguf", "npy": "npy", "torch-legacy": "pytorch",
                  "safetensors": "safetensors", "onnx": "onnx"}
"""The ``weights`` detector's format names that a reader here indexes tensor by tensor."""


def sniff(path: Path) -> str | None:
    """The format of ``path`` from its content: safetensors, gguf, onnx, npy, npz, pytorch.

    The magic-byte rules are the ``weights`` detector's (one definition, so ``scan`` and
    ``model`` agree on what a file is); zips are told apart by their member names.
    """
    from seawall.artifacts.base import Content
    from seawall.detectors.base import FileView
    from seawall.detectors.weights import _sniff

    data = map_file(path)
    try:
        view = FileView(path=str(path), inner=path.name, content=Content(data), size=len(data))
        kind = DETECTOR_KINDS.get(_sniff(view) or "")
        is_zip = bytes(data[:4]) == b"PK\x03\x04"
    finally:
        if hasattr(data, "close"):
            data.close()
    if kind is not None or not is_zip:
        return kind
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
