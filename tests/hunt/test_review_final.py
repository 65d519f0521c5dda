"""Review of this session's hunt changes: the packed, incrementally updated index;
normaliser 4's escapes in string words; and docs/hunt.md against the code.

Each defect it found is fixed; its test is a regression test now. The others pin down
what the review checked and found sound.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import numpy as np

from seawall.hunt.fingerprint import Fingerprint, fingerprint
from seawall.hunt.index import ANCHOR_FIELDS, Index, Packer
from seawall.hunt.lexer import tokenize

DOCS = Path(__file__).resolve().parents[2] / "docs" / "hunt.md"


# -- the index: incremental updates against a build from scratch ---------------------------
def _fp(rng: np.random.Generator, n: int, anchors: str) -> Fingerprint:
    """Hashes drawn from small ranges, so many are shared by files (and some go over the
    document-frequency cap); ``anchors``: "none" (a version-1 style file), "empty", "some"."""
    h = rng.integers(0, 40, size=n).astype(np.uint64)
    line = rng.integers(1, 99, size=n).astype(np.uint32)
    member = string = None
    if anchors == "empty":
        member, string = np.zeros(0, np.uint64), np.zeros(0, np.uint64)
    elif anchors == "some":
        member = np.unique(rng.integers(0, 30, size=6)).astype(np.uint64)
        string = np.unique(rng.integers(100, 130, size=6)).astype(np.uint64)
    return Fingerprint(kgrams=h, exact=line * 3, first=line, last=line + 1,
                       shingles=h[: n // 2].copy(), shingle_first=line[: n // 2],
                       shingle_last=line[: n // 2] + 2, whole=int(n), tokens=n, lines=n + 1,
                       anchors=member, string_anchors=string)


def _content(index: Index) -> tuple[dict[str, list[tuple[object, ...]]], list[tuple[object, ...]]]:
    """Every row with its file named by (label, path), and every file's counts; checks on
    the way that each section is sorted by (hash, file)."""
    out = {}
    for name in ("kgram", "shingle", "anchor"):
        section = getattr(index, name)
        order = np.lexsort((section["file"], section["hash"]))
        assert np.array_equal(order, np.arange(len(order))), f"{name} not sorted by (hash, file)"
        rows = []
        for i in range(len(section["hash"])):
            f = index.files[int(section["file"][i])]
            rows.append(((f.label, f.path),
                         *(int(section[k][i]) for k in sorted(section) if k != "file")))
        out[name] = sorted(rows)
    files = sorted((f.label, f.path, f.language, f.lines, f.kgrams, f.shingles, f.whole,
                    f.anchors, f.string_anchors) for f in index.files)
    return out, files


def test_any_sequence_of_adds_equals_one_build_from_scratch(tmp_path: Path) -> None:
    """New labels, replaced labels, emptied labels, zero files, one path twice in a call,
    one path in two labels, saves and loads between adds: the result always holds the same
    rows, counts and labels as building the surviving labels from scratch."""
    rng = np.random.default_rng(2026)
    checked_rows = 0
    for _trial in range(25):
        index, expected = Index(), {}
        for _step in range(6):
            label = f"L{rng.integers(0, 3)}"
            paths = [f"src/p{rng.integers(0, 6)}.py" for _ in range(int(rng.integers(0, 5)))]
            items = [(p, "python", _fp(rng, int(rng.integers(0, 30)),
                                      str(rng.choice(["none", "empty", "some", "some"]))))
                     for p in paths]
            survivors: dict[str, tuple[str, str, Fingerprint]] = {}
            for item in items:
                survivors.setdefault(item[0], (item[0], item[1], copy.deepcopy(item[2])))
            expected.pop(label, None)
            expected[label] = list(survivors.values())
            index.replace_label(label, [label], items)
            if rng.integers(0, 2):
                index.save(tmp_path / "i.idx")
                index = Index.load(tmp_path / "i.idx")
        reference = Index()
        for label, items in expected.items():
            reference.replace_label(label, [label], items)
        assert _content(index) == _content(reference)
        assert index.labels == reference.labels
        checked_rows += len(index.kgram["hash"])
    assert checked_rows > 1000


def test_packer_takes_empty_and_missing_arrays() -> None:
    """A file with no k-grams, no shingles, empty anchors or no anchors at all: it is a
    file of the index (whole hash kept), with no rows and the right anchor bookkeeping."""
    empty = np.zeros(0, np.uint64)
    z32 = np.zeros(0, np.uint32)

    def fp(anchors: np.ndarray | None, whole: int) -> Fingerprint:
        return Fingerprint(kgrams=empty, exact=z32, first=z32, last=z32, shingles=empty,
                           shingle_first=z32, shingle_last=z32, whole=whole, tokens=0,
                           lines=3, anchors=anchors, string_anchors=anchors)

    packer = Packer()
    assert packer.add("a.py", "python", fp(empty, 11))
    assert packer.add("b.py", "python", fp(None, 12))
    assert not packer.add("a.py", "python", fp(None, 13))  # the first one stays
    index = Index()
    index.replace_label("x", ["src"], packer)
    assert [(f.path, f.whole, f.anchors, f.string_anchors) for f in index.files] == [
        ("a.py", 11, 0, 0), ("b.py", 12, -1, -1)]
    assert [len(s["hash"]) for s in (index.kgram, index.shingle, index.anchor)] == [0, 0, 0]
    assert index.whole_table() == {11: [0], 12: [1]} and not index.has_anchors


# -- normaliser 4: escapes in string words -------------------------------------------------
def _words(source: str, language: str) -> list[str]:
    return tokenize(source.encode(), language).words


def test_escapes_keep_ascii_word_lines() -> None:
    """Escapes are blanked to their own length, so a word after them keeps its offset."""
    src = 'x = 1\nS = """a\\tb\\u00e9c\\x41d\\N{BULLET} e\\\nfirst words\n\\nsecond\\n"""\n'
    tokens = tokenize(src.encode(), "python")
    raw = src.encode()
    for word, start in zip(tokens.words, tokens.word_starts):
        assert raw[start:start + len(word)].lower() == word.encode(), word
    assert tokens.words == ["a", "b", "c", "d", "e", "first", "words", "second"]


def test_python_raw_strings_keep_their_backslashed_words() -> None:
    py = _words('p = r"C:\\Users\\name\\new folder"\n', "python")
    js = _words('p = "C:\\\\Users\\\\name\\\\new folder";\n', "javascript")
    assert js == ["c", "users", "name", "new", "folder"]
    assert py == js


def test_a_four_digit_unicode_escape_does_not_eat_the_next_word() -> None:
    py = _words('s = "caf\\u00e9bead is here"\n', "python")
    js = _words('s = "caf\\u00e9bead is here";\n', "javascript")
    assert js == ["caf", "bead", "is", "here"]
    assert py == js


def test_string_shingle_lines_after_non_ascii_text() -> None:
    tail = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima"
    cjk = "機密の請求書を作成する処理です" * 4

    def lines(head: str) -> dict[int, tuple[int, int]]:
        fp = fingerprint(f'x = 1\nTEXT = """{head}\nsecond line\n{tail}\n"""\n'.encode(),
                         "python")
        return dict(zip(fp.shingles.tolist(),
                        zip(fp.shingle_first.tolist(), fp.shingle_last.tolist())))

    non_ascii = lines(cjk)
    ascii_twin = lines("q" * len(cjk.encode()))  # the same byte layout, ASCII only
    common = set(non_ascii) & set(ascii_twin)
    assert len(common) == 7  # the shingles of the English words alone
    assert {h: non_ascii[h] for h in common} == {h: ascii_twin[h] for h in common}


# -- docs/hunt.md against the code ---------------------------------------------------------
def test_documented_index_format_matches_what_save_writes(tmp_path: Path) -> None:
    text = DOCS.read_text(encoding="utf-8")
    anchor_line = re.search(r"- `anchor` \(version 2\):([^\n]*)", text)
    assert anchor_line is not None
    documented = re.findall(r"`(\w+)` `(<\w+)`", anchor_line.group(1))
    assert tuple(documented) == ANCHOR_FIELDS
    row = re.search(r"`files` \(one row per original: `\[([^\]]*)\]`", text)
    assert row is not None
    index = Index()
    index.replace_label("x", ["src"], [("a.py", "python", _fp(np.random.default_rng(1), 20,
                                                              "some"))])
    index.save(tmp_path / "i.idx")
    import json
    import struct

    raw = (tmp_path / "i.idx").read_bytes()
    header = json.loads(raw[16:16 + struct.unpack_from("<I", raw, 12)[0]])
    assert len(row.group(1).split(",")) == len(header["files"][0])
