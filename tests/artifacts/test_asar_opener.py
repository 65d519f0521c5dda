"""Electron .asar, built byte for byte the way @electron/asar writes it."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from builders import FIRST_PARTY_MAP, asar_bytes, found, listing, scan_path, write_tree

from seawall.artifacts.asar import AsarOpener
from seawall.artifacts.base import Content, Kind, Source
from seawall.limits import Limits

EMBEDDED = "sourcemap.embedded-source"


def entries(data: bytes) -> list[tuple[str, Kind, bytes | None, str | None]]:
    source = Source("app.asar", content=Content(data), head=data[:65536])
    return [(e.path, e.kind, e.data, e.error) for e in AsarOpener(Limits()).entries(source)]


@pytest.mark.parametrize("name", ["a", "ab", "abc", "abcd"])  # every JSON length modulo 4
def test_file_data_starts_after_the_padded_header(name: str) -> None:
    # Reading data at 16 + json_len (ignoring the padding) would shift every file.
    data = asar_bytes({f"{name}.txt": b"first", "dir/b.bin": b"\x00second\xff"})
    assert AsarOpener.sniff(data[:65536], "app.asar", None)
    assert entries(data) == [
        (f"{name}.txt", Kind.FILE, b"first", None),
        ("dir", Kind.DIR, None, None),
        ("dir/b.bin", Kind.FILE, b"\x00second\xff", None),
    ]


def test_header_lengths_cover_every_padding() -> None:
    residues = {
        struct.unpack_from("<I", asar_bytes({f"{'x' * n}.txt": b"."}), 12)[0] % 4 for n in range(4)
    }
    assert residues == {0, 1, 2, 3}


def test_asar_in_an_electron_app(tmp_path: Path) -> None:
    asar = asar_bytes(
        {
            "package.json": b'{"main":"dist/main.js"}',
            "dist/main.js": b"x()\n",
            "dist/main.js.map": FIRST_PARTY_MAP,
        }
    )
    root = write_tree({"resources/app.asar": asar}, tmp_path / "app")
    assert found(scan_path(root)) == [(EMBEDDED, "resources/app.asar!/dist/main.js.map")]
    assert listing(root)[:3] == [
        "resources/app.asar",
        "resources/app.asar!/package.json",
        "resources/app.asar!/dist/main.js",
    ]


def test_links_unpacked_files_and_bad_entries(tmp_path: Path) -> None:
    asar = asar_bytes(
        {"main.js.map": FIRST_PARTY_MAP},
        extra={
            "evil": {"link": "../../etc/passwd"},
            "native.node": {"size": 10, "unpacked": True},
            "bad.bin": {"size": 10, "offset": "999999"},
            "odd": "not an object",
            "nofiles": {"files": []},
        },
    )
    target = tmp_path / "app.asar"
    target.write_bytes(asar)
    result = scan_path(target)
    assert found(result) == [
        (EMBEDDED, "main.js.map"),
        ("anomaly.link-outside", "evil"),
        ("anomaly.corrupt", "bad.bin"),
        ("anomaly.corrupt", "nofiles"),
        ("anomaly.corrupt", "odd"),
    ]
    assert result.errors == [
        "bad.bin: asar entry points outside the archive",
        "odd: asar entry is not an object",
        "nofiles: asar folder has no file table",
    ]


@pytest.mark.parametrize(
    ("depth", "expected"),
    [
        (400, [(EMBEDDED, "d/" * 400 + "leaf.js.map")]),  # walked without recursion
        (3000, [("anomaly.corrupt", "deep.asar")]),  # refused by the JSON decoder, reported
    ],
)
def test_deeply_nested_header(tmp_path: Path, depth: int, expected: list) -> None:
    leaf = f'{{"leaf.js.map":{{"size":{len(FIRST_PARTY_MAP)},"offset":"0"}}}}'
    header = ('{"files":' + '{"d":{"files":' * depth + leaf + "}}" * depth + "}").encode()
    pickled = struct.pack("<I", len(header)) + header + b"\0" * (-len(header) % 4)
    target = tmp_path / "deep.asar"
    target.write_bytes(
        struct.pack("<III", 4, len(pickled) + 4, len(pickled)) + pickled + FIRST_PARTY_MAP
    )
    result = scan_path(target, max_depth=2)
    assert found(result) == expected
    assert not any("internal error" in e for e in result.errors)


@pytest.mark.parametrize("damage", ["json", "sizes"])
def test_damaged_header(tmp_path: Path, damage: str) -> None:
    data = bytearray(asar_bytes({"a.txt": b"a"}))
    json_len = struct.unpack_from("<I", data, 12)[0]
    if damage == "json":
        data[16 + json_len - 1] = ord(",")  # the closing brace
    else:
        data[12:16] = struct.pack("<I", 1 << 30)
    target = tmp_path / "bad.asar"
    target.write_bytes(bytes(data))
    result = scan_path(target)
    assert found(result) == [("anomaly.corrupt", "bad.asar")]
    [error] = result.errors
    assert error.startswith("bad.asar: ") and ": asar header" in error
