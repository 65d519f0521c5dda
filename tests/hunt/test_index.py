"""The index file: round trip, versioning, incremental add, no source text, hostile files."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from click.testing import CliRunner

from builders import write_tree
from hunt.fixtures import BILLING_TS, PRIVATE, RETRY_JS, TOKENS_PY

pytest.importorskip("tree_sitter")
np = pytest.importorskip("numpy")

from seawall.cli import main  # noqa: E402
from seawall.hunt.index import MAGIC, VERSION, Index, IndexFormatError  # noqa: E402
from seawall.hunt.lexer import NORMALISER  # noqa: E402


def run(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture
def index_file(tmp_path: Path) -> Path:
    write_tree({k: v.encode() for k, v in PRIVATE.items()}, tmp_path / "private")
    index = tmp_path / "private.idx"
    result = run("index", "add", str(tmp_path / "private"), "--index", str(index))
    assert result.exit_code == 0, result.output
    return index


def test_round_trip(index_file: Path, tmp_path: Path) -> None:
    index = Index.load(index_file)
    assert sorted((f.label, f.path, f.language, f.lines) for f in index.files) == [
        ("private", "server/tokens.py", "python", 30),
        ("private", "src/billing/invoice.ts", "typescript", 46),
        ("private", "src/constants.ts", "typescript", 3),
        ("private", "src/net/retry.js", "javascript", 27),
    ]
    copy = tmp_path / "copy.idx"
    index.save(copy)
    again = Index.load(copy)
    assert copy.read_bytes() == index_file.read_bytes()
    for name in ("hash", "file", "exact", "first", "last"):
        assert np.array_equal(again.kgram[name], index.kgram[name])
    assert bool(np.all(np.diff(again.kgram["hash"].astype(np.float64)) >= 0))
    assert again.info() == index.info()


def test_index_holds_no_source_text(index_file: Path) -> None:
    raw = index_file.read_bytes().lower()
    for secret in ("zephyrine", "equota_kraken", "quill-ops", "unitcents", "invoicebuilder",
                   "withretry", "tokenminter", "subtotal"):
        assert secret.encode() not in raw
    assert b"src/billing/invoice.ts" in raw  # paths are kept: findings must name originals


def test_future_version_is_refused(index_file: Path, tmp_path: Path) -> None:
    data = bytearray(index_file.read_bytes())
    struct.pack_into("<I", data, len(MAGIC), VERSION + 1)
    future = tmp_path / "future.idx"
    future.write_bytes(bytes(data))
    with pytest.raises(IndexFormatError,
                       match=rf"version {VERSION + 1} is newer than this seawall reads"):
        Index.load(future)
    result = run("hunt", str(tmp_path), "--index", str(future))
    assert result.exit_code == 2
    assert f"future.idx: index format version {VERSION + 1} is newer" in result.output
    assert "Traceback" not in result.output


def test_another_normaliser_is_refused(index_file: Path, tmp_path: Path) -> None:
    """Fingerprints depend on the token normalisation: an index from another one would
    silently find nothing, so it is refused with a rebuild hint."""
    data = index_file.read_bytes()
    mine = f'"normaliser":{NORMALISER},'.encode()
    assert data.count(mine) == 1
    other = tmp_path / "other.idx"
    other.write_bytes(data.replace(mine, b'"normaliser":7,'))
    result = run("hunt", str(tmp_path), "--index", str(other))
    assert result.exit_code == 2
    assert "index made by token normaliser 7" in result.output
    assert "rebuild it (remove the file, then `seawall index add` your sources" in result.output


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty", "header", "order"])
def test_corrupt_index_is_a_clear_error(index_file: Path, tmp_path: Path, damage: str) -> None:
    data = bytearray(index_file.read_bytes())
    hlen = struct.unpack_from("<I", data, 12)[0]
    if damage == "truncate":
        data = data[: len(data) - 100]
    elif damage == "garbage":
        data = bytearray(b"PK\x03\x04" + bytes(range(256)) * 4)
    elif damage == "empty":
        data = bytearray()
    elif damage == "header":  # the JSON object no longer opens
        assert data[16] == ord("{")
        data[16] = ord("[")
    else:  # swap two hashes so they are out of order
        start = 16 + hlen + (-(16 + hlen) % 8)
        a, b = bytes(data[start:start + 8]), bytes(data[start + 8:start + 16])
        data[start:start + 8], data[start + 8:start + 16] = b, a
    bad = tmp_path / "bad.idx"
    bad.write_bytes(bytes(data))
    for args in (["hunt", str(tmp_path / "private"), "--index", str(bad)],
                 ["index", "info", str(bad)]):
        result = run(*args)
        assert result.exit_code == 2, (damage, result.output)
        assert "bad.idx" in result.output and "error:" in result.output
        assert "Traceback" not in result.output


def test_incremental_add_replaces_a_label(tmp_path: Path) -> None:
    index = tmp_path / "multi.idx"
    write_tree({"billing.ts": BILLING_TS.encode()}, tmp_path / "web")
    write_tree({"tokens.py": TOKENS_PY.encode()}, tmp_path / "server")
    assert run("index", "add", str(tmp_path / "web"), "--index", str(index)).exit_code == 0
    assert run("index", "add", str(tmp_path / "server"), "--index", str(index),
               "--label", "srv").exit_code == 0
    before = Index.load(index)
    assert sorted((f.label, f.path) for f in before.files) == [
        ("srv", "tokens.py"), ("web", "billing.ts")]
    server_rows = int((before.kgram["file"] == [f.label for f in before.files].index("srv")).sum())
    # the web project changes: billing.ts is gone, retry.js is new
    (tmp_path / "web" / "billing.ts").unlink()
    (tmp_path / "web" / "retry.js").write_text(RETRY_JS)
    assert run("index", "add", str(tmp_path / "web"), "--index", str(index)).exit_code == 0
    after = Index.load(index)
    assert sorted((f.label, f.path) for f in after.files) == [
        ("srv", "tokens.py"), ("web", "retry.js")]
    srv = [f.label for f in after.files].index("srv")
    assert int((after.kgram["file"] == srv).sum()) == server_rows
    assert set(after.labels) == {"srv", "web"}
    info = json.loads(run("index", "info", str(index), "--format", "json").output)
    assert info["files"] == 2 and info["labels"]["web"]["files"] == 1
    # the old billing.ts no longer matches anything
    result = run("hunt", str(tmp_path / "web"), "--index", str(index), "--format", "json")
    found = {f["evidence"].get("original") for f in json.loads(result.output)["findings"]}
    assert found == {"retry.js", None}  # the copy itself, and the artifact summary


def test_index_info_text(index_file: Path) -> None:
    result = run("index", "info", str(index_file))
    assert result.exit_code == 0
    assert "format version 2" in result.output
    assert "4 file(s), 106 line(s)" in result.output


def test_sections_stay_sorted_by_hash_then_file_across_label_updates() -> None:
    """The build sorts by hash alone (stable), relying on rows of one hash arriving in
    file order: check it against a full (hash, file) sort after adds and a replace."""
    from seawall.hunt.fingerprint import Fingerprint

    rng = np.random.default_rng(1)

    def fp(n: int) -> Fingerprint:
        h = rng.integers(0, 50, size=n).astype(np.uint64)  # many hashes shared by files
        z = np.zeros(n, np.uint32)
        return Fingerprint(kgrams=h, exact=z, first=z, last=z, shingles=h[: n // 2].copy(),
                           shingle_first=z[: n // 2], shingle_last=z[: n // 2], whole=0,
                           tokens=n, lines=1, anchors=h[:5].copy(), string_anchors=h[5:9].copy())

    index = Index()
    index.replace_label("a", ["x"], [(f"a{i}", "typescript", fp(30)) for i in range(5)])
    index.replace_label("b", ["y"], [(f"b{i}", "typescript", fp(30)) for i in range(5)])
    index.replace_label("a", ["x"], [(f"a{i}", "typescript", fp(30)) for i in range(3)])
    assert [f.path for f in index.files] == ["b0", "b1", "b2", "b3", "b4", "a0", "a1", "a2"]
    for section in (index.kgram, index.shingle, index.anchor):
        order = np.lexsort((section["file"], section["hash"]))
        assert np.array_equal(order, np.arange(len(order)))
        assert len(order) > 40


def test_packing_in_small_chunks_builds_the_same_index(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """``index add`` packs fingerprints into chunks as they are collected; where the chunk
    boundaries fall must not change a byte of the index."""
    from seawall.hunt.build import collect
    from seawall.hunt.index import Packer

    write_tree({k: v.encode() for k, v in PRIVATE.items()}, tmp_path / "src")
    saved = []
    for rows in (Packer.CHUNK_ROWS, 7):
        monkeypatch.setattr(Packer, "CHUNK_ROWS", rows)
        packer = Packer()
        items, errors = collect([str(tmp_path / "src")], packer=packer)
        assert items == [] and errors == [] and len(packer) == len(PRIVATE)
        index = Index()
        index.replace_label("x", ["src"], packer)
        assert len(packer) == len(PRIVATE) and packer.take(0) == {
            "kgram": [], "shingle": [], "anchor": []}  # consumed
        path = tmp_path / f"chunks-{rows}.idx"
        index.save(path)
        saved.append(path.read_bytes())
    assert saved[0] == saved[1]
