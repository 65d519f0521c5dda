"""NumPy ``.npy`` and ``.npz``: headers parsed with numpy's literal parser, never a pickle."""

from __future__ import annotations

import math
import zipfile
from pathlib import Path

import numpy as np

from seawall.models.tensors import ModelError, TensorInfo, WeightFile, map_file

KINDS = {"f": "F", "i": "I", "u": "U", "b": "BOOL"}


def _dtype_name(dtype: np.dtype) -> str:
    if dtype.kind == "b":
        return "BOOL"
    if dtype.kind not in KINDS:
        raise ModelError(f"arrays of dtype {dtype} are not weights (object arrays hold pickles)")
    return f"{KINDS[dtype.kind]}{dtype.itemsize * 8}"


class NumpyFile(WeightFile):
    format = "npy"

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.data = map_file(path)
        self.archive: zipfile.ZipFile | None = None
        self.fortran = False
        if bytes(self.data[:6]) == b"\x93NUMPY":
            self._index_npy()
        else:
            self.format = "npz"
            try:
                self.archive = zipfile.ZipFile(path)
            except zipfile.BadZipFile as exc:
                raise ModelError(f"{path}: not a .npy or .npz file ({exc})") from None
            for order, member in enumerate(self.archive.infolist()):
                if member.filename.endswith(".npy"):
                    with self.archive.open(member) as fh:
                        shape, _fortran, dtype = _header(fh, path)
                        # np.load allocates what the header claims before reading.
                        if fh.tell() + math.prod(shape) * dtype.itemsize > member.file_size:
                            raise ModelError(f"{path}: {member.filename} claims shape {shape}, "
                                             "more than it holds")
                    self.tensors.append(TensorInfo(member.filename[:-4], shape,
                                                   _dtype_name(dtype), order))

    def _index_npy(self) -> None:
        import io

        fh = io.BytesIO(bytes(self.data[:65_600]))
        shape, self.fortran, dtype = _header(fh, self.path)
        self.offset = fh.tell()
        self.np_dtype = dtype
        if self.offset + math.prod(shape) * dtype.itemsize > len(self.data):
            raise ModelError(f"{self.path}: array of shape {shape} runs past the end of the file")
        self.tensors.append(TensorInfo(self.path.stem, shape, _dtype_name(dtype), 0))

    def load(self, info: TensorInfo) -> np.ndarray:
        if self.archive is None:
            arr = np.frombuffer(self.data, dtype=self.np_dtype, count=info.numel,
                                offset=self.offset)
            if self.fortran:
                return arr.reshape(info.shape[::-1]).T.astype(np.float32)
            return arr.reshape(info.shape).astype(np.float32)
        with self.archive.open(info.name + ".npy") as fh:
            return np.load(fh, allow_pickle=False).astype(np.float32)

    def close(self) -> None:
        if self.archive is not None:
            self.archive.close()
        if hasattr(self.data, "close"):
            self.data.close()


def _header(fh, path: Path) -> tuple[tuple[int, ...], bool, np.dtype]:  # type: ignore[no-untyped-def]
    from numpy.lib import format as npformat

    try:
        version = npformat.read_magic(fh)
        read = npformat.read_array_header_1_0 if version == (1, 0) else (
            npformat.read_array_header_2_0)
        shape, fortran, dtype = read(fh)  # parsed with ast.literal_eval: never a pickle
    except (ValueError, SyntaxError) as exc:
        raise ModelError(f"{path}: bad .npy header ({exc})") from None
    if dtype.hasobject:
        raise ModelError(f"{path}: object arrays hold pickles and are never loaded")
    return tuple(int(d) for d in shape), bool(fortran), dtype
