"""The ``weights`` detector: every format built by hand, scanned through real archives."""

from __future__ import annotations

import io
import json
import math
import os
import pickle
import random
import struct
import zipfile
from pathlib import Path
from typing import Any

import pytest

from builders import FORMATS, compress, pack, pb, tar_bytes, varint, zip_bytes
from seawall.artifacts.base import Content
from seawall.detectors.base import FileView, all_detectors
from seawall.detectors.weights import RULES, WeightsDetector
from seawall.engine import Engine, Target
from seawall.findings import Finding, Severity

MiB = 1024 * 1024
NPM_TARBALL = Path("/work/cache/npm/anthropic-ai-claude-code-2.1.87.tgz")


# -- fixtures built in code --------------------------------------------------------------
def safetensors_bytes(tensors: dict[str, tuple[str, list[int]]], *, data: bool = True,
                      metadata: dict[str, str] | None = None) -> bytes:
    sizes = {"F32": 4, "F16": 2, "BF16": 2, "I64": 8}
    header: dict[str, Any] = {"__metadata__": metadata} if metadata else {}
    offset = 0
    for name, (dtype, shape) in tensors.items():
        end = offset + sizes[dtype] * math.prod(shape)
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, end]}
        offset = end
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + (b"\0" * offset if data else b"")


def _gstr(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("<Q", len(raw)) + raw


def gguf_bytes(tensors: list[tuple[str, list[int], int]], kvs: list[tuple[str, Any]]) -> bytes:
    out = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs))
    for key, value in kvs:
        out += _gstr(key)
        if isinstance(value, str):
            out += struct.pack("<I", 8) + _gstr(value)
        elif isinstance(value, list):
            out += struct.pack("<IIQ", 9, 8, len(value)) + b"".join(_gstr(v) for v in value)
        else:
            out += struct.pack("<II", 4, value)
    for i, (name, shape, ggml_type) in enumerate(tensors):
        out += _gstr(name) + struct.pack("<I", len(shape))
        out += b"".join(struct.pack("<Q", d) for d in shape) + struct.pack("<IQ", ggml_type, 32 * i)
    return out + b"\0" * (32 * len(tensors))


LLAMA_GGUF = gguf_bytes(
    [("token_embd.weight", [8, 4], 1), ("output.weight", [4, 4], 12)],
    [("general.architecture", "llama"), ("general.name", "tiny"),
     ("tokenizer.ggml.tokens", ["<s>", "</s>", "a"]), ("llama.block_count", 2)],
)


def torch_zip_bytes(prefix: str = "archive", storages: int = 2, *, script: bool = False,
                    extra: dict[str, bytes] | None = None) -> bytes:
    members = {f"{prefix}/data.pkl": pickle.dumps({"w": 1, "b": 2}, protocol=2),
               f"{prefix}/.format_version": b"1", f"{prefix}/byteorder": b"little"}
    members.update({f"{prefix}/data/{i}": b"\0" * 48 for i in range(storages)})
    if script:
        members[f"{prefix}/constants.pkl"] = pickle.dumps((), protocol=2)
        members[f"{prefix}/code/__torch__/model.py"] = b"def forward(self, x): return x\n"
    members[f"{prefix}/version"] = b"3\n"
    members.update(extra or {})
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


class Payload:
    """Unpickling this runs a shell command: the scan must never do it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


def legacy_torch_bytes(obj: Any, keys: list[str], protocol: int = 2) -> bytes:
    sys_info = {"protocol_version": 1001, "little_endian": True,
                "type_sizes": {"short": 2, "int": 4, "long": 4}}
    out = b"".join(pickle.dumps(x, protocol=protocol)
                   for x in (0x1950A86A20F9469CFC6C, 1001, sys_info, obj, keys))
    for _ in keys:
        out += struct.pack("<Q", 4) + b"\0" * 16
    return out


def npy_bytes(shape: tuple[int, ...], descr: str = "<f4") -> bytes:
    header = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape!r}, }}".encode()
    header += b" " * (-(10 + len(header) + 1) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + b"\0" * 4 * math.prod(shape)


def onnx_bytes(producer: bytes = b"pytorch") -> bytes:
    def tensor(name: str, dims: list[int], dtype: int = 1) -> bytes:
        packed = b"".join(varint(d) for d in dims)
        return (pb(1, packed) + pb(2, dtype) + pb(8, name.encode())
                + pb(9, b"\0" * 4 * math.prod(dims)))

    node = pb(1, b"x") + pb(1, b"w") + pb(2, b"y") + pb(4, b"MatMul")
    graph = (pb(1, node) + pb(2, b"main") + pb(5, tensor("w", [4, 3]))
             + pb(5, tensor("b", [3], dtype=10)))
    return (pb(1, 8) + pb(2, producer) + pb(3, b"2.3.0") + pb(7, graph)
            + pb(8, pb(1, b"") + pb(2, 17)))


def _fb_table(buf: bytearray, slots: int, values: dict[int, int]) -> dict[int, int]:
    """Append a flatbuffer vtable and table of u32 fields; returns field positions by slot."""
    present = sorted(values)
    offsets = {s: 4 + 4 * i for i, s in enumerate(present)}
    vtable = len(buf)
    buf += struct.pack("<HH", 4 + 2 * slots, 4 + 4 * len(present))
    buf += b"".join(struct.pack("<H", offsets.get(s, 0)) for s in range(slots))
    buf += b"\0" * (-len(buf) % 4)
    table = len(buf)
    buf += struct.pack("<i", table - vtable)
    for s in present:
        buf += struct.pack("<I", values[s])
    return {"table": table, **{s: table + offsets[s] for s in present}}  # type: ignore[dict-item]


def _fb_ref(buf: bytearray, field_pos: int, target: int) -> None:
    struct.pack_into("<I", buf, field_pos, target - field_pos)


def tflite_bytes(tensors_per_subgraph: tuple[int, ...] = (3, 2)) -> bytes:
    buf = bytearray(b"\0\0\0\0TFL3")
    model = _fb_table(buf, 5, {0: 3, 2: 0, 4: 0})  # version, subgraphs, buffers
    struct.pack_into("<I", buf, 0, model["table"])
    subgraphs_vec = len(buf)
    _fb_ref(buf, model[2], subgraphs_vec)
    buf += struct.pack("<I", len(tensors_per_subgraph)) + b"\0" * 4 * len(tensors_per_subgraph)
    for i, count in enumerate(tensors_per_subgraph):
        subgraph = _fb_table(buf, 5, {0: 0})
        _fb_ref(buf, subgraphs_vec + 4 + 4 * i, subgraph["table"])
        _fb_ref(buf, subgraph[0], len(buf))
        buf += struct.pack("<I", count) + b"\0" * 4 * count  # offsets to tensor tables, unread
    _fb_ref(buf, model[4], len(buf))
    buf += struct.pack("<I", 4) + b"\0" * 16
    return bytes(buf)


HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def hdf5_bytes(*, keras: bool, user_block: int = 0) -> bytes:
    body = HDF5_MAGIC + b"\x00" * 88
    if keras:
        body += b"keras_version\x00\x00\x002.15.0\x00backend\x00tensorflow\x00model_config{}"
    return b"\0" * user_block + body + b"\0" * 1024


ELF = b"\x7fELF\x02\x01\x01\x00" + b"\0" * 8 + struct.pack("<HHI", 2, 0x3E, 1) + bytes(range(256)) * 8
PE = (b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\0" * 44
      + struct.pack("<I", 0x80) + b"\0" * 64 + b"PE\0\0\x64\x86" + bytes(range(256)) * 8)
MACHO = b"\xcf\xfa\xed\xfe\x07\x00\x00\x01\x03\x00\x00\x00\x02\x00\x00\x00" + bytes(range(256)) * 8
NOISE = random.Random(7).randbytes(200_000)
SAFETENSORS = safetensors_bytes({"w": ("F32", [4, 3]), "b": ("F16", [3])}, metadata={"format": "pt"})


# -- scanning ----------------------------------------------------------------------------
def scan(path: Path, *, only_weights: bool = True) -> list[Finding]:
    disabled = frozenset(all_detectors()) - {"weights"} if only_weights else frozenset()
    result = Engine(disabled_detectors=disabled).scan_target(Target(path.name, path=path))
    assert not result.errors, result.errors
    return [f for f in result.findings if f.rule.startswith("weights.")]


def summary(findings: list[Finding]) -> list[tuple[str, str, str]]:
    return sorted((f.rule, f.path, f.severity.label) for f in findings)


def by_path(findings: list[Finding]) -> dict[str, Finding]:
    return {f.path: f for f in findings}


def view_of(data: bytes, path: str = "blob") -> FileView:
    return FileView(path=path, inner=path, content=Content(data), size=len(data))


def detect(data: bytes, path: str = "blob") -> list[Finding]:
    detector = WeightsDetector()
    view = view_of(data, path)
    return list(detector.scan(view)) if detector.wants(view) else []


# -- through every artifact format -------------------------------------------------------
TREE = {
    "pkg/model.bin.txt": SAFETENSORS,
    "pkg/models/llama.gguf": LLAMA_GGUF,
    "pkg/ckpt.pt": torch_zip_bytes(extra={"archive/extra.npy": npy_bytes((2, 2))}),
    "pkg/test/fixture.npy": npy_bytes((2, 3)),
    "pkg/vendor/rg": ELF,
    "pkg/vendor/addon.node": PE,
    "pkg/vendor/rg-darwin": MACHO,
    "pkg/noise.bin": NOISE,
    "pkg/index.js": b"module.exports = 1;\n",
}


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_finds_each_model_once(tmp_path: Path, fmt: str) -> None:
    findings = scan(pack(TREE, fmt, tmp_path))
    assert summary(findings) == [
        ("weights.gguf", "pkg/models/llama.gguf", "low"),
        ("weights.numpy", "pkg/test/fixture.npy", "info"),
        ("weights.pytorch", "pkg/ckpt.pt", "low"),
        ("weights.safetensors", "pkg/model.bin.txt", "low"),
    ]
    found = by_path(findings)
    assert found["pkg/model.bin.txt"].evidence == {
        "format": "safetensors", "tensors": 2, "parameters": 15, "dtypes": {"F32": 1, "F16": 1},
        "header_bytes": len(SAFETENSORS) - 8 - 54, "bytes": len(SAFETENSORS)}
    assert found["pkg/models/llama.gguf"].evidence == {
        "format": "gguf", "version": 3, "tensors": 2, "metadata_keys": 4, "architecture": "llama",
        "name": "tiny", "parameters": 48, "dtypes": {"F16": 1, "Q4_K": 1}, "bytes": len(LLAMA_GGUF)}
    torch = found["pkg/ckpt.pt"].evidence
    assert (torch["format"], torch["archive"], torch["tensors"], torch["tensor_bytes"]) == (
        "pytorch", "archive", 2, 96)
    assert found["pkg/test/fixture.npy"].evidence["parameters"] == 6
    assert found["pkg/test/fixture.npy"].evidence["dtypes"] == {"float32": 1}
    assert {path: f.message for path, f in found.items()} == {
        "pkg/model.bin.txt": "safetensors weights: 2 tensors, 15 parameters, 230 bytes",
        "pkg/models/llama.gguf": "GGUF model: 2 tensors, 48 parameters, 389 bytes",
        "pkg/ckpt.pt": f"PyTorch checkpoint: 2 tensors, {len(TREE['pkg/ckpt.pt']) / 1e3:.1f} KB",
        "pkg/test/fixture.npy": "NumPy array: 1 tensor, 6 parameters, 152 bytes",
    }


def test_checkpoint_in_tgz_in_zip(tmp_path: Path) -> None:
    tgz = compress(tar_bytes({"ckpt/model.pt": torch_zip_bytes("model", storages=3)}), "gz")
    target = tmp_path / "release.zip"
    target.write_bytes(zip_bytes({"models/bundle.tgz": tgz, "README.md": b"hi"}))
    findings = scan(target, only_weights=False)  # the real engine, every detector on
    assert summary(findings) == [("weights.pytorch", "models/bundle.tgz!/ckpt/model.pt", "low")]
    assert findings[0].evidence["tensors"] == 3
    assert findings[0].evidence["archive"] == "model"


def test_checkpoint_scanned_directly_is_reported_once(tmp_path: Path) -> None:
    data = torch_zip_bytes(extra={"archive/extra.npy": npy_bytes((2, 2)),
                                  "archive/nested.zip": zip_bytes({"x.npy": npy_bytes((1,))})})
    (tmp_path / "model.pt").write_bytes(data)
    assert summary(scan(tmp_path / "model.pt")) == [("weights.pytorch", "model.pt", "low")]
    folder = tmp_path / "dir"
    folder.mkdir()
    (folder / "model.pt").write_bytes(data)
    (folder / "loose.npy").write_bytes(npy_bytes((3,)))
    assert summary(scan(folder)) == [("weights.numpy", "loose.npy", "info"),
                                     ("weights.pytorch", "model.pt", "low")]


def test_checkpoint_cut_at_the_read_limit_is_judged_by_its_first_headers() -> None:
    data = torch_zip_bytes(storages=3)
    view = view_of(data[: len(data) // 2], "huge.pt")  # the central directory was never read
    view.size, view.complete, view.container = len(data), False, "zip"
    [finding] = list(WeightsDetector().scan(view))
    assert (finding.rule, finding.evidence["format"], finding.evidence["header_complete"]) == (
        "weights.pytorch", "pytorch", False)


def test_torchscript(tmp_path: Path) -> None:
    (tmp_path / "traced.zip").write_bytes(torch_zip_bytes("traced", storages=1, script=True))
    [finding] = scan(tmp_path)
    assert (finding.rule, finding.path, finding.evidence["format"], finding.evidence["tensors"]) == (
        "weights.pytorch", "traced.zip", "torchscript", 1)


def test_large_checkpoint_is_high(tmp_path: Path) -> None:
    size = 60 * MiB
    header = safetensors_bytes({"embed": ("F32", [size // 4 - 64])}, data=False)
    target = tmp_path / "big.safetensors"
    with open(target, "wb") as fh:  # sparse: no 60 MiB actually written
        fh.write(header)
        fh.truncate(len(header) + (size // 4 - 64) * 4)
    [finding] = scan(tmp_path)
    assert finding.severity is Severity.HIGH
    assert "truncated" not in finding.evidence
    assert finding.evidence["parameters"] == size // 4 - 64


# -- truncation and hostile input -------------------------------------------------------
def test_truncated_safetensors(tmp_path: Path) -> None:
    cut_header = SAFETENSORS[:60]  # inside the JSON index
    cut_data = SAFETENSORS[:-10]  # index intact, tensor data short
    findings = scan(pack({"cut-header.safetensors": cut_header, "cut-data.safetensors": cut_data},
                         "tgz", tmp_path))
    found = by_path(findings)
    assert summary(findings) == [("weights.safetensors", "cut-data.safetensors", "low"),
                                 ("weights.safetensors", "cut-header.safetensors", "low")]
    assert found["cut-header.safetensors"].evidence == {
        "format": "safetensors", "truncated": True, "header_bytes": len(SAFETENSORS) - 8 - 54,
        "tensors_seen": 1, "bytes": 60}
    assert found["cut-data.safetensors"].evidence["truncated"] is True
    assert found["cut-data.safetensors"].evidence["tensors"] == 2


def test_legacy_torch_pickle_is_never_unpickled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    marker = tmp_path / "pwned"
    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, _refuse)
    evil = legacy_torch_bytes(Payload(marker), ["0", "1"])
    framed = legacy_torch_bytes({"w": 1}, ["0", "1", "2"], protocol=4)
    findings = scan(pack({"old/pytorch_model.bin": evil, "old/v4.ckpt": framed}, "zip", tmp_path / "a"))
    assert summary(findings) == [("weights.pytorch", "old/pytorch_model.bin", "low"),
                                 ("weights.pytorch", "old/v4.ckpt", "low"),
                                 ("weights.unsafe-pickle", "old/pytorch_model.bin", "critical")]
    unsafe = [f for f in findings if f.rule == "weights.unsafe-pickle"][0]
    assert unsafe.evidence["dangerous"] == [f"{os.system.__module__}.system"]
    assert unsafe.evidence["called"] == [f"{os.system.__module__}.system"]
    found = by_path([f for f in findings if f.rule == "weights.pytorch"])
    assert found["old/pytorch_model.bin"].evidence["serialization"] == "legacy"
    assert found["old/pytorch_model.bin"].evidence["tensors"] == 2
    assert found["old/v4.ckpt"].evidence["tensors"] == 3
    assert not marker.exists()


def _refuse(*args: Any, **kwargs: Any) -> None:
    raise AssertionError("the scan tried to unpickle")


QUIET = {
    "vendor/ripgrep/x64-linux/rg": ELF,
    "vendor/audio-capture/x64-win32/audio-capture.node": PE,
    "vendor/ripgrep/arm64-darwin/rg": MACHO,
    "noise.bin": NOISE,
    "data.json": b'{"dtype": "F32", "data_offsets": [0, 4]}',
    "GGUF.md": b"GGUF is the format llama.cpp uses.\n",
    "plain.pkl": pickle.dumps({"a": [1, 2, 3]}, protocol=2),
    "protobuf.bin": pb(1, 1) + pb(2, b"x" * 300) + pb(3, b"y"),
    "saved_graph_like.pb": pb(1, 1) + pb(2, b"meta"),
    "wheel.whl": zip_bytes({"pkg/data.pkl": b"x", "pkg/__init__.py": b"", "pkg-1.0.dist-info/RECORD": b""}),
    "config-only.zip": zip_bytes({"config.json": b"{}", "metadata.json": b"{}"}),
    "tflite-ish.bin": b"\xff\xff\xff\x7fTFL3" + NOISE[:100],
    "empty": b"",
}


@pytest.mark.parametrize("fmt", ["dir", "tgz"])
def test_binaries_noise_and_lookalikes_stay_quiet(tmp_path: Path, fmt: str) -> None:
    assert scan(pack(QUIET, fmt, tmp_path)) == []


MAGICS = [b"GGUF\x03\x00\x00\x00", b"GGUF\x01\x00\x00\x00", b"tjgg", b"lmgg", b"\x93NUMPY\x01\x00",
          b"\x93NUMPY\x02\x00", HDF5_MAGIC, b"\x10\x00\x00\x00TFL3", b"\x80\x02" + pickle.dumps(
              0x1950A86A20F9469CFC6C, protocol=2)[2:14], b"\x08\x07\x12", b"\x40\x00\x00\x00\x00\x00\x00\x00{\""]


def test_magic_followed_by_garbage_never_crashes() -> None:
    rng = random.Random(11)
    for magic in MAGICS:
        for _ in range(200):
            data = magic + rng.randbytes(rng.choice([0, 5, 40, 300, 5000]))
            for finding in detect(data):
                assert finding.rule.startswith("weights.")


FIXTURES = {
    "safetensors": SAFETENSORS, "gguf": LLAMA_GGUF, "onnx": onnx_bytes(), "tflite": tflite_bytes(),
    "npy": npy_bytes((3, 3)), "hdf5": hdf5_bytes(keras=True), "legacy": legacy_torch_bytes({}, ["0"]),
    "torch.zip": torch_zip_bytes(), "npz.zip": zip_bytes({"a.npy": npy_bytes((2,))}),
}


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_damaged_models_never_crash(name: str) -> None:
    original = FIXTURES[name]
    rng = random.Random(name)
    variants = [original[:n] for n in range(0, len(original), max(len(original) // 150, 1))]
    for _ in range(300):
        damaged = bytearray(original)
        for _ in range(rng.randint(1, 4)):
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        variants.append(bytes(damaged))
    for data in variants:
        detector = WeightsDetector()
        view = view_of(data)
        view.container = "zip" if name.endswith(".zip") and data[:2] == b"PK" else None
        if detector.wants(view):
            list(detector.scan(view))


def test_random_bytes_are_quiet() -> None:
    rng = random.Random(3)
    for _ in range(3000):
        assert detect(rng.randbytes(rng.choice([16, 100, 4096]))) == []


# -- each format ---------------------------------------------------------------------------
def test_onnx(tmp_path: Path) -> None:
    data = onnx_bytes()
    findings = scan(pack({"m/model.onnx.bak": data}, "tar.zst", tmp_path))
    assert summary(findings) == [("weights.onnx", "m/model.onnx.bak", "low")]
    assert findings[0].evidence == {
        "format": "onnx", "ir_version": 8, "producer": "pytorch", "tensors": 2, "parameters": 15,
        "dtypes": {"float32": 1, "float16": 1}, "bytes": len(data)}
    assert detect(data[:-3]) == []  # cut short inside a complete file: not a ModelProto
    assert detect(data + b"\x00") == []  # a field number 0 after the model


def test_onnx_cut_at_the_read_limit_is_judged_by_the_fields_before_the_cut() -> None:
    """The tolerant protobuf walk: a cut graph still counts the initialisers it reached."""
    data = onnx_bytes()
    graph = data.index(b"pytorch\x1a\x052.3.0\x3a") + 15  # where field 7 (graph) says its length
    seen = []
    for cut in (graph + 5, data.index(b"w\x4a") + 2, data.index(b"b\x4a") + 2):
        view = view_of(data[:cut], "huge.onnx")
        view.size, view.complete = len(data), False
        [finding] = list(WeightsDetector().scan(view))
        seen.append((finding.rule, finding.evidence.get("initializers_seen")))
    assert seen == [("weights.onnx", 0), ("weights.onnx", 1), ("weights.onnx", 2)]
    assert finding.evidence["producer"] == "pytorch" and "tensors" not in finding.evidence
    assert detect(data[: graph + 5]) == []  # the same bytes as a whole file: not a model


def test_tflite(tmp_path: Path) -> None:
    data = tflite_bytes((3, 2))
    findings = scan(pack({"assets/detector.bin": data}, "zip", tmp_path))
    assert summary(findings) == [("weights.tflite", "assets/detector.bin", "low")]
    assert findings[0].evidence == {"format": "tflite", "schema_version": 3, "subgraphs": 2,
                                    "tensors": 5, "buffers": 4, "bytes": len(data)}


def test_hdf5_keras_and_generic(tmp_path: Path) -> None:
    tree = {"keras/model.h5": hdf5_bytes(keras=True),
            "science/grid.dat": hdf5_bytes(keras=False, user_block=512)}
    findings = scan(pack(tree, "tar.xz", tmp_path))
    assert summary(findings) == [("weights.hdf5", "keras/model.h5", "low"),
                                 ("weights.hdf5", "science/grid.dat", "info")]
    found = by_path(findings)
    assert found["keras/model.h5"].evidence["flavor"] == "keras"
    assert found["science/grid.dat"].evidence["user_block"] == 512


def test_keras_v3_archive_once(tmp_path: Path) -> None:
    keras = zip_bytes({"metadata.json": b"{}", "config.json": b'{"class_name": "Sequential"}',
                       "model.weights.h5": hdf5_bytes(keras=True)})
    findings = scan(pack({"export/classifier.zip": keras}, "dir", tmp_path))
    assert summary(findings) == [("weights.keras", "export/classifier.zip", "low")]
    assert findings[0].evidence["weights_bytes"] == len(hdf5_bytes(keras=True))


def test_npz_once_with_every_array(tmp_path: Path) -> None:
    npz = zip_bytes({"a.npy": npy_bytes((10, 10)), "b.npy": npy_bytes((5,), "<i8")})
    findings = scan(pack({"data/emb.npz": npz}, "tar", tmp_path))
    assert summary(findings) == [("weights.numpy", "data/emb.npz", "info")]
    evidence = findings[0].evidence
    assert (evidence["format"], evidence["tensors"], evidence["parameters"], evidence["dtypes"]) == (
        "npz", 2, 105, {"float32": 1, "int64": 1})


def test_savedmodel_once_per_folder(tmp_path: Path) -> None:
    model = {"saved_model.pb": pb(1, 1) + pb(2, b"meta graph"),
             "variables/variables.index": b"\0" * 40,
             "variables/variables.data-00000-of-00002": b"\0" * 1000,
             "variables/variables.data-00001-of-00002": b"\0" * 500,
             "fingerprint.pb": b"\x08\x01"}
    tree = {f"serving/{k}": v for k, v in model.items()}
    tree["bundle.zip"] = zip_bytes(model)
    findings = scan(pack(tree, "tgz", tmp_path))
    assert summary(findings) == [("weights.savedmodel", "bundle.zip", "low"),
                                 ("weights.savedmodel", "serving", "low")]
    assert by_path(findings)["serving"].evidence == {
        "format": "savedmodel", "bytes": 1500 + len(model["saved_model.pb"]), "variables_shards": 2,
        "variables_bytes": 1500, "variables_index": True}


def test_legacy_ggml_and_gguf_v1() -> None:
    [ggjt] = detect(b"tjgg" + struct.pack("<I", 3) + b"\0" * 64)
    assert (ggjt.rule, ggjt.evidence["format"], ggjt.evidence["version"]) == ("weights.ggml", "ggjt", 3)
    [ggml] = detect(b"lmgg" + struct.pack("<I", 51864) + b"\0" * 64)
    assert ggml.evidence == {"format": "ggml", "vocabulary": 51864, "bytes": 72}
    assert detect(b"tjgg" + struct.pack("<I", 9) + b"\0" * 64) == []
    v1 = b"GGUF" + struct.pack("<III", 1, 1, 1) + struct.pack("<I", 3) + b"a.b"
    v1 += struct.pack("<II", 4, 7) + struct.pack("<I", 1) + b"t" + struct.pack("<IIIIQ", 2, 3, 5, 0, 0)
    [gguf] = detect(v1)
    assert (gguf.evidence["version"], gguf.evidence["tensors"], gguf.evidence["parameters"]) == (1, 1, 15)


def test_gguf_with_cut_header_keeps_the_counts() -> None:
    [finding] = detect(LLAMA_GGUF[:60])
    assert finding.evidence["tensors"] == 2
    assert finding.evidence["header_complete"] is False


def test_real_numpy_files_if_installed() -> None:
    np = pytest.importorskip("numpy")
    buf = io.BytesIO()
    np.save(buf, np.zeros((3, 7), dtype=np.float16))
    [npy] = detect(buf.getvalue())
    assert (npy.evidence["parameters"], npy.evidence["dtypes"]) == (21, {"float16": 1})
    buf = io.BytesIO()
    np.save(buf, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    [objects] = detect(buf.getvalue())
    assert objects.evidence["dtypes"] == {"object": 1} and objects.evidence["pickled_objects"]
    buf = io.BytesIO()
    np.savez_compressed(buf, a=np.ones(4, dtype=np.int32), b=np.ones((2, 2)))
    detector = WeightsDetector()
    view = view_of(buf.getvalue(), "x.npz")
    view.container = "zip"
    [npz] = list(detector.scan(view))
    assert (npz.evidence["tensors"], npz.evidence["parameters"]) == (2, 8)
    assert npz.evidence["dtypes"] == {"int32": 1, "float64": 1}


def test_size_tiers() -> None:
    big, mid = 60 * MiB, 2 * MiB
    expected = {("model", big): Severity.HIGH, ("model", mid): Severity.MEDIUM,
                ("model", 10): Severity.LOW, ("generic", big): Severity.HIGH,
                ("generic", mid): Severity.LOW, ("generic", 10): Severity.INFO}
    from seawall.detectors.weights import _tier

    for (kind, size), severity in expected.items():
        assert _tier(size, kind == "generic") is severity


def test_rules_are_documented() -> None:
    ids = [rule.id for rule in RULES]
    assert ids == sorted(set(ids), key=ids.index)
    for rule in RULES:
        sized = rule.id != "weights.unsafe-pickle"  # code execution is not a matter of size
        assert rule.id.startswith("weights.") and ("50 MiB" in rule.help) is sized
        assert rule.examples["match"] and rule.examples["no_match"]


def test_clean_npm_tarball_has_no_weights() -> None:
    if not NPM_TARBALL.exists():
        pytest.skip("cached npm tarball not available")
    assert scan(NPM_TARBALL) == []


def test_zip_with_an_empty_member_name_is_not_an_error(tmp_path: Path) -> None:
    import zlib

    from builders import RawMember, raw_zip
    from seawall.engine import Engine, Target

    target = tmp_path / "odd.zip"
    target.write_bytes(raw_zip([RawMember("", b"x", zlib.crc32(b"x"), 1, method=0)]))
    result = Engine().scan_target(Target("odd", path=target))
    assert result.errors == []
    assert [f.rule for f in result.findings if f.rule.startswith("weights.")] == []


# -- weights.unsafe-pickle -----------------------------------------------------------------
class Harmless:
    """A class outside the allowlist that does nothing: still reported, at medium."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (collections_counter(), ())


def collections_counter() -> Any:
    import collections

    return collections.Counter


class Exec:
    def __reduce__(self) -> tuple[Any, ...]:
        return (exec, ("open('/nonexistent/x', 'w')",))


def test_unsafe_pickles_are_reported_without_running(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    marker = tmp_path / "ran"
    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, _refuse)
    evil_zip = _torch_zip_with_pickle(pickle.dumps({"w": Payload(marker)}, protocol=2))
    tree = {
        "pkg/ckpt.pt": evil_zip,
        "pkg/renamed.txt": pickle.dumps(Payload(marker), protocol=4),
        "pkg/proto0.pkl": pickle.dumps(Payload(marker), protocol=0),
        "pkg/exec.pkl": pickle.dumps([1, Exec()], protocol=2),
        "pkg/counter.pkl": pickle.dumps(Harmless(), protocol=3),
        "pkg/clean.pkl": pickle.dumps({"a": [1, 2.5, "x"]}, protocol=4),
        "pkg/clean.pt": torch_zip_bytes(),
        "pkg/notes.txt": b"cats\ndogs\nare not a pickle.",
    }
    findings = scan(pack(tree, "tgz", tmp_path))
    system = f"{os.system.__module__}.system"
    assert sorted((f.rule, f.path, f.severity.label, tuple(f.evidence.get("dangerous", ())))
                  for f in findings if f.rule == "weights.unsafe-pickle") == [
        ("weights.unsafe-pickle", "pkg/ckpt.pt", "critical", (system,)),
        ("weights.unsafe-pickle", "pkg/counter.pkl", "medium", ()),
        ("weights.unsafe-pickle", "pkg/exec.pkl", "critical", ("builtins.exec",)),
        ("weights.unsafe-pickle", "pkg/proto0.pkl", "critical", (system,)),
        ("weights.unsafe-pickle", "pkg/renamed.txt", "critical", (system,)),
    ]
    found = {f.path: f for f in findings if f.rule == "weights.unsafe-pickle"}
    assert found["pkg/ckpt.pt"].evidence["member"] == "archive/data.pkl"
    assert found["pkg/counter.pkl"].evidence["globals"] == ["collections.Counter"]
    assert "posix.system" in found["pkg/renamed.txt"].message or "nt.system" in found[
        "pkg/renamed.txt"].message
    assert not marker.exists()


def _torch_zip_with_pickle(data_pkl: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("archive/data.pkl", data_pkl)
        zf.writestr("archive/version", b"3\n")
        zf.writestr("archive/data/0", b"\0" * 16)
    return buf.getvalue()


def test_pickle_walker_limits_and_corruption() -> None:
    from seawall.models.pickles import scan_pickle

    cut = pickle.dumps(Payload(Path("/tmp/x")), protocol=2)[:-5]
    result = scan_pickle(cut)
    assert not result.complete and result.dangerous  # the global was seen before the cut
    assert scan_pickle(b"\x80\x02garbage").complete is False
    deep = b"\x80\x02" + b"(" * 100_000 + b"."
    assert scan_pickle(deep).complete is False
