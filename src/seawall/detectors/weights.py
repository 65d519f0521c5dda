"""``weights``: model weights and checkpoints, recognised by content.

Every format is identified by its magic bytes or structure, never by file name, so a
``model.safetensors`` renamed ``model.bin.txt`` is still caught. The one exception is
a TensorFlow SavedModel, which is a folder layout (``saved_model.pb`` beside
``variables/``) rather than a file format.

Nothing is ever deserialised: pickles are recognised by a byte pattern and walked
opcode by opcode at most (``pickletools.genops`` never imports or calls anything), and
no ML framework is imported. The walk (``seawall.models.pickles``) lists every global a
pickle names; those outside a data-only allowlist are ``weights.unsafe-pickle`` findings. Headers are read by slicing only the bytes they occupy, so
a multi-gigabyte memory-mapped checkpoint costs a few pages.

Severity follows size, because a 2 GB checkpoint is a leak and a 3 KB array in a test
folder is not: see ``TIERS_HELP``.
"""

from __future__ import annotations

import io
import json
import math
import re
import struct
import zipfile
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeGuard

from seawall.artifacts.base import SEP
from seawall.detectors.base import Detector, FileView, Rule
from seawall.findings import Finding, Severity
from seawall.models.pickles import ScanResult, looks_like_pickle, scan_pickle
from seawall.protowire import Field, ShortRead, iter_fields, read_varint

MiB = 1024 * 1024
HIGH_BYTES = 50 * MiB
MEDIUM_BYTES = 1 * MiB

TIERS_HELP = (
    " Severity follows size: at least 50 MiB is high, at least 1 MiB medium, smaller "
    "files low (a tiny model is usually a test fixture)."
)
GENERIC_TIERS_HELP = (
    " This format is a generic array container, not only a model format, so it is "
    "stepped down a tier below 50 MiB: at least 50 MiB is high, at least 1 MiB low, "
    "smaller files info (test data such as the arrays in numpy's own wheel)."
)
FIX = "Exclude the weights from the release and publish them through a model registry."
FIX_HELP = (
    " Weights belong in a model registry or a separate, access-controlled download, not "
    "in a release artifact: exclude the file (`.npmignore`, `files`, `MANIFEST.in`, "
    "`.dockerignore`) and, if it was already published, treat the weights as public."
)


def _rule(rule_id: str, name: str, summary: str, detail: str, *, fix: str = FIX,
          generic: bool = False, match: str = "", no_match: str = "") -> Rule:
    tiers = GENERIC_TIERS_HELP if generic else TIERS_HELP
    return Rule(
        rule_id, name, Severity.MEDIUM if generic else Severity.HIGH, summary,
        help=detail + tiers + FIX_HELP,
        fix=fix,
        examples={"match": [match], "no_match": [no_match]},
    )


RULES = (
    _rule("weights.safetensors", "safetensors weights",
          "A safetensors file: a JSON tensor index followed by raw tensor data.",
          "Recognised by its u64 header length followed by a JSON object whose entries carry "
          "`dtype`, `shape` and `data_offsets`. The finding counts tensors and parameters "
          "and says whether the file is truncated.",
          fix="Drop the weights from the release (e.g. exclude *.safetensors) and publish them "
              "through your model registry if they are meant to be public.",
          match="model.safetensors renamed model.bin.txt", no_match="ELF binary"),
    _rule("weights.gguf", "GGUF model",
          "A GGUF file (llama.cpp, ollama, whisper.cpp): a quantised model ready to run.",
          "Recognised by the `GGUF` magic and a version from 1 to 3; the header gives the "
          "tensor count, the architecture and, where it can be walked cheaply, parameters "
          "and quantisation types.",
          fix="Exclude the .gguf model from the release and publish it through your model registry "
              "(or a separate download) if it is meant to be public.",
          match="GGUF v3 file", no_match="text starting with GGUF"),
    _rule("weights.ggml", "Legacy GGML model",
          "A pre-GGUF llama.cpp / whisper.cpp model (`ggml`, `ggmf` or `ggjt` magic).",
          "Recognised by the little-endian magic llama.cpp wrote before GGUF and a "
          "plausible version or vocabulary size.",
          fix="Exclude the GGML model file from the release and publish it through your model "
              "registry if it is meant to be public.",
          match="ggjt v3 file", no_match="random bytes"),
    _rule("weights.pytorch", "PyTorch checkpoint",
          "A `torch.save` checkpoint (zip or legacy pickle) or a TorchScript archive.",
          "Zip checkpoints are recognised by their single-folder layout (`<name>/data.pkl` "
          "with `<name>/version` or `.format_version`); tensors are counted as storage "
          "records `<name>/data/*`. TorchScript archives also hold `code/` and "
          "`constants.pkl`. Legacy checkpoints are a pickle stream starting with torch's "
          "magic number. Loading either with `torch.load` runs pickle code: never load "
          "one you did not make.",
          fix="Exclude the checkpoint (*.pt, *.pth, *.bin) from the release and publish it through "
              "your model registry, as safetensors, if meant to be public.",
          match="archive/data.pkl zip", no_match="wheel with data.pkl in a package"),
    _rule("weights.onnx", "ONNX model",
          "An ONNX ModelProto: a graph with its initialiser tensors.",
          "Recognised by walking the protobuf's top-level fields: `ir_version` first, a "
          "`graph`, an `opset_import`, and nothing that is not a ModelProto field, ending "
          "exactly at the end of the file. Initialisers are counted from the graph.",
          fix="Exclude the .onnx model from the release and publish it through your model registry "
              "if it is meant to be public.",
          match="model.onnx from torch.onnx.export", no_match="ELF, PE or Mach-O binary"),
    _rule("weights.tflite", "TensorFlow Lite model",
          "A TFLite flatbuffer (`TFL3` identifier), ready to run on device.",
          "Recognised by the flatbuffer identifier and a root table of schema version 3; "
          "tensors are counted across subgraphs.",
          fix="Exclude the .tflite model from the release unless the app must bundle it; otherwise "
              "publish it through your model registry.",
          match="model.tflite", no_match="random bytes"),
    _rule("weights.savedmodel", "TensorFlow SavedModel",
          "A TensorFlow SavedModel folder: `saved_model.pb` and its `variables/` shards.",
          "A SavedModel is a folder layout, so it is recognised by `saved_model.pb` (checked "
          "to be a protobuf) and reported once per folder, with the size of its variables.",
          fix="Exclude the SavedModel folder (saved_model.pb and variables/) from the release and "
              "publish it through your model registry if public.",
          match="export/saved_model.pb + variables/", no_match="a lone variables.index"),
    _rule("weights.keras", "Keras model archive",
          "A Keras v3 `.keras` zip: `config.json` plus `model.weights.h5`.",
          "Recognised by the archive's layout, whatever the file is called.",
          fix="Exclude the .keras archive from the release and publish the model through your "
              "model registry if it is meant to be public.",
          match="model.keras", no_match="zip with config.json only"),
    _rule("weights.hdf5", "HDF5 file (Keras weights)",
          "An HDF5 file; Keras `.h5` models and weights are HDF5.",
          "Recognised by the HDF5 signature at offset 0, 512, 1024 or 2048. When the root "
          "attributes name Keras (`keras_version`, `model_config`, `layer_names`) it is "
          "reported as Keras weights and takes model tiers; otherwise it is generic data.",
          fix="Exclude the .h5 file from the release unless the package needs it at runtime; "
              "publish model weights through your model registry.",
          generic=True, match="model.h5 from Keras", no_match="PNG file"),
    _rule("weights.numpy", "NumPy arrays",
          "A NumPy `.npy` array or `.npz` archive of arrays.",
          "Recognised by the `\\x93NUMPY` magic (or a zip whose members are all `.npy`); "
          "the header gives shape and dtype, hence parameters. Object arrays hold pickles.",
          fix="Exclude the .npy/.npz arrays from the release unless the package needs them; "
              "publish weights or embeddings through your model registry.",
          generic=True, match="embeddings.npy", no_match="numpy test data (info)"),
)

UNSAFE_PICKLE = Rule(
    "weights.unsafe-pickle", "Pickle that runs code when loaded", Severity.CRITICAL,
    "A pickle (a PyTorch checkpoint, a .pkl) that imports a callable outside the data-only "
    "allowlist, such as `os.system`, `builtins.exec` or `subprocess.Popen`.",
    help="Loading a pickle (`pickle.load`, `torch.load` without `weights_only=True`, "
         "`joblib.load`) imports every global it names and calls what it is told to: a "
         "checkpoint naming `os.system` runs a shell command on the machine that loads it. "
         "Seawall walks the opcodes symbolically (never unpickling) and lists every global "
         "outside an allowlist of tensor rebuilds, storages, `OrderedDict` and NumPy array "
         "reconstruction. Globals that execute code, spawn processes or touch files and the "
         "network (`os`, `posix`, `subprocess`, `builtins.exec/eval/getattr`, `runpy`, "
         "`socket`...) are critical; other unknown globals (a training script's classes) are "
         "medium: they run that class's code on load.",
    fix="Do not publish it; re-save the weights as safetensors, and treat any machine that "
        "loaded this file as compromised.",
    examples={"match": ["checkpoint whose data.pkl calls posix.system"],
              "no_match": ["torch.save state dict of tensors (only _rebuild_tensor_v2)"]},
)
RULES = RULES + (UNSAFE_PICKLE,)
PICKLE_HEAD = re.compile(rb"\A(?:\x80[\x02-\x05]|c[A-Za-z_][\w.]*\n[A-Za-z_][\w.]*\n|\(c[A-Za-z_])")
"""A pickle's first bytes: a protocol 2-5 header, or a protocol 0/1 GLOBAL (the classic payload)."""

GENERIC_FORMATS = frozenset({"npy", "npz", "hdf5"})

# -- magics ---------------------------------------------------------------------------
GGUF_MAGIC = b"GGUF"
GGML_MAGICS = {b"lmgg": "ggml", b"fmgg": "ggmf", b"tjgg": "ggjt"}
NPY_MAGIC = b"\x93NUMPY"
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
HDF5_OFFSETS = (0, 512, 1024, 2048)
TORCH_MAGIC = b"\x8a\x0a" + (0x1950A86A20F9469CFC6C).to_bytes(10, "little")
"""torch's legacy magic number as pickled by LONG1; ``torch.save`` writes it first."""
SAFETENSORS_MAX_HEADER = 100 * MiB  # the reference implementation's own limit
SAFETENSORS_KEYS = (b'"dtype"', b'"data_offsets"', b'"__metadata__"')
ONNX_MODEL_TAGS = frozenset({0x12, 0x1A, 0x22, 0x28, 0x32, 0x3A, 0x42})
KERAS_MARKS = (b"keras_version", b"model_config", b"layer_names", b"model_weights")
SAVEDMODEL_NAMES = ("saved_model.pb", "saved_model.pbtxt")

# -- limits on header walks: a hostile header costs at most this much work --------------
MAX_LISTED_ARRAYS = 256
MAX_GGUF_STEPS = 4_000_000
MAX_PROTO_FIELDS = 500_000
MAX_PICKLE_BYTES = 16 * MiB
PICKLE_PROBE = 4096
"""Bytes decoded to tell a pickle with an unusual first opcode from text."""
MAX_PICKLE_OPS = 2_000_000

GGML_TYPES = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 6: "Q5_0", 7: "Q5_1", 8: "Q8_0", 9: "Q8_1",
    10: "Q2_K", 11: "Q3_K", 12: "Q4_K", 13: "Q5_K", 14: "Q6_K", 15: "Q8_K", 16: "IQ2_XXS",
    17: "IQ2_XS", 18: "IQ3_XXS", 19: "IQ1_S", 20: "IQ4_NL", 21: "IQ3_S", 22: "IQ2_S",
    23: "IQ4_XS", 24: "I8", 25: "I16", 26: "I32", 27: "I64", 28: "F64", 29: "IQ1_M",
    30: "BF16", 34: "TQ1_0", 35: "TQ2_0", 39: "MXFP4",
}
GGUF_SCALARS = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
GGUF_STRING, GGUF_ARRAY = 8, 9
ONNX_TYPES = {
    1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64",
    8: "string", 9: "bool", 10: "float16", 11: "float64", 12: "uint32", 13: "uint64",
    14: "complex64", 15: "complex128", 16: "bfloat16", 17: "float8e4m3fn",
    18: "float8e4m3fnuz", 19: "float8e5m2", 20: "float8e5m2fnuz", 21: "uint4", 22: "int4",
    23: "float4e2m1",
}
NPY_KINDS = {"f": "float", "i": "int", "u": "uint", "c": "complex", "b": "bool", "O": "object",
             "U": "str", "S": "bytes", "V": "void", "M": "datetime64", "m": "timedelta64"}


class _Short(Exception):
    """A header runs past the bytes available."""


@dataclass
class Found:
    """What one format reader learnt about a file."""

    rule: str
    format: str
    evidence: dict[str, Any] = field(default_factory=dict)
    generic: bool = False
    pickles: list[tuple[str, ScanResult]] = field(default_factory=list)
    """Pickles walked inside the file (member name, what they reference)."""


# -- the detector ----------------------------------------------------------------------
class WeightsDetector(Detector):
    name = "weights"
    rules = RULES
    merges = True

    def __init__(self, settings=None) -> None:  # type: ignore[no-untyped-def]
        super().__init__(settings)
        self.claimed: set[str] = set()
        """Paths of containers already reported whole: their members are parts, not models."""
        self.savedmodels: dict[str, dict[str, Any]] = {}

    def wants(self, view: FileView) -> bool:
        if view.in_sourcemap:
            return False
        if self._inside_claimed(view):
            if view.container:
                self.claimed.add(view.path)
            return False
        if view.container == "zip":
            return True
        name = view.name
        if name in SAVEDMODEL_NAMES or _is_variables_file(view.inner):
            return True
        return _sniff(view) is not None

    def scan(self, view: FileView) -> Iterable[Finding]:
        if view.name in SAVEDMODEL_NAMES or _is_variables_file(view.inner):
            self._note_savedmodel(view)
            return
        found = _zip_model(view) if view.container == "zip" else _read(view)
        if found is None:
            return
        if view.container:
            self._claim(view)
        if found.rule != UNSAFE_PICKLE.id:
            yield self._report(view.path, view.size, found)
        for member, result in found.pickles:
            if result.unsafe:
                yield self._unsafe(view.path, member, result)

    def _unsafe(self, path: str, member: str, result: ScanResult) -> Finding:
        dangerous = result.dangerous
        names = dangerous or result.unsafe
        evidence: dict[str, Any] = {"globals": result.unsafe[:20], "dangerous": dangerous[:20]}
        if member:
            evidence["member"] = member
        if not result.complete:
            evidence["walk_stopped"] = result.error
        called = sorted({c.removesuffix(".__setstate__") for c in result.called} & set(names))
        if called:
            evidence["called"] = called[:20]
        where = f" in {member}" if member else ""
        message = (f"pickle{where} references {', '.join(names[:3])}"
                   f"{' and more' if len(names) > 3 else ''}: loading it would run that code")
        return self.finding(UNSAFE_PICKLE.id, path, message, evidence,
                            severity=Severity.CRITICAL if dangerous else Severity.MEDIUM)

    def partial(self) -> tuple[set[str], dict[str, dict[str, Any]]]:
        return self.claimed, self.savedmodels

    def merge(self, partial: tuple[set[str], dict[str, dict[str, Any]]]) -> None:
        claimed, savedmodels = partial
        self.claimed |= claimed
        for prefix, theirs in savedmodels.items():
            mine = self._savedmodel(prefix)
            for key in ("pb_bytes", "variables_bytes", "shards"):
                mine[key] += theirs[key]
            if "pb" in theirs:
                mine.setdefault("pb", theirs["pb"])
            if theirs.get("index"):
                mine["index"] = True

    def finish(self) -> Iterable[Finding]:
        for prefix, seen in sorted(self.savedmodels.items()):
            if "pb" not in seen:
                continue
            total = seen["pb_bytes"] + seen["variables_bytes"]
            evidence = {"bytes": total, "variables_shards": seen["shards"],
                        "variables_bytes": seen["variables_bytes"],
                        "variables_index": seen.get("index", False)}
            path = _folder(prefix) or seen["pb"]
            yield self._report(path, total, Found("weights.savedmodel", "savedmodel", evidence))

    # -- bookkeeping -----------------------------------------------------------------
    def _inside_claimed(self, view: FileView) -> bool:
        if not self.claimed or not view.chain:
            return False
        if view.path == view.inner:  # a member of the target itself (a scanned model.pt)
            return "" in self.claimed
        return view.path[: -len(view.inner) - len(SEP)] in self.claimed

    def _claim(self, view: FileView) -> None:
        self.claimed.add(view.path)
        if not view.chain and view.path == view.inner:
            # A target scanned as a single file names its members without a prefix.
            # In a folder target, members of top-level files are always prefixed, so
            # this entry can only ever match the target's own members.
            self.claimed.add("")

    def _note_savedmodel(self, view: FileView) -> None:
        if view.name in SAVEDMODEL_NAMES:
            if not _looks_like_savedmodel(view):
                return
            seen = self._savedmodel(view.path[: -len(view.name)])
            seen["pb"] = view.path
            seen["pb_bytes"] = view.size
            return
        seen = self._savedmodel(view.path[: -len("variables/" + view.name)])
        if view.name == "variables.index":
            seen["index"] = True
        else:
            seen["shards"] += 1
            seen["variables_bytes"] += view.size

    def _savedmodel(self, prefix: str) -> dict[str, Any]:
        return self.savedmodels.setdefault(
            prefix, {"pb_bytes": 0, "variables_bytes": 0, "shards": 0})

    def _report(self, path: str, size: int, found: Found) -> Finding:
        evidence = {"format": found.format, **found.evidence}
        evidence.setdefault("bytes", size)
        severity = _tier(size, found.generic)
        return self.finding(found.rule, path, _message(found.format, evidence, size), evidence,
                            severity=severity)


# -- dispatch ---------------------------------------------------------------------------
def _sniff(view: FileView) -> str | None:
    """Which reader a file's first bytes call for; O(1), a few slices of the head."""
    data = view.content.data
    head = bytes(data[:16])
    if len(head) < 8:
        return None
    if head.startswith(GGUF_MAGIC):
        return "gguf"
    if head[:4] in GGML_MAGICS:
        return "ggml"
    if head.startswith(NPY_MAGIC):
        return "npy"
    if head[4:8] == b"TFL3":
        return "tflite"
    if head[:1] == b"\x80" and 2 <= head[1] <= 5 and (
        head[2:14] == TORCH_MAGIC or (head[2:3] == b"\x95" and bytes(data[11:23]) == TORCH_MAGIC)
    ):
        return "torch-legacy"
    if PICKLE_HEAD.match(bytes(data[:200])) and _ends_like_pickle(view):
        return "pickle"
    if (len(head) > 9 and head[8:9] == b"{" and head[9:10] in b'" \t\r\n}'
            and 2 <= struct.unpack_from("<Q", head)[0] <= SAFETENSORS_MAX_HEADER):
        return "safetensors"
    if head[0] == 0x08 and 1 <= head[1] <= 0x20 and head[2] in ONNX_MODEL_TAGS:
        return "onnx"
    if any(bytes(data[o : o + 8]) == HDF5_MAGIC for o in HDF5_OFFSETS if o < view.size):
        return "hdf5"
    if _ends_like_pickle(view) and looks_like_pickle(bytes(data[:PICKLE_PROBE])):
        return "pickle"  # a pickle behind an unusual first opcode (last: after every magic)
    return None


def _read(view: FileView) -> Found | None:
    kind = _sniff(view)
    reader = READERS.get(kind or "")
    if reader is None:
        return None
    try:
        return reader(view)
    except (_Short, struct.error, ValueError, IndexError):
        return None


# -- safetensors ------------------------------------------------------------------------
def _safetensors(view: FileView) -> Found | None:
    data = view.content.data
    n = struct.unpack_from("<Q", bytes(data[:8]))[0]
    raw = bytes(data[8 : 8 + n])
    header_complete = len(raw) == n and 8 + n <= view.size
    try:
        header = json.loads(raw) if header_complete else None
    except (ValueError, RecursionError):
        header = None
    if not isinstance(header, dict):
        if header_complete or not any(key in raw for key in SAFETENSORS_KEYS):
            return None
        # Cut inside the JSON index: count the tensors described before the cut.
        return Found("weights.safetensors", "safetensors",
                     {"truncated": True, "header_bytes": n, "tensors_seen": raw.count(b'"dtype"')})
    tensors = {k: v for k, v in header.items() if k != "__metadata__"}
    if not tensors and "__metadata__" not in header:
        return None
    dtypes: Counter[str] = Counter()
    parameters = data_end = 0
    for entry in tensors.values():
        if not isinstance(entry, dict):
            return None
        dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
        if not isinstance(dtype, str) or not _int_list(shape) or not _int_list(offsets, 2):
            return None
        dtypes[dtype] += 1
        parameters += math.prod(shape)
        data_end = max(data_end, offsets[1])
    evidence: dict[str, Any] = {"tensors": len(tensors), "parameters": parameters,
                                "dtypes": dict(dtypes.most_common()), "header_bytes": n}
    if 8 + n + data_end > view.size:
        evidence["truncated"] = True
    return Found("weights.safetensors", "safetensors", evidence)


def _int_list(value: Any, length: int | None = None) -> TypeGuard[list[int]]:
    return (isinstance(value, list) and (length is None or len(value) == length)
            and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value))


# -- GGUF and GGML ----------------------------------------------------------------------
class _Cursor:
    """Bounded little- or big-endian reads from a slice of (possibly mmap'd) data."""

    def __init__(self, data: Any, pos: int = 0, order: str = "<") -> None:
        self.data, self.pos, self.order, self.end = data, pos, order, len(data)

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > self.end:
            raise _Short
        chunk = bytes(self.data[self.pos : self.pos + n])
        self.pos += n
        return chunk

    def skip(self, n: int) -> None:
        if n < 0 or self.pos + n > self.end:
            raise _Short
        self.pos += n

    def u32(self) -> int:
        return struct.unpack(self.order + "I", self.take(4))[0]

    def u64(self) -> int:
        return struct.unpack(self.order + "Q", self.take(8))[0]


def _gguf(view: FileView) -> Found | None:
    head = bytes(view.content.data[:24])
    order = "<"
    version = struct.unpack_from("<I", head, 4)[0]
    if not 1 <= version <= 3:
        order, version = ">", struct.unpack_from(">I", head, 4)[0]
        if not 2 <= version <= 3:
            return None
    cur = _Cursor(view.content.data, 8, order)
    count = cur.u32 if version == 1 else cur.u64
    tensor_count, kv_count = count(), count()
    if tensor_count > 10_000_000 or kv_count > 10_000_000:
        return None
    evidence: dict[str, Any] = {"version": version, "tensors": tensor_count, "metadata_keys": kv_count}
    if order == ">":
        evidence["byte_order"] = "big"
    try:
        evidence.update(_gguf_body(cur, version, tensor_count, kv_count))
    except (_Short, struct.error, UnicodeDecodeError):
        evidence["header_complete"] = False
    return Found("weights.gguf", "gguf", evidence)


def _gguf_body(cur: _Cursor, version: int, tensors: int, kvs: int) -> dict[str, Any]:
    """Walk the metadata and tensor infos; give up quietly past MAX_GGUF_STEPS."""
    length = cur.u32 if version == 1 else cur.u64
    steps = 0
    facts: dict[str, Any] = {}
    for _ in range(kvs):
        size = length()
        if size > 65_536:
            raise _Short  # no real key is that long; do not copy it
        key = cur.take(size).decode("utf-8", "replace")
        kind = cur.u32()
        if kind == GGUF_STRING:
            size = length()
            if key in ("general.architecture", "general.name") and size <= 65_536:
                facts[key.split(".", 1)[1]] = cur.take(size)[:200].decode("utf-8", "replace")
            else:
                cur.skip(size)
        elif kind == GGUF_ARRAY:
            inner, n = cur.u32(), length()
            steps += n
            if steps > MAX_GGUF_STEPS:
                return facts
            if inner == GGUF_STRING:
                for _ in range(n):
                    cur.skip(length())
            elif inner in GGUF_SCALARS:
                cur.skip(n * GGUF_SCALARS[inner])
            else:
                raise _Short  # nested arrays: not worth walking
        elif kind in GGUF_SCALARS:
            cur.skip(GGUF_SCALARS[kind])
        else:
            raise _Short
        steps += 1
    dtypes: Counter[str] = Counter()
    parameters = 0
    for _ in range(tensors):
        cur.skip(length())
        dims = cur.u32()
        if dims > 8:
            raise _Short
        shape = [cur.u32() if version == 1 else cur.u64() for _ in range(dims)]
        kind = cur.u32()
        cur.skip(8)
        dtypes[GGML_TYPES.get(kind, f"type{kind}")] += 1
        parameters += math.prod(shape)
        steps += 1
        if steps > MAX_GGUF_STEPS:
            return facts
    facts["parameters"] = parameters
    facts["dtypes"] = dict(dtypes.most_common())
    return facts


def _ggml(view: FileView) -> Found | None:
    head = bytes(view.content.data[:8])
    fmt = GGML_MAGICS[head[:4]]
    value = struct.unpack_from("<I", head, 4)[0]
    if fmt == "ggml":  # unversioned: the first hyperparameter is the vocabulary size
        if not 1 <= value <= 1_000_000:
            return None
        return Found("weights.ggml", "ggml", {"vocabulary": value})
    if (fmt == "ggmf" and value != 1) or (fmt == "ggjt" and not 1 <= value <= 3):
        return None
    return Found("weights.ggml", fmt, {"version": value})


# -- PyTorch legacy pickle --------------------------------------------------------------
def _ends_like_pickle(view: FileView) -> bool:
    """A whole pickle ends with STOP (``.``); a cut one is judged by its head alone."""
    return not view.complete or bytes(view.content.data[view.size - 1 : view.size]) == b"."


def _plain_pickle(view: FileView) -> Found | None:
    """Any other pickle: reported only when it references a global outside the allowlist."""
    result = scan_pickle(bytes(view.content.data[:MAX_PICKLE_BYTES]))
    cut_binary = not view.complete and bytes(view.content.data[:1]) == b"\x80"
    if not result.complete and not cut_binary:
        return None  # text that merely starts like a protocol-0 GLOBAL: not a pickle
    return Found(UNSAFE_PICKLE.id, "pickle", pickles=[("", result)])


def _torch_legacy(view: FileView) -> Found | None:
    """``torch.save(_use_new_zipfile_serialization=False)``: five pickles, then storages.

    The pickles are magic, protocol version, system info, the object, and the list of
    storage keys. Only the last is of interest; ``pickletools.genops`` steps over the
    others opcode by opcode without constructing anything.
    """
    evidence: dict[str, Any] = {"serialization": "legacy"}
    storages = _legacy_storage_count(view.content.data)
    if storages is not None:
        evidence["tensors"] = storages
    walked = scan_pickle(bytes(view.content.data[:MAX_PICKLE_BYTES]), count=5)
    return Found("weights.pytorch", "pytorch", evidence, pickles=[("", walked)])


def _legacy_storage_count(data: Any) -> int | None:
    import pickletools  # only when a legacy checkpoint is met

    stream = io.BytesIO(bytes(data[:MAX_PICKLE_BYTES]))
    ops = 0
    strings = 0
    try:
        for index in range(5):
            for opcode, _arg, _pos in pickletools.genops(stream):
                ops += 1
                if ops > MAX_PICKLE_OPS:
                    return None
                if index == 4 and ("UNICODE" in opcode.name or "STRING" in opcode.name):
                    strings += 1
    except (ValueError, EOFError, OverflowError, UnicodeDecodeError, MemoryError):
        return None
    return strings


# -- NumPy ------------------------------------------------------------------------------
NPY_DESCR = re.compile(r"""['"]descr['"]\s*:\s*['"]([^'"]*)['"]""")
NPY_SHAPE = re.compile(r"""['"]shape['"]\s*:\s*\(([^)]*)\)""")


def _npy_header(head: bytes) -> tuple[str, list[int], int] | None:
    """(dtype, shape, data offset) from a .npy header, parsed as text, never evaluated."""
    if not head.startswith(NPY_MAGIC) or len(head) < 12:
        return None
    if head[6] == 1:
        length, start = struct.unpack_from("<H", head, 8)[0], 10
    elif head[6] in (2, 3):
        length, start = struct.unpack_from("<I", head, 8)[0], 12
    else:
        return None
    text = head[start : start + length].decode("latin-1")
    shape = NPY_SHAPE.search(text)
    if not text.lstrip().startswith("{") or shape is None:
        return None
    try:
        dims = [int(d) for d in shape.group(1).replace(" ", "").split(",") if d]
    except ValueError:
        return None
    if any(d < 0 for d in dims):
        return None
    descr = NPY_DESCR.search(text)
    return (_npy_dtype(descr.group(1)) if descr else "structured"), dims, start + length


def _npy_dtype(descr: str) -> str:
    code = descr.lstrip("<>|=")
    kind, size = code[:1], code[1:]
    name = NPY_KINDS.get(kind)
    if name is None:
        return descr
    if kind in "fiuc":
        return f"{name}{int(size) * 8}" if size.isdigit() else descr
    return name


def _npy(view: FileView) -> Found | None:
    parsed = _npy_header(bytes(view.content.data[:65_600]))
    if parsed is None:
        return None
    dtype, shape, offset = parsed
    evidence: dict[str, Any] = {"tensors": 1, "parameters": math.prod(shape), "shape": shape[:8],
                                "dtypes": {dtype: 1}}
    found = Found("weights.numpy", "npy", evidence, generic=True)
    if dtype == "object":
        evidence["pickled_objects"] = True
    if dtype in ("object", "structured"):  # np.load(allow_pickle=True) unpickles the body
        body = bytes(view.content.data[offset : offset + MAX_PICKLE_BYTES])
        found.pickles = [("", scan_pickle(body))]
    return found


# -- HDF5 -------------------------------------------------------------------------------
def _hdf5(view: FileView) -> Found | None:
    data = view.content.data
    offset = next(o for o in HDF5_OFFSETS if bytes(data[o : o + 8]) == HDF5_MAGIC)
    superblock = data[offset + 8] if len(data) > offset + 8 else None
    if superblock is None or superblock > 3:
        return None
    evidence: dict[str, Any] = {"superblock_version": superblock}
    if offset:
        evidence["user_block"] = offset
    # Keras writes its root attributes (compact, in the root object header) up front.
    window = bytes(data[: 64 * 1024])
    if any(mark in window for mark in KERAS_MARKS):
        evidence["flavor"] = "keras"
        return Found("weights.hdf5", "hdf5", evidence)
    return Found("weights.hdf5", "hdf5", evidence, generic=True)


# -- TFLite -----------------------------------------------------------------------------
class _Flat:
    """Just enough flatbuffer reading to count tensors, every offset bounds-checked."""

    def __init__(self, data: Any) -> None:
        self.data, self.size = data, len(data)

    def _u(self, fmt: str, pos: int) -> int:
        width = struct.calcsize(fmt)
        if pos < 0 or pos + width > self.size:
            raise _Short
        return struct.unpack(fmt, bytes(self.data[pos : pos + width]))[0]

    def field(self, table: int, slot: int) -> int | None:
        vtable = table - self._u("<i", table)
        if self._u("<H", vtable) < 4 or self._u("<H", vtable) % 2:
            raise _Short
        if 4 + 2 * slot + 2 > self._u("<H", vtable):
            return None
        offset = self._u("<H", vtable + 4 + 2 * slot)
        return table + offset if offset else None

    def scalar(self, table: int, slot: int) -> int | None:
        pos = self.field(table, slot)
        return None if pos is None else self._u("<I", pos)

    def vector(self, table: int, slot: int) -> tuple[int, int]:
        """(first element position, length), or (0, 0) when absent."""
        pos = self.field(table, slot)
        if pos is None:
            return 0, 0
        start = pos + self._u("<I", pos)
        length = self._u("<I", start)
        if start + 4 + 4 * length > self.size:
            raise _Short
        return start + 4, length

    def tables(self, table: int, slot: int, limit: int = 10_000) -> Iterator[int]:
        start, length = self.vector(table, slot)
        for i in range(min(length, limit)):
            pos = start + 4 * i
            yield pos + self._u("<I", pos)


def _tflite(view: FileView) -> Found | None:
    flat = _Flat(view.content.data)
    root = flat._u("<I", 0)
    if not 8 <= root < flat.size:
        return None
    if flat.scalar(root, 0) != 3:  # Model.version: the schema has been 3 since 2018
        return None
    evidence: dict[str, Any] = {"schema_version": 3}
    try:
        subgraphs = list(flat.tables(root, 2))
        evidence["subgraphs"] = len(subgraphs)
        evidence["tensors"] = sum(flat.vector(sg, 0)[1] for sg in subgraphs)
        evidence["buffers"] = flat.vector(root, 4)[1]
    except (_Short, struct.error):
        evidence["header_complete"] = False
    return Found("weights.tflite", "tflite", evidence)


# -- ONNX -------------------------------------------------------------------------------
def _fields(data: Any, pos: int, end: int) -> Iterator[Field]:
    """The fields of ``data[pos:end]``, tolerantly: a model cut at the read limit is judged
    by the fields before the cut (``ShortRead`` comes after the cut field is yielded)."""
    return iter_fields(data, pos, end, strict=False, max_fields=MAX_PROTO_FIELDS)


ONNX_MODEL_WIRES = {1: 0, 2: 2, 3: 2, 4: 2, 5: 0, 6: 2, 7: 2, 8: 2, 14: 2, 20: 2, 25: 2, 26: 2}


def _onnx(view: FileView) -> Found | None:
    data = view.content.data
    end = view.size if view.complete else len(data)
    seen: dict[int, tuple[int, int]] = {}
    facts: dict[str, Any] = {}
    try:
        for number, wire, start, stop in _fields(data, 0, end):
            if ONNX_MODEL_WIRES.get(number, -1) != wire:
                return None  # not a ModelProto field: stay quiet
            if number in seen and number in (1, 2, 7):
                return None
            seen.setdefault(number, (start, stop))
            if number == 1:
                facts["ir_version"] = start
            elif number == 2:
                if stop - start > 256:
                    return None
                facts["producer"] = bytes(data[start:stop]).decode("utf-8")
            elif number == 8:
                _opset(data, start, stop)
    except ShortRead:
        if view.complete or 7 not in seen:
            return None
    if list(seen)[:1] != [1] or 7 not in seen or (8 not in seen and view.complete):
        return None
    if not 1 <= facts["ir_version"] <= 32:
        return None
    evidence: dict[str, Any] = {**facts, **_onnx_graph(data, *seen[7], min(end, len(data)))}
    return Found("weights.onnx", "onnx", evidence)


def _opset(data: Any, start: int, stop: int) -> None:
    """An OperatorSetIdProto holds a domain (string) and a version (int), nothing else."""
    for number, wire, _s, _e in _fields(data, start, stop):
        if (number, wire) not in ((1, 2), (2, 0)):
            raise ValueError("not an opset")


def _onnx_graph(data: Any, start: int, stop: int, end: int) -> dict[str, Any]:
    """Count initialisers (GraphProto field 5), reading only their dims and data type."""
    tensors = parameters = 0
    dtypes: Counter[str] = Counter()
    try:
        for number, wire, pos, tail in _fields(data, start, min(stop, end)):
            if number != 5 or wire != 2:
                continue
            tensors += 1
            dims: list[int] = []
            dtype = 0
            for tnum, twire, value, tstop in _fields(data, pos, tail):
                if tnum == 1 and twire == 0:
                    dims.append(value)
                elif tnum == 1 and twire == 2:
                    while value < tstop:
                        dim, value = read_varint(data, value, tstop)
                        dims.append(dim)
                elif tnum == 2 and twire == 0:
                    dtype = value
                elif tnum > 2:
                    break
            parameters += math.prod(dims)
            dtypes[ONNX_TYPES.get(dtype, f"type{dtype}")] += 1
    except ValueError:  # ShortRead and WireError included
        return {"initializers_seen": tensors}
    return {"tensors": tensors, "parameters": parameters, "dtypes": dict(dtypes.most_common())}


# -- zip layouts: PyTorch, TorchScript, Keras v3, npz -------------------------------------
def _zip_model(view: FileView) -> Found | None:
    try:
        with view.content.seekable() as fh, zipfile.ZipFile(fh) as archive:
            # Not ZipInfo.is_dir(): it raises IndexError on a hostile empty member name.
            infos = [i for i in archive.infolist() if i.filename and not i.filename.endswith("/")]
            found = _zip_layout(infos)
            if found is not None and found.format == "npz":
                found.evidence.update(_npz_arrays(archive, infos))
            if found is not None and found.format in ("pytorch", "torchscript"):
                found.pickles = _zip_pickles(archive, infos)
            return found
    except (zipfile.BadZipFile, NotImplementedError, OSError, ValueError, EOFError, struct.error):
        pass
    # No central directory (cut short at the read limit): judge by the leading headers.
    return _zip_layout(_leading_members(bytes(view.content.data[: 1 * MiB])), partial=True)


def _zip_layout(infos: list[zipfile.ZipInfo], partial: bool = False) -> Found | None:
    names = [i.filename for i in infos]
    if not names:
        return None
    prefix = names[0].split("/", 1)[0]
    if f"{prefix}/data.pkl" in names and all(n.startswith(prefix + "/") for n in names):
        rest = {n[len(prefix) + 1 :] for n in names}
        if partial or rest & {"version", ".format_version", "byteorder"}:
            return _torch_zip(infos, prefix, rest, partial)
    if "config.json" in names and ("model.weights.h5" in names or "model.weights.npz" in names):
        weights = next(i for i in infos if i.filename in ("model.weights.h5", "model.weights.npz"))
        return Found("weights.keras", "keras", {"weights_bytes": weights.file_size})
    if not partial and all(n.endswith(".npy") for n in names):
        return Found("weights.numpy", "npz", {"tensors": len(names)}, generic=True)
    return None


def _zip_pickles(archive: zipfile.ZipFile, infos: list[zipfile.ZipInfo]) -> list[tuple[str, ScanResult]]:
    """Walk every ``.pkl`` member of a checkpoint (data.pkl, constants.pkl), bounded."""
    walked = []
    for info in infos:
        if info.filename.endswith(".pkl") and info.file_size <= MAX_PICKLE_BYTES:
            try:
                data = archive.read(info)
            except (zipfile.BadZipFile, OSError, NotImplementedError, EOFError, ValueError):
                continue
            walked.append((info.filename, scan_pickle(data)))
    return walked


def _torch_zip(infos: list[zipfile.ZipInfo], prefix: str, rest: set[str], partial: bool) -> Found:
    script = "constants.pkl" in rest or any(n.startswith("code/") for n in rest)
    storages = [i for i in infos if i.filename.startswith(prefix + "/data/")]
    evidence: dict[str, Any] = {"archive": prefix}
    if partial:
        evidence["header_complete"] = False
    else:
        evidence["tensors"] = len(storages)
        evidence["tensor_bytes"] = sum(i.file_size for i in storages)
    return Found("weights.pytorch", "torchscript" if script else "pytorch", evidence)


def _npz_arrays(archive: zipfile.ZipFile, infos: list[zipfile.ZipInfo]) -> dict[str, Any]:
    dtypes: Counter[str] = Counter()
    parameters = 0
    for info in infos[:MAX_LISTED_ARRAYS]:
        try:
            with archive.open(info) as member:
                parsed = _npy_header(member.read(4096))
        except Exception:  # noqa: BLE001 - a damaged member costs only the array counts
            parsed = None
        if parsed is None:
            return {}
        dtypes[parsed[0]] += 1
        parameters += math.prod(parsed[1])
    if len(infos) > MAX_LISTED_ARRAYS:
        return {"dtypes_sampled": dict(dtypes.most_common())}
    return {"parameters": parameters, "dtypes": dict(dtypes.most_common())}


def _leading_members(head: bytes) -> list[zipfile.ZipInfo]:
    """Names from consecutive local file headers, for a zip whose end was not read."""
    infos: list[zipfile.ZipInfo] = []
    pos = 0
    while head.startswith(b"PK\x03\x04", pos) and pos + 30 <= len(head) and len(infos) < 64:
        flags, size, name_len, extra_len = struct.unpack_from("<H10xI4xHH", head, pos + 6)
        name = head[pos + 30 : pos + 30 + name_len].decode("utf-8", "replace")
        infos.append(zipfile.ZipInfo(name))
        if flags & 0x8 and not size:
            break  # sizes follow the data: the next header cannot be located
        pos += 30 + name_len + extra_len + size
    return infos


# -- SavedModel layout -------------------------------------------------------------------
def _is_variables_file(inner: str) -> bool:
    name = inner.rsplit("/", 1)[-1]
    return (name == "variables.index" or name.startswith("variables.data-")) and (
        inner.endswith("variables/" + name))


def _looks_like_savedmodel(view: FileView) -> bool:
    head = bytes(view.content.data[:2])
    if view.name.endswith(".pbtxt"):
        return True
    # SavedModel.saved_model_schema_version (field 1, varint), then meta_graphs (field 2).
    return head[:1] == b"\x08" or head[:1] == b"\x12"


def _folder(prefix: str) -> str:
    """``a/b/`` -> ``a/b``; ``x.zip!/`` (the container's root) -> ``x.zip``."""
    return prefix[: -len(SEP)] if prefix.endswith(SEP) else prefix.rstrip("/")


# -- presentation -----------------------------------------------------------------------
def _tier(size: int, generic: bool) -> Severity:
    if size >= HIGH_BYTES:
        return Severity.HIGH
    if size >= MEDIUM_BYTES:
        return Severity.LOW if generic else Severity.MEDIUM
    return Severity.INFO if generic else Severity.LOW


def _amount(n: float) -> str:
    for unit, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f}{unit}"
    return str(int(n))


def _size(n: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


def _message(fmt: str, evidence: dict[str, Any], size: int) -> str:
    label = {"npy": "NumPy array", "npz": "NumPy archive", "hdf5": "HDF5 file",
             "savedmodel": "TensorFlow SavedModel", "tflite": "TFLite model", "onnx": "ONNX model",
             "pytorch": "PyTorch checkpoint", "torchscript": "TorchScript model",
             "keras": "Keras model", "safetensors": "safetensors weights",
             "gguf": "GGUF model"}.get(fmt, f"{fmt.upper()} model")
    if evidence.get("flavor") == "keras":
        label = "Keras HDF5 weights"
    parts = []
    if "tensors" in evidence:
        count = evidence["tensors"]
        parts.append(f"{count:,} tensor{'s' if count != 1 else ''}")
    if evidence.get("parameters"):
        parts.append(f"{_amount(evidence['parameters'])} parameters")
    parts.append(_size(size))
    if evidence.get("truncated"):
        parts.append("truncated")
    return f"{label}: " + ", ".join(parts)


READERS = {
    "safetensors": _safetensors,
    "gguf": _gguf,
    "ggml": _ggml,
    "torch-legacy": _torch_legacy,
    "pickle": _plain_pickle,
    "npy": _npy,
    "hdf5": _hdf5,
    "tflite": _tflite,
    "onnx": _onnx,
}
