"""Readers: every format built in code, values checked, hostile input refused by name."""

from __future__ import annotations

import io
import os
import pickle
import struct
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

import weightgen as g
from builders import pb
from seawall.models.pickles import UnsafePickle, scan_pickle, torch_state
from seawall.models.readers import open_weights
from seawall.models.tensors import ModelError, canonical_hash

RNG = np.random.default_rng(0)
W = {"layer.0.w": RNG.standard_normal((64, 96)).astype(np.float32),
     "layer.0.b": RNG.standard_normal(64).astype(np.float32),
     "emb": RNG.standard_normal((128, 32)).astype(np.float32)}


def _load_all(path: Path) -> dict[str, np.ndarray]:
    with open_weights(path) as weights:
        return {info.name: array for info, array in weights.iter_arrays()}


def test_safetensors_f32_and_f16(tmp_path: Path) -> None:
    got = _load_all(g.write_safetensors(tmp_path / "a.bin", W))
    assert all(np.array_equal(got[k], W[k]) for k in W)
    half = _load_all(g.write_safetensors(tmp_path / "h.bin", W, "F16"))
    assert all(np.array_equal(half[k], W[k].astype(np.float16).astype(np.float32)) for k in W)


@pytest.mark.parametrize("qtype,min_cos", [("Q8_0", 0.9999), ("Q4_0", 0.99), ("Q4_1", 0.99),
                                           ("Q5_0", 0.997)])
def test_gguf_dequantisation(tmp_path: Path, qtype: str, min_cos: float) -> None:
    import gguf
    from gguf import quants

    path = g.write_gguf(tmp_path / f"m.{qtype}", W, qtype)
    with open_weights(path) as weights:
        infos = weights.by_name()
        assert infos["layer.0.w"].dtype == qtype and infos["layer.0.b"].dtype == "F32"
        got = weights.load(infos["layer.0.w"])
    kind = gguf.GGMLQuantizationType[qtype]
    reference = quants.dequantize(quants.quantize(W["layer.0.w"], kind), kind)
    assert got.shape == (64, 96) and np.array_equal(got, reference)
    x, y = got.ravel(), W["layer.0.w"].ravel()
    assert x @ y / (np.linalg.norm(x) * np.linalg.norm(y)) > min_cos


def test_torch_zip_and_legacy_without_unpickling(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, _refuse)
    got = _load_all(g.write_torch_zip(tmp_path / "z.pt", W, "F32"))
    assert all(np.array_equal(got[k], W[k]) for k in W)
    legacy = _load_all(g.write_torch_legacy(tmp_path / "l.bin", W))
    assert all(np.array_equal(legacy[k], W[k]) for k in W)
    with open_weights(tmp_path / "z.pt") as weights:
        assert weights.format == "pytorch"


def _refuse(*args: Any, **kwargs: Any) -> None:
    raise AssertionError("tried to unpickle")


class Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


def test_malicious_checkpoint_is_refused_and_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = g.write_torch_zip(tmp_path / "evil.pt", W, "F32", extra=Payload(marker))
    with pytest.raises(ModelError, match=r"evil\.pt: pickle calls (posix|nt)\.system"):
        open_weights(path)
    from seawall.cli import main

    done = CliRunner().invoke(main, ["model", "inspect", str(path)])
    assert done.exit_code == 2 and "system" in done.output
    assert not marker.exists()
    raw = pickle.dumps(Payload(marker), protocol=4)
    with pytest.raises(UnsafePickle):
        torch_state(raw)
    assert scan_pickle(raw).dangerous == [f"{os.system.__module__}.system"]
    assert not marker.exists()


def test_strided_tensor_view() -> None:
    """A transposed view shares its storage: offset and strides are honoured."""
    data, storages = g.torch_pickle({"t": np.arange(6, dtype=np.float32).reshape(2, 3)}, "F32")
    state = torch_state(data)
    ref = state["t"]
    assert (ref.shape, ref.stride, ref.storage_numel, ref.dtype) == ((2, 3), (3, 1), 6, "F32")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("a/data.pkl", data.replace(b"K\x02K\x03\x86", b"K\x03K\x02\x86").replace(
            b"K\x03K\x01\x86", b"K\x01K\x03\x86"))
        zf.writestr("a/data/0", storages["0"])
        zf.writestr("a/version", b"3")
    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"strided-{os.getpid()}.pt"
    path.write_bytes(buf.getvalue())
    try:
        got = _load_all(path)["t"]
    finally:
        path.unlink()
    assert np.array_equal(got, np.arange(6, dtype=np.float32).reshape(2, 3).T)


def _tensor(name: str, array: np.ndarray, dtype: int) -> bytes:
    dims = b"".join(pb(1, d) for d in array.shape)
    return dims + pb(2, dtype) + pb(8, name.encode()) + pb(9, array.tobytes())


def _node(op: str, inputs: list[str], outputs: list[str], **ints: int) -> bytes:
    body = b"".join(pb(1, i.encode()) for i in inputs) + b"".join(
        pb(2, o.encode()) for o in outputs) + pb(4, op.encode())
    for key, value in ints.items():
        body += pb(5, pb(1, key.encode()) + pb(3, value) + pb(20, 2))
    return pb(1, body)


def test_onnx_int8_patterns_and_matmul_layout(tmp_path: Path) -> None:
    w = RNG.standard_normal((96, 64)).astype(np.float32)  # stored (in, out) for MatMul
    scale = (np.abs(w).max(axis=0) / 127).astype(np.float32)  # per output channel
    q = np.round(w / scale).astype(np.int8)
    w2 = RNG.standard_normal((64, 32)).astype(np.float32)
    s2 = (np.abs(w2).max(axis=0, keepdims=True) / 127).astype(np.float32)
    q2 = np.round(w2 / s2).astype(np.int8)
    graph = (_node("DequantizeLinear", ["w_q", "w_s"], ["w"], axis=1)
             + _node("MatMul", ["x", "w"], ["h"])
             + _node("Cast", ["w2_q"], ["w2_f"], to=1)
             + _node("Mul", ["w2_f", "w2_s"], ["w2"])
             + _node("MatMul", ["h", "w2"], ["y"])
             + pb(5, _tensor("w_q", q, 3)) + pb(5, _tensor("w_s", scale, 1))
             + pb(5, _tensor("w2_q", q2, 3)) + pb(5, _tensor("w2_s", s2, 1))
             + pb(5, _tensor("bias", W["layer.0.b"], 1)))
    model = pb(1, 8) + pb(2, b"test") + pb(7, graph) + pb(8, pb(2, 17))
    path = tmp_path / "m.onnx"
    path.write_bytes(model)
    with open_weights(path) as weights:
        infos = weights.by_name()
        assert sorted(infos) == ["bias", "w", "w2"]  # the int8 parts are folded in
        assert infos["w"].shape == (64, 96) and infos["w2"].shape == (32, 64)
        got = weights.load(infos["w"])
        got2 = weights.load(infos["w2"])
    assert np.allclose(got, (q.astype(np.float32) * scale).T)
    assert np.allclose(got2, (q2.astype(np.float32) * s2).T)
    assert np.abs(got - w.T).max() <= scale.max() / 2 + 1e-6


def test_onnx_damaged_protobuf_is_a_model_error_naming_the_file(tmp_path: Path) -> None:
    """Found while indexing (field number 0, a cut graph) or only at load (a packed int whose
    last varint is cut): a ``ModelError`` naming the file, never the wire reader's own error."""
    def model(values: bytes, tail: bytes = b"") -> bytes:  # one int32 tensor "p" of 2 values
        tensor = pb(1, 2) + pb(2, 6) + pb(8, b"p") + pb(5, values) + tail
        return pb(1, 8) + pb(8, pb(2, 17)) + pb(7, pb(5, tensor))

    assert _load_all(_write(tmp_path / "ok.onnx", model(b"\x01\x7f")))["p"].tolist() == [1, 127]
    cases = {"zero.onnx": (model(b"\x01\x7f", b"\x00\x00"), r"\(field number 0\)"),
             "cut.onnx": (model(b"\x01\x7f")[:-1], r"\(field runs past its message\)"),
             "packed.onnx": (model(b"\x01\x80"), r"p: unreadable ONNX protobuf \(truncated varint")}
    for name, (data, why) in cases.items():
        with pytest.raises(ModelError, match=rf"{name}: .*{why}"):
            _load_all(_write(tmp_path / name, data))


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_numpy_npy_npz_and_object_arrays(tmp_path: Path) -> None:
    np.save(tmp_path / "a.npy", W["emb"])
    np.save(tmp_path / "f.npy", np.asfortranarray(W["layer.0.w"]))
    np.savez(tmp_path / "b.npz", **{k.replace(".", "_"): v for k, v in W.items()})
    assert np.array_equal(_load_all(tmp_path / "a.npy")["a"], W["emb"])
    assert np.array_equal(_load_all(tmp_path / "f.npy")["f"], W["layer.0.w"])
    assert np.array_equal(_load_all(tmp_path / "b.npz")["layer_0_w"], W["layer.0.w"])
    np.save(tmp_path / "o.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ModelError, match="o.npy: object arrays"):
        open_weights(tmp_path / "o.npy")


def test_canonical_hash_ignores_container_name_and_layout(tmp_path: Path) -> None:
    a = canonical_hash(W["layer.0.w"])
    assert a == canonical_hash(np.ascontiguousarray(W["layer.0.w"].T))
    assert a == canonical_hash(W["layer.0.w"].astype(np.float64))
    assert a != canonical_hash(W["layer.0.w"] + 1e-3)
    renamed = {"x.y": W["layer.0.w"]}
    g.write_safetensors(tmp_path / "r.safetensors", renamed)
    g.write_torch_zip(tmp_path / "r.pt", {"other": W["layer.0.w"].T.copy()}, "F32")
    assert canonical_hash(_load_all(tmp_path / "r.safetensors")["x.y"]) == a
    assert canonical_hash(_load_all(tmp_path / "r.pt")["other"]) == a


@pytest.mark.parametrize("data,why", [
    (b"", "not a model format"),
    (b"\x00" * 64, "not a model format"),
    (struct.pack("<Q", 20) + b'{"a": {"dtype": "F3', "header length"),
    (struct.pack("<Q", 30) + b'{"a": {"dtype": "F32"}}       ', "bad dtype"),
    (struct.pack("<Q", 72) + b'{"a": {"dtype": "F32", "shape": [1000], "data_offsets": [0, 4000]}}'
     .ljust(72), "runs past"),
    (b"GGUF\x03\x00\x00\x00" + b"\xff" * 40, "unreadable GGUF"),
    (b"\x08\x07\x3a\xff\xff\xff\xff\x0f", "unreadable ONNX"),
    (b"PK\x03\x04" + b"\x00" * 60, "not a model format"),
])
def test_hostile_files_give_clear_errors(tmp_path: Path, data: bytes, why: str) -> None:
    path = tmp_path / "bad.bin"
    path.write_bytes(data)
    with pytest.raises(ModelError, match=why) as caught:
        with open_weights(path) as weights:
            for _info, _array in weights.iter_arrays():
                pass
    assert "bad.bin" in str(caught.value)


def test_inspect_cli_json(tmp_path: Path) -> None:
    import json

    from seawall.cli import main

    path = g.write_safetensors(tmp_path / "m.safetensors", W)
    done = CliRunner().invoke(main, ["model", "inspect", str(path), "--format", "json"])
    assert done.exit_code == 0, done.output
    report = json.loads(done.output)
    assert (report["format"], report["tensors"], report["parameters"]) == (
        "safetensors", 3, 64 * 96 + 64 + 128 * 32)
    assert report["dtypes"] == {"F32": 3}
    by_name = {t["name"]: t for t in report["tensor_list"]}
    assert by_name["layer.0.w"]["hash"] == canonical_hash(W["layer.0.w"])
    text = CliRunner().invoke(main, ["model", "inspect", str(path), "--no-hashes"])
    assert "safetensors, 3 tensors, 10,304 parameters" in text.output and "sha256" not in text.output


def test_cli_errors_name_the_file_and_exit_2(tmp_path: Path) -> None:
    from seawall.cli import main

    good = g.write_safetensors(tmp_path / "m.safetensors", W)
    bad_fp = tmp_path / "x.swmf"
    bad_fp.write_bytes(b"SWMF" + struct.pack("<HHQ", 1, 0, 10_000) + b"{}")
    runner = CliRunner()
    done = runner.invoke(main, ["model", "compare", str(bad_fp), str(good)])
    assert done.exit_code == 2 and "x.swmf: fingerprint header length" in done.output
    newer = tmp_path / "new.swmf"
    newer.write_bytes(b"SWMF" + struct.pack("<HHQ", 9, 0, 2) + b"{}")
    done = runner.invoke(main, ["model", "compare", str(newer), str(good)])
    assert done.exit_code == 2 and "fingerprint version 9" in done.output
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    done = runner.invoke(main, ["model", "fingerprint", str(text), "--out", str(tmp_path / "o")])
    assert done.exit_code == 2 and "notes.txt: not a model format" in done.output
