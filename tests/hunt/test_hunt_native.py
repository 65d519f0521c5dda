"""End to end: index private Go, Rust, Java, C and C++ sources, hunt their copies in a
tarball built here (verbatim, renamed and restyled, a C file moved into a C++ project),
next to unrelated code of each language and hostile files with their suffixes."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from builders import compress, tar_bytes
from hunt.fixtures import index_tree
from hunt.native_sources import FRAME_C, PRIVATE_NATIVE, UNRELATED_NATIVE, copies
from seawall.cli import main

pytest.importorskip("tree_sitter")
pytest.importorskip("numpy")


def run(*args: str) -> Any:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def hunt_json(*args: str) -> tuple[int, dict[str, Any]]:
    result = run("hunt", *args, "--format", "json")
    return result.exit_code, json.loads(result.output)


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("native")
    return index_tree(PRIVATE_NATIVE, root / "private", root / "private.idx", "zephyrine")


def test_finds_verbatim_renamed_and_moved_copies(index: Path) -> None:
    leak = {
        **{"verbatim/" + path.rsplit("/", 1)[-1]: text for path, text in PRIVATE_NATIVE.items()},
        **copies(),
        "port/frame.cpp": FRAME_C,
        **{"other/" + path: text for path, text in UNRELATED_NATIVE.items()},
    }
    target = index.parent / "leak.tgz"
    target.write_bytes(compress(tar_bytes({k: v.encode() for k, v in leak.items()}), "gz"))
    code, doc = hunt_json(str(target), "--index", str(index))
    assert code == 1
    assert doc["targets"][0]["error"] is None
    found = sorted((f["path"], f["evidence"]["original"], f["evidence"]["kind"],
                    f["evidence"]["original_lines"], f["evidence"]["suspect_lines"])
                   for f in doc["findings"] if f["rule"] == "leak.code-copy")
    go, rust = "svc/ratelimit/limiter.go", "agent/src/ring.rs"
    java = "deploy/src/main/java/com/zephyrine/config/DeployConfig.java"
    c, cpp = "firmware/frame.c", "gateway/ledger.cpp"
    # each original's passage runs from its first token to its last (native_sources'
    # docstrings); in a restyled copy the same tokens sit further down (a blank line after
    # every `;`, braces on their own lines): these are the copies' first and last token lines
    edges = {"vendor/bus/frame.c": (7, "#define FRAME_MAGIC 0x5A", 110,
                                    'return stats.last_error != NULL ? stats.last_error'),
             "vendor/cfg/Config.java": (18, "public final class DeployConfig",
                                        109, "return this.entries.size();"),
             "vendor/limits/limiter.go": (12, "var ErrQuota = errors.New(", 92, "return bk"),
             "vendor/ring/ring.rs": (11, "#[derive(Clone, Debug, PartialEq)]",
                                     101, "self.dropped"),
             "vendor/usage/ledger.cc": (9, "namespace zephyrine", 96,
                                        "std::map<std::string, std::vector<Charge>> history_;")}
    for path, (first, first_text, last, last_text) in edges.items():
        lines = leak[path].splitlines()
        assert lines[first - 1].startswith(first_text), path
        assert lines[last - 1].strip().startswith(last_text), path
    assert found == [
        ("port/frame.cpp", c, "verbatim", [[7, 72]], [[7, 72]]),  # C into C++: one family
        ("vendor/bus/frame.c", c, "renamed", [[7, 72]], [[7, 110]]),
        ("vendor/cfg/Config.java", java, "renamed", [[12, 66]], [[18, 109]]),
        ("vendor/limits/limiter.go", go, "renamed", [[12, 79]], [[12, 92]]),
        ("vendor/ring/ring.rs", rust, "renamed", [[8, 74]], [[11, 101]]),
        ("vendor/usage/ledger.cc", cpp, "renamed", [[9, 61]], [[9, 96]]),
        ("verbatim/DeployConfig.java", java, "verbatim", [[12, 66]], [[12, 66]]),
        ("verbatim/frame.c", c, "verbatim", [[7, 72]], [[7, 72]]),
        ("verbatim/ledger.cpp", cpp, "verbatim", [[9, 61]], [[9, 61]]),
        ("verbatim/limiter.go", go, "verbatim", [[12, 79]], [[12, 79]]),
        ("verbatim/ring.rs", rust, "verbatim", [[8, 74]], [[8, 74]]),
    ]
    assert not [f for f in doc["findings"] if f["path"].startswith("other/")]
    [artifact] = [f for f in doc["findings"] if f["rule"] == "leak.code-copy-artifact"]
    assert artifact["evidence"]["originals"] == 5


def _nested(open_: str, close: str, depth: int, head: str = "", tail: str = "") -> bytes:
    """``head`` + ``depth`` brackets around ``1`` + ``tail``: what recursive parsers choke on."""
    return (head + open_ * depth + "1" + close * depth + tail).encode()


def test_hostile_files_with_native_suffixes_are_clean(index: Path) -> None:
    """Random bytes and deep nesting, each under a suffix of every new grammar: read, no
    finding, no error."""
    rng = random.Random(11)
    noise = bytes(rng.randrange(256) for _ in range(32 * 1024))
    tree = {
        "h/noise.go": noise,
        "h/nested.go": _nested("(", ")", 20000, "package p\nvar x = ", "\n"),
        "h/noise.rs": noise[::-1],
        "h/nested.rs": _nested("[", "]", 20000, "fn main() { let x = ", "; }\n"),
        "h/noise.java": noise[1:],
        "h/nested.java": _nested("{", "}", 20000, "class A { void f() ", " }\n"),
        "h/noise.c": noise[2:],
        "h/nested.h": _nested("(", ")", 20000, "int x = ", ";\n"),
        "h/noise.cpp": noise[3:],
        # only 1500 deep: tree-sitter-cpp's time on this alias grows about as depth**2.6
        # (4000 deep: 2 s; 10000 deep, 30 KB: 39 s), so deeper would be a test of patience
        "h/nested.hpp": _nested("A<", ">", 1500, "using T = ", ";\n"),
        "h/unclosed.cc": b"namespace z { class A { void f() { if (x) { while (" * 2000,
    }
    target = index.parent / "hostile.tgz"
    target.write_bytes(compress(tar_bytes(tree), "gz"))
    code, doc = hunt_json(str(target), "--index", str(index))
    assert code == 0, doc
    assert doc["findings"] == [] and doc["targets"][0]["error"] is None
    assert doc["targets"][0]["files"] == len(tree)
