"""Tar in every compression, long names in every tar dialect, single compressed files."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest
from builders import (
    FIRST_PARTY_MAP,
    compress,
    file_info,
    found,
    listing,
    pack,
    scan_path,
    tar_bytes,
    tar_of,
    write_tree,
)

from seawall.artifacts.base import Content, Source
from seawall.artifacts.compressed import CompressedOpener, inner_name
from seawall.artifacts.tar import looks_like_tar
from seawall.limits import Limits

EMBEDDED = "sourcemap.embedded-source"
TREE = {"package/dist/cli.js.map": FIRST_PARTY_MAP, "package/README.md": b"# demo\n"}


@pytest.mark.parametrize("fmt", ["tar", "tgz", "tar.bz2", "tar.xz", "tar.zst"])
def test_tar_in_every_compression(tmp_path: Path, fmt: str) -> None:
    result = scan_path(pack(TREE, fmt, tmp_path))
    assert found(result) == [(EMBEDDED, "package/dist/cli.js.map")]
    assert result.errors == []
    assert result.files == 4  # two members, and the two sources embedded in the map


LONG = "package/" + "/".join(["a-rather-long-folder"] * 8) + "/cli.js.map"  # 187 chars
LONGER = "package/" + "/".join(["a-rather-long-folder"] * 14) + "/cli.js.map"  # 313 chars


@pytest.mark.parametrize(
    ("format", "name"),
    [
        (tarfile.USTAR_FORMAT, LONG),  # split into the ustar prefix field
        (tarfile.PAX_FORMAT, LONGER),  # a PAX "path" record
        (tarfile.GNU_FORMAT, LONGER),  # a GNU ././@LongLink member
    ],
)
def test_long_names(tmp_path: Path, format: int, name: str) -> None:
    assert len(name) > 100
    target = tmp_path / "long.tar"
    target.write_bytes(tar_bytes({name: FIRST_PARTY_MAP}, format=format))
    assert found(scan_path(target)) == [(EMBEDDED, name)]


def test_pax_header_does_not_leak_as_a_member(tmp_path: Path) -> None:
    target = tmp_path / "pax.tar"
    target.write_bytes(tar_bytes({LONGER: b"x", "package/é.txt": b"y"}, format=tarfile.PAX_FORMAT))
    assert listing(target) == [LONGER, "package/é.txt"]


@pytest.mark.parametrize(
    ("fmt", "suffix"), [("gz", ".gz"), ("bz2", ".bz2"), ("xz", ".xz"), ("zst", ".zst")]
)
def test_single_compressed_file_is_a_container(tmp_path: Path, fmt: str, suffix: str) -> None:
    root = write_tree({f"x/cli.js.map{suffix}": compress(FIRST_PARTY_MAP, fmt)}, tmp_path / "t")
    result = scan_path(root)
    assert found(result) == [(EMBEDDED, f"x/cli.js.map{suffix}!/cli.js.map")]
    assert result.errors == []


def test_compressed_tar_inside_a_tree_is_one_level(tmp_path: Path) -> None:
    root = write_tree(
        {"x/pkg.tgz": compress(tar_bytes(TREE), "gz"), "x/pkg.tar": tar_bytes(TREE)}, tmp_path / "t"
    )
    assert found(scan_path(root)) == [
        (EMBEDDED, "x/pkg.tar!/package/dist/cli.js.map"),
        (EMBEDDED, "x/pkg.tgz!/package/dist/cli.js.map"),
    ]


def test_referenced_map_shipped_compressed_is_not_missing(tmp_path: Path) -> None:
    root = write_tree(
        {
            "package/cli.js": b"run();\n//# sourceMappingURL=cli.js.map\n",
            "package/cli.js.map.gz": compress(FIRST_PARTY_MAP, "gz"),
        },
        tmp_path / "t",
    )
    assert found(scan_path(root)) == [(EMBEDDED, "package/cli.js.map.gz!/cli.js.map")]


def test_tar_members_keep_archive_order_and_folders_are_not_files(tmp_path: Path) -> None:
    folder = tarfile.TarInfo("package/dist")
    folder.type = tarfile.DIRTYPE
    target = tmp_path / "ordered.tar"
    target.write_bytes(
        tar_of(
            [
                file_info("package/z.txt", b"z"),
                (folder, None),
                file_info("package/dist/a.txt", b"a"),
            ]
        )
    )
    assert listing(target) == ["package/z.txt", "package/dist/a.txt"]


@pytest.mark.parametrize(
    ("name", "inner"),
    [
        ("cli.js.map.gz", "cli.js.map"),
        ("x.tgz", "x.tar"),
        ("x.tar.zst", "x.tar"),
        ("x.TBZ2", "x.tar"),
        ("layer", "layer.decompressed"),
        (".gz", ".gz.decompressed"),
    ],
)
def test_inner_name(name: str, inner: str) -> None:
    suffixes = {".tgz": ".tar", ".gz": "", ".tbz2": ".tar", ".zst": ""}
    assert inner_name(f"dir/{name}", suffixes) == inner


@pytest.mark.parametrize(
    ("head", "claimed"),
    [
        (compress(b"payload", "gz"), True),
        (compress(b"payload", "bz2"), True),
        (compress(b"", "bz2"), True),
        (compress(b"payload", "xz"), True),
        (compress(b"payload", "zst"), True),
        (b"BZh9 is how this text starts", False),
        (b"\x1f\x8b\x00 not deflate", False),
    ],
)
def test_compressed_sniffing_needs_real_magic(head: bytes, claimed: bool) -> None:
    assert CompressedOpener.sniff(head, "x", None) is claimed


def test_v7_tar_without_magic_is_recognised_by_checksum() -> None:
    block = bytearray(tar_of([file_info("old.txt", b"v7")], format=tarfile.USTAR_FORMAT)[:512])
    block[257:265] = bytes(8)  # no "ustar" magic, as in a v7 archive
    block[148:156] = b"        "
    block[148:156] = b"%06o\0 " % sum(block)
    assert looks_like_tar(bytes(block))
    block[0] ^= 1
    assert not looks_like_tar(bytes(block))


def test_compressed_opener_alone() -> None:
    data = compress(FIRST_PARTY_MAP, "xz")
    opener = CompressedOpener(Limits())
    import io

    [entry] = list(
        opener.entries(Source("a/cli.js.map.xz", stream=io.BytesIO(data), head=data[:64]))
    )
    assert (entry.path, entry.attrs, entry.stream().read()) == (
        "cli.js.map",
        {"compression": "xz"},
        FIRST_PARTY_MAP,
    )
    assert Content(data).seekable().read() == data
