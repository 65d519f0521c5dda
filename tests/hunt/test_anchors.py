"""Anchors decide which suspects are parsed: a copy is never skipped, and a file that
shares nothing with the originals is never parsed."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from builders import compress, tar_bytes, write_tree
from hunt.fixtures import (
    index_tree,
    BILLING_TS,
    PRIVATE,
    UNRELATED_JS,
    billing_renamed,
    bundle,
    minify,
    strip_types,
)
from hunt.native_sources import GRAPH_CPP, HEAP_JAVA, PRIVATE_NATIVE, ROUTER_GO, WORDS_RS, copies
from seawall.cli import main

pytest.importorskip("tree_sitter")

from seawall.hunt import anchors, lexer  # noqa: E402
from seawall.hunt.index import MAGIC, Index  # noqa: E402


def run(*args: str) -> Any:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def index_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("anchors")
    tree = {**PRIVATE, **{f"native/{name}": text for name, text in PRIVATE_NATIVE.items()}}
    return index_tree(tree, root / "private", root / "private.idx")


def test_member_anchors_survive_renaming_type_stripping_and_minifying() -> None:
    original = anchors.member_anchors(BILLING_TS.encode())
    assert len(original) == 16  # `this.lines.push`, `line.quantity`... in runs of three
    for copy in (billing_renamed(), minify(strip_types(BILLING_TS))):
        assert np.array_equal(anchors.member_anchors(copy.encode()), original)
    # a bundle holds them among its other code
    assert np.isin(original, anchors.member_anchors(bundle().encode())).all()


def test_string_anchors_are_runs_inside_one_literal() -> None:
    source = b'say("one two three four five six seven"); say("eight nine ten", "eleven twelve")'
    tokens = lexer.tokenize(source, "javascript", fragments=True)
    private = anchors.string_anchors(source, tokens.fragments)
    assert len(private) == 2  # seven words: two runs of six; the others span literals
    assert np.isin(private, anchors.word_anchors(source.upper())).all()  # case-blind
    # the suspect side hashes every run of six words of the text, code and literals
    # alike (`say` twice and 12 words of strings): a superset
    assert len(anchors.word_anchors(source)) == 14 - 6 + 1


def test_copies_are_parsed_and_unrelated_files_are_not(index_path: Path) -> None:
    index = Index.load(index_path)
    assert index.has_anchors and index.version == 2
    for name, original in PRIVATE_NATIVE.items():
        assert anchors.worth_parsing(original.encode(), index), name
    for name, copy in copies().items():
        assert anchors.worth_parsing(copy.encode(), index), name
    for unrelated in (ROUTER_GO, GRAPH_CPP, WORDS_RS):
        data = unrelated.encode()
        assert len(anchors.member_anchors(data)) >= anchors.OWN_MIN  # rich enough to judge
        assert not anchors.worth_parsing(data, index)
    # too few member anchors of its own to judge: parsed, as a copy of a small original is
    for poor in (UNRELATED_JS, HEAP_JAVA):
        assert len(anchors.member_anchors(poor.encode())) < anchors.OWN_MIN
        assert anchors.worth_parsing(poor.encode(), index)
    # a bundle-sized file is parsed whatever it holds
    big = (HEAP_JAVA * (anchors.MAX_BYTES // len(HEAP_JAVA) + 1)).encode()
    assert anchors.worth_parsing(big, index)


def _hunt_counting_parses(monkeypatch: pytest.MonkeyPatch, target: Path, index: Path
                          ) -> tuple[dict[str, Any], list[bytes]]:
    parsed: list[bytes] = []
    real = lexer.parse

    def counting(source: bytes, language: str) -> Any:
        parsed.append(source)
        return real(source, language)

    monkeypatch.setattr(lexer, "parse", counting)
    result = run("hunt", str(target), "--index", str(index), "--jobs", "1", "--format", "json")
    return json.loads(result.output), parsed


def test_a_hunt_parses_only_what_its_anchors_let_through(
        index_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    go_copy = copies()["vendor/limits/limiter.go"]
    members = {
        "package/router.go": ROUTER_GO.encode(),
        "package/graph.cpp": GRAPH_CPP.encode(),
        "package/words.rs": WORDS_RS.encode(),
        "package/heap/Heap.java": HEAP_JAVA.encode(),
        "package/limit/limiter.go": go_copy.encode(),
        "package/lib/invoice.js": minify(strip_types(BILLING_TS)).encode(),
    }
    target = tmp_path / "leak.tgz"
    target.write_bytes(compress(tar_bytes(members), "gz"))
    doc, parsed = _hunt_counting_parses(monkeypatch, target, index_path)
    # the heap has too few member anchors to be judged by them: parsed, found clean
    assert sorted(parsed) == sorted([go_copy.encode(), members["package/lib/invoice.js"],
                                     members["package/heap/Heap.java"]])
    found = sorted((f["path"], f["evidence"]["original"]) for f in doc["findings"]
                   if f["rule"] == "leak.code-copy")
    assert found == [("package/lib/invoice.js", "src/billing/invoice.ts"),
                     ("package/limit/limiter.go", "native/svc/ratelimit/limiter.go")]


def _as_version_1(v2: bytes) -> bytes:
    """The same index as an older seawall wrote it: no anchor section, 8-column files."""
    magic, version, hlen = struct.unpack_from("<8sII", v2, 0)
    assert magic == MAGIC and version == 2
    header = json.loads(v2[16:16 + hlen])
    start = 16 + hlen + (-(16 + hlen) % 8)
    kept = 0
    for section in header["sections"]:
        size = sum(section["count"] * np.dtype(dt).itemsize for _, dt in section["arrays"])
        if section["name"] != "anchor":
            kept += size + sum(-section["count"] * np.dtype(dt).itemsize % 8
                               for _, dt in section["arrays"])
    header["version"] = 1
    header["files"] = [row[:8] for row in header["files"]]
    header["sections"] = [s for s in header["sections"] if s["name"] != "anchor"]
    raw = json.dumps(header).encode()
    head = struct.pack("<8sII", MAGIC, 1, len(raw)) + raw
    head += b"\0" * (-len(head) % 8)
    return head + v2[start:start + kept]


def test_a_version_1_index_is_read_and_every_suspect_is_parsed(
        index_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    old = tmp_path / "old.idx"
    old.write_bytes(_as_version_1(index_path.read_bytes()))
    index = Index.load(old)
    assert index.version == 1 and not index.has_anchors
    assert [f.anchors for f in index.files] == [-1] * len(index.files)
    members = {"package/router.go": ROUTER_GO.encode(),
               "package/lib/invoice.js": minify(strip_types(BILLING_TS)).encode()}
    target = tmp_path / "leak.tgz"
    target.write_bytes(compress(tar_bytes(members), "gz"))
    doc, parsed = _hunt_counting_parses(monkeypatch, target, old)
    assert len(parsed) == 2  # nothing to judge by: everything is parsed
    assert [f["evidence"]["original"] for f in doc["findings"]
            if f["rule"] == "leak.code-copy"] == ["src/billing/invoice.ts"]
    # a label added to it now has anchors; the old ones still have none, so still no skipping
    write_tree({"extra.ts": b"export const x = 1;\n"}, tmp_path / "more")
    assert run("index", "add", str(tmp_path / "more"), "--index", str(old),
               "--label", "more").exit_code == 0
    again = Index.load(old)
    assert again.version == 2 and not again.has_anchors
    assert [f.anchors for f in again.files][-1] == 0
    info = run("index", "info", str(old)).output
    assert "every suspect is parsed; rebuild the index to hunt faster" in info
