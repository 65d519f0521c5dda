"""Source maps as containers, inline maps, index maps, and every sourcemap.* verdict."""

from __future__ import annotations

import base64
import json
import urllib.parse
from pathlib import Path

import pytest
from builders import FIRST_PARTY_MAP, compress, found, listing, scan_path, source_map, write_tree

from seawall.artifacts.base import Content, Source
from seawall.artifacts.sourcemap import SourceMapOpener, inline_maps, parse, virtual_path
from seawall.findings import Severity
from seawall.limits import Limits

EMBEDDED = "sourcemap.embedded-source"


def scan_tree(tmp_path: Path, tree: dict[str, bytes]):
    return scan_path(write_tree(tree, tmp_path / "t"))


def test_embedded_sources_become_virtual_files(tmp_path: Path) -> None:
    root = write_tree({"package/cli.js.map": FIRST_PARTY_MAP}, tmp_path / "t")
    assert listing(root) == [
        "package/cli.js.map",
        "package/cli.js.map!/src/utils/crypto.ts",
        "package/cli.js.map!/src/main.ts",
    ]
    [finding] = scan_path(root).findings
    assert (finding.rule, finding.severity, finding.path) == (
        EMBEDDED,
        Severity.CRITICAL,
        "package/cli.js.map",
    )
    assert finding.evidence["first_party_with_content"] == 2


def test_virtual_paths_are_clean_and_unique() -> None:
    data = source_map(
        {
            "webpack://app/./src/a.ts": "1",
            "../src/a.ts": "2",
            "/abs/../x.ts": "3",
            "": "4",
            "b.ts": None,
        }
    )
    opener = SourceMapOpener(Limits())
    got = [
        (e.path, e.data) for e in opener.entries(Source("m.map", content=Content(data), head=data))
    ]
    assert got == [
        ("app/src/a.ts", b"1"),
        ("src/a.ts", b"2"),
        ("abs/x.ts", b"3"),
        ("(unnamed)", b"4"),
    ]
    assert virtual_path("C:\\work\\src\\a.ts") == "C:/work/src/a.ts"
    dupes = source_map({"a.ts": "1", "./a.ts": "2"})
    fresh = SourceMapOpener(Limits())  # one opener per member: it memoizes the parse
    assert [e.path for e in fresh.entries(Source("m", content=Content(dupes), head=dupes))] == [
        "a.ts",
        "a.ts~2",
    ]


def _inline(encoding: str, smap: bytes) -> bytes:
    if encoding == "base64":
        uri = b"data:application/json;charset=utf-8;base64," + base64.b64encode(smap)
    else:
        uri = b"data:application/json," + urllib.parse.quote_from_bytes(smap, safe="").encode()
    return b"function x(){return 1}" * 1000 + b"\n//# sourceMappingURL=" + uri + b"\n"


@pytest.mark.parametrize("encoding", ["base64", "percent"])
def test_inline_data_uri_map(tmp_path: Path, encoding: str) -> None:
    big = source_map({"../src/app.ts": "const secret = 1;\n" * 2000})  # payload far beyond 4 KiB
    result = scan_tree(tmp_path, {"package/app.js": _inline(encoding, big)})
    assert found(result) == [(EMBEDDED, "package/app.js!/inline.map")]
    assert result.findings[0].evidence["inline"] is True


def test_inline_markers_outside_comments_are_ignored_in_one_pass() -> None:
    smap = source_map({"a.ts": "x"})
    data = (
        b'var s = "sourceMappingURL=data:,'
        + b"x" * 100
        + b'";'
        + b"sourceMappingURL=data:" * 20000
        + b"\n//# sourceMappingURL=data:application/json;base64,"
        + base64.b64encode(smap)
    )
    assert inline_maps(data) == [smap]
    assert inline_maps(b"//@ sourceMappingURL=data:application/json,%7B%7D") == [b"{}"]


def test_index_map_with_sections(tmp_path: Path) -> None:
    index = json.dumps(
        {
            "version": 3,
            "file": "app.js",
            "sections": [
                {
                    "offset": {"line": 0, "column": 0},
                    "map": json.loads(source_map({"webpack://app/./node_modules/x/i.js": "x"})),
                },
                {
                    "offset": {"line": 9, "column": 0},
                    "map": json.loads(source_map({"../src/app.ts": "secret()"})),
                },
            ],
        }
    ).encode()
    result = scan_tree(tmp_path, {"dist/app.js.map": index})
    assert found(result) == [(EMBEDDED, "dist/app.js.map")]
    assert result.findings[0].evidence["first_party_sources"] == 1


def test_keys_in_any_order_and_mappings_past_the_first_mib(tmp_path: Path) -> None:
    body = (
        '{"sourcesContent":["' + "x = 1;\\n" * 200_000 + '"],"names":[],'
        '"sources":["../src/big.ts"],"mappings":"' + "AAAA;" * 1000 + '","version":3}'
    ).encode()
    assert body.index(b'"mappings"') > 1 << 20
    assert found(scan_tree(tmp_path, {"dist/big.js.map": body})) == [(EMBEDDED, "dist/big.js.map")]


def test_map_found_by_content_whatever_its_name(tmp_path: Path) -> None:
    assert found(scan_tree(tmp_path, {"package/bundle.dat": b")]}'\n" + FIRST_PARTY_MAP})) == [
        (EMBEDDED, "package/bundle.dat")
    ]


@pytest.mark.parametrize(
    ("tree", "expected"),
    [
        (
            {"types/index.d.ts.map": source_map({"../src/index.ts": None}, file="index.d.ts")},
            [("sourcemap.source-paths", Severity.LOW, "types/index.d.ts.map")],
        ),
        (
            {
                "dist/vendor.js.map": source_map(
                    {"webpack://app/./node_modules/lodash/lodash.js": "module.exports={}"}
                )
            },
            [("sourcemap.embedded-dependencies", Severity.LOW, "dist/vendor.js.map")],
        ),
        (
            {
                "dist/app.js.map": source_map(
                    {"app.ts": None}, sourceRoot="https://cdn.example.test/src/"
                )
            },
            [("sourcemap.remote-sources", Severity.HIGH, "dist/app.js.map")],
        ),
        (
            {"dist/app.js": b"run()\n//# sourceMappingURL=https://maps.example.test/app.js.map\n"},
            [("sourcemap.remote-map", Severity.HIGH, "dist/app.js")],
        ),
        (
            {"dist/app.js": b"run()\n//# sourceMappingURL=app.js.map\n"},
            [("sourcemap.missing-map", Severity.INFO, "dist/app.js")],
        ),
        (
            {
                "dist/app.js": b"run()\n//# sourceMappingURL=app.js.map\n",
                "dist/app.js.map": source_map({"a.ts": None}),
            },
            [("sourcemap.source-paths", Severity.LOW, "dist/app.js.map")],
        ),
    ],
)
def test_verdicts(tmp_path: Path, tree: dict[str, bytes], expected: list) -> None:
    result = scan_tree(tmp_path, tree)
    assert [(f.rule, f.severity, f.path) for f in result.findings] == expected
    assert result.errors == []


@pytest.mark.parametrize(
    "text", [b"{", b'{"sources": 5, "mappings": ""}', b"[" * 100_000, b'{"sources":[1,null]}']
)
def test_parse_never_raises(text: bytes) -> None:
    parsed = parse(text)
    assert parsed is None or parsed.sources == ["", ""]


def test_map_in_a_compressed_file_in_a_tarball(tmp_path: Path) -> None:
    assert found(scan_tree(tmp_path, {"x/cli.js.map.gz": compress(FIRST_PARTY_MAP, "gz")})) == [
        (EMBEDDED, "x/cli.js.map.gz!/cli.js.map")
    ]
