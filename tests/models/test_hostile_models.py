"""Hostile weights files, built in code: each is refused with an error naming the file.

Every case here once crashed, read out of bounds or allocated what a header claimed; the
reader must now check the claim against the bytes actually stored before trusting it.
"""

from __future__ import annotations

import io
import json
import pickle
import struct
import subprocess
import sys
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from seawall.models import pickles
from seawall.models.pickles import PickleError, scan_pickle, torch_state
from seawall.models.readers import open_weights
from seawall.models.tensors import ModelError
from builders import pb
from test_readers import _node, _tensor


def _int(n: int) -> bytes:
    return pickle.dumps(n, protocol=2)[2:-1]


def _str(s: str) -> bytes:
    return pickle.dumps(s, protocol=2)[2:-1]


def _tuple(xs: tuple[int, ...]) -> bytes:
    return b"(" + b"".join(_int(x) for x in xs) + b"t"


def tensor_pickle(offset: int, shape: tuple[int, ...], stride: tuple[int, ...],
                  numel: int) -> bytes:
    """A state dict ``{"t": tensor}`` whose layout says whatever the test wants."""
    return (b"\x80\x02}" + _str("t") + b"ctorch._utils\n_rebuild_tensor_v2\n((" + _str("storage")
            + b"ctorch\nFloatStorage\n" + _str("0") + _str("cpu") + _int(numel) + b"tQ"
            + _int(offset) + _tuple(shape) + _tuple(stride) + b"\x89}tRs.")


def torch_zip(path: Path, data_pkl: bytes, storage: bytes) -> Path:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a/data.pkl", data_pkl)
        zf.writestr("a/data/0", storage)
        zf.writestr("a/version", b"3")
    path.write_bytes(buf.getvalue())
    return path


STORE = np.arange(1000, dtype=np.float32)


def _load(path: Path) -> dict[str, np.ndarray]:
    with open_weights(path) as weights:
        return {info.name: array for info, array in weights.iter_arrays()}


def test_torch_honest_layout_still_loads(tmp_path: Path) -> None:
    path = torch_zip(tmp_path / "ok.pt", tensor_pickle(10, (3, 4), (1, 3), 1000), STORE.tobytes())
    got = _load(path)["t"]
    want = np.lib.stride_tricks.as_strided(STORE[10:], (3, 4), (4, 12))
    assert np.array_equal(got, want)


def test_torch_negative_offset_is_refused(tmp_path: Path) -> None:
    """``flat[-10:]`` then ``as_strided`` over 1000 values read memory past the array."""
    path = torch_zip(tmp_path / "neg.pt", tensor_pickle(-10, (1000,), (1,), 1000), STORE.tobytes())
    with pytest.raises(ModelError, match=r"neg\.pt: .*bad layout"):
        _load(path)


def test_torch_stride_zero_view_cannot_claim_gigabytes(tmp_path: Path) -> None:
    path = torch_zip(tmp_path / "s0.pt", tensor_pickle(0, (1 << 34,), (0,), 1000), STORE.tobytes())
    with pytest.raises(ModelError, match=r"s0\.pt: tensor t has a layout its storage cannot hold"):
        _load(path)


def test_torch_storage_bomb_reads_only_what_the_tensor_spans(tmp_path: Path) -> None:
    """A 64 MB storage member (deflated to ~64 KB) behind a 1000-value tensor."""
    path = torch_zip(tmp_path / "bomb.pt", tensor_pickle(0, (1000,), (1,), 1000),
                     STORE.tobytes() + bytes(64 << 20))
    tracemalloc.start()
    try:
        got = _load(path)["t"]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert np.array_equal(got, STORE) and peak < 8 << 20


def test_deeply_nested_tuple_key_does_not_crash_the_walker() -> None:
    """300k nested TUPLE1 used as a dict key: ``hash()`` recursed off the C stack (SIGSEGV)."""
    code = ("import sys\nfrom seawall.models.pickles import scan_pickle, torch_state\n"
            "data = b'\\x80\\x02}N' + b'\\x85' * 300000 + b'Ns.'\n"
            "print(scan_pickle(data).complete, len(torch_state(data)))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert (done.returncode, done.stdout.strip()) == (0, "True 0")


def test_memo_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pickles, "MAX_MEMO", 100)
    data = b"\x80\x02N" + b"".join(b"r" + struct.pack("<I", i) for i in range(200)) + b"."
    with pytest.raises(PickleError, match="memo too large"):
        torch_state(data)
    assert scan_pickle(data).error == "pickle memo too large to walk"
    assert torch_state(data[:2 + 1 + 5 * 50] + b".") is None  # under the limit: fine


def _safetensors(tmp_path: Path, entry: dict[str, object], data: bytes) -> Path:
    header = json.dumps({"a": entry}).encode()
    path = tmp_path / "bad.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + data)
    return path


@pytest.mark.parametrize("offsets", [["0", "4"], [-8, 0], [8, 0], [0.0, 8.0]])
def test_safetensors_offsets_must_be_ordered_integers(tmp_path: Path, offsets: list) -> None:
    path = _safetensors(tmp_path, {"dtype": "F32", "shape": [2], "data_offsets": offsets},
                        bytes(16))
    with pytest.raises(ModelError, match=r"bad\.safetensors: tensor 'a' has a bad dtype"):
        _load(path)


def _npy(shape: tuple[int, ...], descr: str = "<f4") -> bytes:
    header = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}".ljust(117)
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", 118) + header.encode() + b"\n" + bytes(16)


def test_npy_and_npz_shapes_larger_than_the_file(tmp_path: Path) -> None:
    (tmp_path / "huge.npy").write_bytes(_npy((10**11,)))
    with pytest.raises(ModelError, match=r"huge\.npy: array of shape .* runs past the end"):
        _load(tmp_path / "huge.npy")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("w.npy", _npy((10**11,)))
    (tmp_path / "huge.npz").write_bytes(buf.getvalue())
    with pytest.raises(ModelError, match=r"huge\.npz: w\.npy claims shape"):
        open_weights(tmp_path / "huge.npz")


def _onnx(path: Path, graph: bytes) -> Path:
    path.write_bytes(pb(1, 8) + pb(7, graph) + pb(8, pb(2, 17)))
    return path


def test_onnx_scale_that_would_broadcast_the_weight_up_is_refused(tmp_path: Path) -> None:
    """q (4096,) times a (4096, 1) scale would be 16M values from 4 KB: an error instead."""
    q = np.ones(4096, dtype=np.int8)
    scale = np.ones((4096, 1), dtype=np.float32)
    graph = (_node("Cast", ["q"], ["qf"], to=1) + _node("Mul", ["qf", "s"], ["w"])
             + pb(5, _tensor("q", q, 3)) + pb(5, _tensor("s", scale, 1)))
    path = _onnx(tmp_path / "bcast.onnx", graph)
    with pytest.raises(ModelError, match=r"bcast\.onnx: w: scale of shape \(4096, 1\) does not"):
        _load(path)


def test_onnx_packed_values_beyond_the_dims_stop_early(tmp_path: Path) -> None:
    packed = b"\x01" * 200_000  # 200k int32 values packed for a tensor of 2
    body = pb(1, 2) + pb(2, 6) + pb(8, b"t") + pb(5, packed)
    path = _onnx(tmp_path / "packed.onnx", pb(5, body))
    with pytest.raises(ModelError, match=r"packed\.onnx: t has 3 values, expected 2"):
        _load(path)


def test_cli_inspect_of_hostile_files_exits_2_naming_the_file(tmp_path: Path) -> None:
    from seawall.cli import main

    files = [torch_zip(tmp_path / "neg.pt", tensor_pickle(-10, (1000,), (1,), 1000),
                       STORE.tobytes()),
             torch_zip(tmp_path / "s0.pt", tensor_pickle(0, (1 << 34,), (0,), 1000),
                       STORE.tobytes()),
             _safetensors(tmp_path, {"dtype": "F32", "shape": [1], "data_offsets": ["0", "4"]},
                          bytes(4))]
    (tmp_path / "huge.npy").write_bytes(_npy((10**11,)))
    (tmp_path / "obj.npy").write_bytes(_npy((2,), "|O"))
    files += [tmp_path / "huge.npy", tmp_path / "obj.npy"]
    for path in files:
        done = CliRunner().invoke(main, ["model", "inspect", str(path)])
        assert done.exit_code == 2, (path, done.output, done.exception)
        assert done.output.startswith(f"error: {path}: ") and "Traceback" not in done.output


@pytest.mark.parametrize("module,name", [
    ("timeit", "timeit"), ("numpy.testing._private.utils", "runstring"), ("pydoc", "pipepager"),
    ("_posixsubprocess", "fork_exec"), ("_operator", "attrgetter"), ("torch.serialization", "load"),
    ("functools", "partial"), ("cProfile", "run"), ("pdb", "run"),
])
def test_known_code_running_globals_are_dangerous(module: str, name: str) -> None:
    """Each runs code, a command or a nested unpickle: critical, not a medium 'unknown class'."""
    data = f"c{module}\n{name}\n(S'x'\ntR.".encode()
    assert scan_pickle(data).dangerous == [f"{module}.{name}"]
    with pytest.raises(pickles.UnsafePickle):
        torch_state(data)


HOSTILE_NAME = "<script>alert(1)</script>.weight"


def _small_model(tmp_path: Path, name: str) -> Path:
    import weightgen as g

    rng = np.random.default_rng(1)
    return g.write_safetensors(tmp_path / name, {
        HOSTILE_NAME: rng.standard_normal((48, 32)).astype(np.float32),
        "x.bias": rng.standard_normal(48).astype(np.float32)})


def test_html_report_escapes_hostile_tensor_and_file_names(tmp_path: Path) -> None:
    from seawall.cli import main

    base = _small_model(tmp_path, "<img src=x onerror=alert(2)>.safetensors")
    page = tmp_path / "r.html"
    done = CliRunner().invoke(main, ["model", "compare", str(base), str(base), "--format", "html",
                                     "-o", str(page)])
    assert done.exit_code == 1, done.output  # identical
    text = page.read_text()
    assert "Verdict: identical" in text
    assert "<script" not in text and "<img" not in text and "&lt;img src=x" in text
    done = CliRunner().invoke(main, ["model", "inspect", str(base), "--format", "json"])
    assert json.loads(done.output)["tensor_list"][0]["name"] == HOSTILE_NAME


def test_cli_refuses_a_fingerprint_as_suspect_and_unwritable_output(tmp_path: Path) -> None:
    from seawall.cli import main

    base = _small_model(tmp_path, "m.safetensors")
    fp = tmp_path / "m.swmf"
    runner = CliRunner()
    assert runner.invoke(main, ["model", "fingerprint", str(base), "--out", str(fp)]).exit_code == 0
    done = runner.invoke(main, ["model", "compare", str(base), str(fp)])
    assert done.exit_code == 2 and f"error: {fp}: a fingerprint can only be the base" in done.output
    assert runner.invoke(main, ["model", "compare", str(fp), str(base)]).exit_code == 1
    done = runner.invoke(main, ["model", "fingerprint", str(base), "--out",
                                str(tmp_path / "missing" / "o.swmf")])
    assert done.exit_code == 2 and "missing/o.swmf: cannot write (No such file" in done.output
    done = runner.invoke(main, ["model", "inspect", str(base), "-o", str(tmp_path)])
    assert done.exit_code == 2  # a directory: click refuses it as a bad argument


def test_cli_backstop_names_the_file_for_unexpected_reader_errors(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A reader failure nobody anticipated still exits 2 naming the file, no traceback."""
    from seawall.cli import main
    from seawall.models.readers.safetensors import SafetensorsFile

    def broken(self: SafetensorsFile, info: object) -> np.ndarray:
        raise ValueError("buffer is smaller than requested size")

    monkeypatch.setattr(SafetensorsFile, "load", broken)
    base = _small_model(tmp_path, "m.safetensors")
    done = CliRunner().invoke(main, ["model", "inspect", str(base)])
    assert done.exit_code == 2
    assert done.output == (f"error: {base}: unreadable (ValueError: buffer is smaller than "
                           "requested size)\n")


def test_scan_finds_a_payload_behind_a_harmless_prefix(tmp_path: Path) -> None:
    """``I0\\n0`` (push 0, pop it) before ``cos\\nsystem``: loads and runs like the bare payload."""
    from seawall.detectors.base import all_detectors
    from seawall.engine import Engine, Target

    only_weights = frozenset(all_detectors()) - {"weights"}

    marker = tmp_path / "ran"
    payload = f"cos\nsystem\n(S'touch {marker}'\ntR.".encode()
    for prefix in (b"I0\n0", b"N0", b"(t0"):
        (tmp_path / "model.bin").write_bytes(prefix + payload)
        result = Engine(disabled_detectors=only_weights).scan_target(
            Target("t", path=tmp_path / "model.bin"))
        unsafe = [f for f in result.findings if f.rule == "weights.unsafe-pickle"]
        assert [(f.severity.label, f.evidence["dangerous"]) for f in unsafe] == [
            ("critical", ["os.system"])], prefix
    assert not marker.exists()
    quiet = tmp_path / "notes.txt"
    for text in (b"In short: nothing to see.", b"I0\nhello.", b"cats\ndogs\nno pickle here."):
        quiet.write_bytes(text)
        found = Engine(disabled_detectors=only_weights).scan_target(
            Target("t", path=quiet)).findings
        assert [f.rule for f in found if f.rule.startswith("weights.")] == [], text


def test_legacy_checkpoint_with_a_too_deep_state_is_a_model_error(tmp_path: Path) -> None:
    magic = pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2)
    head = magic + pickle.dumps(1001, protocol=2) + pickle.dumps({}, protocol=2)
    path = tmp_path / "deep.bin"
    path.write_bytes(head + b"\x80\x02N" + b"\x85" * 40 + b"." + pickle.dumps([], protocol=2))
    with pytest.raises(ModelError, match=r"deep\.bin: state dict nested too deep"):
        open_weights(path)


def test_scan_walks_the_pickle_inside_an_object_npy(tmp_path: Path) -> None:
    """``np.load(allow_pickle=True)`` unpickles an object array's body: walk it too."""
    from seawall.detectors.base import all_detectors
    from seawall.engine import Engine, Target

    marker = tmp_path / "ran"
    header = "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }".ljust(117) + "\n"
    body = f"cposix\nsystem\n(S'touch {marker}'\ntR.".encode()
    (tmp_path / "evil.npy").write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", 118)
                                        + header.encode() + body)
    np.save(tmp_path / "plain.npy", np.arange(4.0))
    only_weights = frozenset(all_detectors()) - {"weights"}
    found = Engine(disabled_detectors=only_weights).scan_target(Target("t", path=tmp_path))
    assert sorted((f.rule, f.path, f.severity.label) for f in found.findings) == [
        ("weights.numpy", "evil.npy", "info"), ("weights.numpy", "plain.npy", "info"),
        ("weights.unsafe-pickle", "evil.npy", "critical")]
    assert not marker.exists()


def test_dotted_protocol_4_names_reaching_os_are_dangerous() -> None:
    """``STACK_GLOBAL('torch', 'serialization.os.system')`` resolves by getattr to os.system."""
    data = (b"\x80\x04" + _str("torch") + _str("serialization.os.system") + b"\x93"
            + _str("id") + b"\x85R.")
    assert scan_pickle(data).dangerous == ["torch.serialization.os.system"]
    harmless = b"\x80\x04" + _str("collections") + _str("OrderedDict") + b"\x93)R."
    assert scan_pickle(harmless).dangerous == []
    assert scan_pickle(b"\x80\x04" + _str("mylab.models") + _str("Encoder") + b"\x93)R.").unsafe \
        == ["mylab.models.Encoder"]


def test_a_huge_file_posing_as_a_fingerprint_is_not_read_whole(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from seawall.models import fingerprint

    path = tmp_path / "big.swmf"
    path.write_bytes(b"SWMF" + struct.pack("<HHQ", 1, 0, 2) + b"{}" + bytes(4096))
    monkeypatch.setattr(fingerprint, "MAX_FINGERPRINT", 1024)
    with pytest.raises(ModelError, match=r"big\.swmf: 4,114 bytes is too large for a fingerprint"):
        fingerprint.Fingerprint.load(path)
