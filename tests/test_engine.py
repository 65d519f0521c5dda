"""The engine: targets in isolation, deterministic output, big lines, failing detectors,
and no handle or file left behind."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import pytest
from builders import (
    FIRST_PARTY_MAP,
    compress,
    found,
    opener_engine,
    pack,
    scan_path,
    source_map,
    tar_bytes,
    write_tree,
    zip_bytes,
)

from seawall.artifacts import base
from seawall.artifacts.base import Content
from seawall.detectors.base import Detector, FileView
from seawall.engine import Target
from seawall.findings import Finding

TREE = {
    "package/dist/cli.js": b"run()\n//# sourceMappingURL=cli.js.map\n",
    "package/dist/cli.js.map": FIRST_PARTY_MAP,
    "package/dist/old.js": b"old()\n//# sourceMappingURL=old.js.map\n",
    "package/dist/cdn.js": b"x()\n//# sourceMappingURL=https://cdn.example.test/cdn.js.map\n",
    "package/dist/cdn2.js": b"y()\n//# sourceMappingURL=https://cdn.example.test/cdn.js.map\n",
    "package/types/index.d.ts.map": source_map({"../src/index.ts": None}),
    "package/lib/deps.zip": zip_bytes({"vendor.js.map": source_map({"node_modules/x/i.js": "x"})}),
}
EXPECTED = [
    ("sourcemap.embedded-source", "package/dist/cli.js.map"),
    ("sourcemap.remote-map", "package/dist/cdn.js"),
    ("sourcemap.embedded-dependencies", "package/lib/deps.zip!/vendor.js.map"),
    ("sourcemap.source-paths", "package/types/index.d.ts.map"),
    ("sourcemap.missing-map", "package/dist/old.js"),
]


@pytest.mark.parametrize("fmt", ["dir", "tgz", "zip"])
def test_same_findings_in_the_same_order_whatever_the_packaging(tmp_path: Path, fmt: str) -> None:
    target = pack(TREE, fmt, tmp_path)
    first, second = scan_path(target, name="t"), scan_path(target, name="t")
    assert found(first) == EXPECTED
    assert [f.to_dict() for f in first.findings] == [f.to_dict() for f in second.findings]


def test_same_problem_in_two_places_is_one_finding_with_two_locations(tmp_path: Path) -> None:
    result = scan_path(pack(TREE, "tgz", tmp_path))
    [remote] = [f for f in result.findings if f.rule == "sourcemap.remote-map"]
    assert [loc.path for loc in remote.locations] == ["package/dist/cdn.js", "package/dist/cdn2.js"]


@pytest.mark.parametrize("fmt", ["dir", "tgz"])
def test_a_reference_at_the_end_of_a_10_mb_line(tmp_path: Path, fmt: str) -> None:
    # Peers stop reading a line at 64 KiB; the reference is 10 MB in.
    line = (
        b"var a="
        + b"0," * (5 * 1024 * 1024)
        + b"1;//# sourceMappingURL=https://maps.example.test/app.js.map"
    )
    assert b"\n" not in line and len(line) > 10_000_000
    result = scan_path(pack({"dist/app.min.js": line}, fmt, tmp_path))
    assert found(result) == [("sourcemap.remote-map", "dist/app.min.js")]


def test_several_targets_each_with_its_own_result(tmp_path: Path) -> None:
    good = pack({"a.js.map": FIRST_PARTY_MAP}, "tgz", tmp_path / "good")
    files = write_tree(
        {"one.js.map": FIRST_PARTY_MAP, "two.whl": zip_bytes({"b.js.map": FIRST_PARTY_MAP})},
        tmp_path / "release",
    )
    targets = [
        Target("unresolved", error="registry did not answer"),
        Target("missing", path=tmp_path / "nope.tgz"),
        Target("good", path=good),
        Target("release", files=[files / "one.js.map", files / "two.whl"]),
        Target("empty"),
    ]
    result = opener_engine().scan(targets)
    assert [(t.target, t.errors) for t in result.targets] == [
        ("unresolved", ["unresolved: registry did not answer"]),
        ("missing", ["missing: cannot read: No such file or directory"]),
        ("good", []),
        ("release", []),
        ("empty", ["empty: nothing to scan"]),
    ]
    assert [(f.target, f.path) for f in result.findings] == [
        ("good", "a.js.map"),
        ("release", "one.js.map"),
        ("release", "two.whl!/b.js.map"),
    ]


class _Crashing(Detector):
    """Fails on every file (kept out of the registry: it has no class-level ``name``)."""

    def scan(self, view: FileView) -> Iterable[Finding]:
        raise RuntimeError(f"boom on {view.inner}")

    def finish(self) -> Iterable[Finding]:
        raise RuntimeError("boom at the end")


def test_a_failing_detector_costs_only_its_own_findings(tmp_path: Path) -> None:
    crashing = _Crashing()
    crashing.name = "crashing"  # type: ignore[misc]
    engine = opener_engine()
    builtin = engine.detectors
    engine.detectors = lambda: [crashing, *builtin()]  # type: ignore[method-assign]
    target = pack({"lib/a.zip": zip_bytes({"a.js.map": FIRST_PARTY_MAP})}, "tgz", tmp_path)
    result = engine.scan_target(Target("t", target))
    # The zip is still opened and the map inside it still judged.
    assert found(result) == [("sourcemap.embedded-source", "lib/a.zip!/a.js.map")]
    assert (
        result.errors[0]
        == "artifact.tgz: detector crashing failed: RuntimeError: boom on artifact.tgz"
    )
    assert result.errors[-1] == "t: detector crashing failed: RuntimeError: boom at the end"
    assert len(result.errors) == 6  # the tgz, the zip, the map, its two sources, finish()


def test_progress_reports_every_file_read(tmp_path: Path) -> None:
    seen: list[tuple[str, int]] = []
    engine = opener_engine()
    engine.progress = lambda path, n: seen.append((path, n))
    engine.scan_target(Target("t", pack({"a.txt": b"hello", "b/c.txt": b"!"}, "tar.xz", tmp_path)))
    assert seen == [("a.txt", 5), ("b/c.txt", 1)]


def _open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_no_handle_is_left_open(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(base, "MMAP_FROM_BYTES", 64)  # map even these small files
    tree = {f"d/{i}.zip": zip_bytes({"a.js.map": FIRST_PARTY_MAP}) for i in range(20)}
    tree.update({f"d/{i}.tgz": compress(tar_bytes({"b.txt": b"b" * 100}), "gz") for i in range(20)})
    tree["d/broken.zip"] = b"PK\x03\x04" + b"\x00" * 100
    root = write_tree(tree, tmp_path / "t")
    before = _open_descriptors()
    result = scan_path(root)
    assert len(found(result)) == 21 and _open_descriptors() == before


def test_content_refuses_what_is_not_a_regular_file(tmp_path: Path) -> None:
    (tmp_path / "real.txt").write_bytes(b"data")
    (tmp_path / "link").symlink_to(tmp_path / "real.txt")
    os.mkfifo(tmp_path / "fifo")
    assert Content.from_file(tmp_path / "link").data == b"data"  # a path the user named
    with pytest.raises(OSError):
        Content.from_file(tmp_path / "link", follow_links=False)  # inside a tree
    with pytest.raises(OSError, match="not a regular file"):
        Content.from_file(tmp_path / "fifo")


def test_large_files_are_mapped_and_read_through_the_same_mapping(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(base, "MMAP_FROM_BYTES", 1024)
    data = zip_bytes({"a.js.map": FIRST_PARTY_MAP}) + b"\x00" * 2048
    (tmp_path / "big.zip").write_bytes(data)
    content = Content.from_file(tmp_path / "big.zip")
    assert not isinstance(content.data, bytes)
    (tmp_path / "new").write_bytes(b"replaced")
    os.replace(tmp_path / "new", tmp_path / "big.zip")  # another file under the same name
    with content.seekable() as fh:
        fh.seek(-10, os.SEEK_END)
        assert fh.read() == bytes(10)
        fh.seek(0)
        assert fh.read(4) == b"PK\x03\x04"
    content.close()
