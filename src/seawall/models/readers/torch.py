"""PyTorch checkpoints, zip (``torch.save`` since 1.6) or legacy, without unpickling.

The state dict's pickle is interpreted by ``seawall.models.pickles.torch_state``,
which understands only tensor rebuilds, ``OrderedDict`` and storage records and refuses
anything else (``UnsafePickle``). Tensor bytes come from the storages: zip members
``<archive>/data/<key>`` or, in the legacy format, the records after the five pickles.
"""

from __future__ import annotations

import io
import math
import struct
import zipfile
from pathlib import Path

import numpy as np

from seawall.models.pickles import MAX_BYTES, PickleError, TensorRef, tensors_in, torch_state
from seawall.models.tensors import ITEM_SIZES, PLAIN_TYPES, ModelError, TensorInfo, WeightFile
from seawall.models.tensors import map_file, to_float32


class TorchFile(WeightFile):
    format = "pytorch"

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.archive: zipfile.ZipFile | None = None
        self.storage_at: dict[str, int] = {}
        self.refs: dict[str, TensorRef] = {}
        self._cache: tuple[str, bytes] | None = None
        if zipfile.is_zipfile(path):
            state = self._open_zip(path)
        else:
            state = self._open_legacy(path)
        try:
            found = tensors_in(state)
        except PickleError as exc:
            raise ModelError(f"{path}: {exc}") from None
        for order, (name, ref) in enumerate(found):
            self.refs[name] = ref
            self.tensors.append(TensorInfo(name, ref.shape, ref.dtype, order))

    def _open_zip(self, path: Path) -> object:
        self.archive = zipfile.ZipFile(path)
        names = [n for n in self.archive.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
        if not names:
            raise ModelError(f"{path}: a zip without data.pkl is not a PyTorch checkpoint")
        self.prefix = names[0][: -len("data.pkl")]
        info = self.archive.getinfo(names[0])
        if info.file_size > MAX_BYTES:
            raise ModelError(f"{path}: data.pkl is larger than the walker's limit")
        return self._interpret(self.archive.read(info))

    def _open_legacy(self, path: Path) -> object:
        self.data = map_file(path)
        stream = io.BytesIO(bytes(self.data[:MAX_BYTES]))
        try:
            for _ in range(3):  # magic number, protocol version, system info
                torch_state(b"", stream)
            state = torch_state(b"", stream)
            keys = torch_state(b"", stream)
            refs = tensors_in(state)
        except PickleError as exc:
            raise ModelError(f"{path}: {exc}") from None
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise ModelError(f"{path}: legacy checkpoint without a storage key list")
        sizes = {r.storage_key: ITEM_SIZES[r.dtype] for _, r in refs}
        pos = stream.tell()
        for key in keys:
            if pos + 8 > len(self.data):
                raise ModelError(f"{path}: storage {key} runs past the end of the file")
            (numel,) = struct.unpack_from("<Q", self.data, pos)
            self.storage_at[key] = pos + 8
            pos += 8 + numel * sizes.get(key, 0)
            if key not in sizes:
                break  # a storage no tensor uses: its item size is unknown, stop here
        return state

    def _interpret(self, data: bytes) -> object:
        try:
            return torch_state(data)
        except PickleError as exc:
            raise ModelError(f"{self.path}: {exc}") from None

    def _storage(self, ref: TensorRef, nbytes: int) -> bytes | memoryview:
        """The first ``nbytes`` of a storage: never more, whatever the zip header claims."""
        if self.archive is not None:
            if (self._cache is None or self._cache[0] != ref.storage_key
                    or len(self._cache[1]) < nbytes):
                name = f"{self.prefix}data/{ref.storage_key}"
                try:
                    with self.archive.open(name) as member:
                        self._cache = (ref.storage_key, member.read(nbytes))
                except KeyError:
                    raise ModelError(f"{self.path}: storage {name} is missing") from None
            return self._cache[1][:nbytes]
        start = self.storage_at.get(ref.storage_key)
        if start is None:
            raise ModelError(f"{self.path}: storage {ref.storage_key} not found")
        return memoryview(self.data)[start : start + nbytes]

    def load(self, info: TensorInfo) -> np.ndarray:
        ref = self.refs[info.name]
        if ref.dtype not in PLAIN_TYPES and ref.dtype != "BF16":
            raise ModelError(f"{self.path}: unsupported storage type {ref.dtype}")
        item = ITEM_SIZES[ref.dtype]
        count = math.prod(ref.shape)
        # Elements the view spans in its storage. A view claiming more elements than it
        # spans (stride 0, overlapping rows) would make the copy below larger than the
        # file: refused, so memory stays bounded by the bytes actually stored.
        span = ref.offset + sum((d - 1) * s for d, s in zip(ref.shape, ref.stride)) + 1 \
            if count else 0
        if count > max(span - ref.offset, 0) or (0 <= ref.storage_numel < span):
            raise ModelError(f"{self.path}: tensor {info.name} has a layout its storage "
                             "cannot hold (overlapping or out of range)")
        raw = self._storage(ref, span * item)
        if len(raw) < span * item:
            raise ModelError(f"{self.path}: tensor {info.name} reaches past its storage")
        flat = to_float32(raw, ref.dtype, (span,))
        view = np.lib.stride_tricks.as_strided(
            flat[ref.offset:], shape=ref.shape, strides=tuple(s * 4 for s in ref.stride),
            writeable=False)
        return np.array(view, dtype=np.float32)

    def close(self) -> None:
        if self.archive is not None:
            self.archive.close()
        data = getattr(self, "data", None)
        if hasattr(data, "close"):
            data.close()

