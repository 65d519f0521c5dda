"""Anchors: what a suspect file must share with an original before it is worth parsing.

Parsing is most of a hunt's cost (tree-sitter reads ~8 MB/s of JavaScript here), and
nearly every file of a haystack is unrelated to the index. Anchors are read from the
raw bytes without a parser, in a few C-level passes, and survive what a copy goes
through, because they are made of what renaming, reformatting, type stripping and
minifying leave alone. There are two kinds, each judged on its own:

* ``member`` anchors: runs of ``MEMBER_K`` member names in the order the text accesses
  them (``.name``, ``->name``, ``::name``; not the names compilers add, ``.default`` and
  compiled JSX's ``.createElement``). The private side keeps the runs of its text as it
  is and those of the code the lexer keeps (comments, imports, TypeScript types left
  out, as a compiler leaves them out);
* ``string`` anchors: runs of ``WORDS_K`` lower-cased words (any script), escapes
  (``\\n``) read as spaces. On the private side only runs inside one string literal are
  kept; on the suspect side every run of words of the text is hashed, a superset, since
  a literal's words stay in order whatever the code around them becomes (a port).

A suspect is parsed when, for some original and one kind, it holds at least ``MIN_HITS``
of the original's anchors of that kind (of member anchors, a third of them when it has
fewer than 9, at least two) and ``MIN_SHARE`` of them. A suspect too poor in member anchors to judge
(fewer than ``OWN_MIN``: small files, JSX-heavy components) or large (a bundle:
``MAX_BYTES``) is always parsed, so a file-for-file copy of an original with few anchors
is never skipped: it has few too. A regex cannot lose sync here the way a regex lexer
does: nothing depends on knowing where a string or a comment starts, only on runs of
names and words.
"""

from __future__ import annotations

import re
import zlib
from itertools import repeat
from typing import Any, Iterable

import numpy as np

from seawall.hunt.fingerprint import distinct, kgram_hashes
from seawall.hunt.lexer import blank

MEMBER, STRING = 0, 1
"""Anchor kinds (the ``kind`` column of the index's ``anchor`` section)."""
MEMBER_K = 3
WORDS_K = 6
OWN_MIN = 10
"""A suspect with fewer distinct member anchors than this is always parsed."""
MIN_HITS = 3
MIN_SHARE = 0.05
SMALL_SHARE = 1 / 3
"""An original with fewer than 9 member anchors needs a third of them (at least two, or
all when it has fewer): a
transpiled React component keeps few of its runs of member names (JSX compiles to
``createElement`` calls that interleave new ones). String anchors need ``MIN_HITS``
(or all, when fewer): a literal's words survive whole, and a port is only reported with
10 matched shingles, which an original with fewer string anchors cannot give."""
MAX_BYTES = 1 << 20
"""Larger suspects (bundles) are always parsed: they hold parts of many originals."""

_MEMBER = re.compile(rb"(?:\.|->|::)\s*([A-Za-z_$][\w$]*)")
_WORD = re.compile(rb"[a-z0-9\x80-\xff]+")
"""A word: ASCII letters and digits (lower-cased first) and any byte of a non-ASCII
character (one character class: several times faster than decoding, and the same bytes
read the same way on both sides)."""
_ONE_ESCAPE = rb"\\(?:u\{[0-9a-fA-F]{1,6}\}|u[0-9a-fA-F]{4}|x[0-9a-fA-F]{2}|.)"
_ESCAPE = re.compile(_ONE_ESCAPE, re.S)
_ONLY_ESCAPES = re.compile(rb"(?:" + _ONE_ESCAPE + rb")+", re.S)
_MEMBER_SEED = 0x5EA
_WORD_SEED = 0x3A11


def _grams(names: list[bytes], k: int, seed: int) -> np.ndarray:
    """Distinct hashes of every run of ``k`` names (crc32 per name, then the k-grams'
    polynomial hash)."""
    if len(names) < k:
        return np.zeros(0, dtype=np.uint64)
    values = np.fromiter(map(zlib.crc32, names, repeat(seed, len(names))), dtype=np.uint64,
                         count=len(names))
    return distinct(kgram_hashes(values, k))


_ADDED_MEMBERS = frozenset({b"createElement", b"jsx", b"jsxs", b"jsxDEV", b"Fragment",
                            b"default"})
"""Member names that compilers add (compiled JSX's callee, ES-module interop's
``.default``): not read on either side, so a compiled copy keeps its original's runs."""


def member_anchors(source: bytes) -> np.ndarray:
    names = [n for n in _MEMBER.findall(source) if n not in _ADDED_MEMBERS]
    return _grams(names, MEMBER_K, _MEMBER_SEED)


def _words(text: bytes) -> list[bytes]:
    text = text.lower()
    if b"\\" in text:
        text = _ESCAPE.sub(b" ", text)
    return _WORD.findall(text)


def word_anchors(source: bytes) -> np.ndarray:
    """Every run of ``WORDS_K`` words of the text (the suspect side)."""
    return _grams(_words(source), WORDS_K, _WORD_SEED)


def literal_spans(source: bytes, fragments: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """The parser's string fragments, joined where only escapes part them (a grammar
    ends a fragment at ``\\n``; the text reads on across it)."""
    spans: list[tuple[int, int]] = []
    for start, end in sorted(fragments):
        if spans and start >= spans[-1][1] and \
                _ONLY_ESCAPES.fullmatch(source, spans[-1][1], start) is not None:
            spans[-1] = (spans[-1][0], end)
        else:
            spans.append((start, end))
    return spans


def string_anchors(source: bytes, fragments: Iterable[tuple[int, int]]) -> np.ndarray:
    """The runs of ``WORDS_K`` words inside one string literal (the private side)."""
    parts = [_grams(_words(source[s:e]), WORDS_K, _WORD_SEED)
             for s, e in literal_spans(source, fragments) if e - s >= 2 * WORDS_K - 1]
    return distinct(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.uint64)


def private_member_anchors(source: bytes, dropped: Iterable[tuple[int, int]]) -> np.ndarray:
    """Member anchors of the text as it is (what a verbatim copy holds) and of the code
    the lexer keeps, ``dropped`` spans (comments, imports, types) blanked, as a compiler
    or a minifier removes them (what a compiled copy holds)."""
    spans = list(dropped)
    raw = member_anchors(source)
    if not spans:
        return raw
    return np.union1d(raw, member_anchors(blank(source, spans)))


def worth_parsing(source: bytes, index: Any) -> bool:
    """Whether ``source`` may hold one of the originals of ``index``, judged by anchors
    alone (``index.has_anchors`` must be true)."""
    if len(source) > MAX_BYTES:
        return True
    members = member_anchors(source)
    if len(members) < OWN_MIN:
        return True
    q = index.query_arrays()
    table = index.anchor["hash"]
    if _enough(_hits(members, table, q, MEMBER), q["anchor_total"][MEMBER], SMALL_SHARE):
        return True
    return _enough(_hits(word_anchors(source), table, q, STRING), q["anchor_total"][STRING], 1)


def _enough(count: np.ndarray | None, totals: np.ndarray, small_share: float) -> bool:
    if count is None:
        return False
    few = np.minimum(totals, np.maximum(2, np.floor(totals * small_share)))
    need = np.maximum(np.minimum(MIN_HITS, few), MIN_SHARE * totals)
    return bool(np.any((count > 0) & (count >= need)))


def _hits(hashes: np.ndarray, table: np.ndarray, q: dict[str, Any], kind: int
          ) -> np.ndarray | None:
    """Per original, how many of ``hashes`` are its anchors of ``kind`` (None: none).
    Capped rows come back too: ``anchor_counting`` says which count."""
    from seawall.hunt.query import lookup

    _, rows = lookup(hashes, table, q["anchor_bits"], cap=None)
    rows = rows[q["anchor_counting"][rows] & (q["anchor_kind"][rows] == kind)]
    if len(rows) == 0:
        return None
    return np.bincount(q["anchor_file"][rows], minlength=len(q["anchor_total"][kind]))
