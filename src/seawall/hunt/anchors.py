"""Anchors: what a suspect file must share with an original before it is worth parsing.

Parsing is most of a hunt's cost (tree-sitter reads ~8 MB/s of JavaScript here), and
nearly every file of a haystack is unrelated to the index. Anchors are read from the
raw bytes without a parser, in a few C-level passes, and survive what a copy goes
through, because they are made of what renaming, reformatting, type stripping and
minifying leave alone:

* ``member`` anchors: runs of ``MEMBER_K`` member names in the order the text accesses
  them (``.name``, ``->name``, ``::name``);
* ``string`` anchors: runs of ``WORDS_K`` lower-cased words. On the private side only
  runs inside one string literal (from the parser) are kept; on the suspect side every
  run of words is hashed, which is a superset, since a literal's words stay in order.

A suspect is parsed only when, for some original, it holds at least ``MIN_HITS`` of the
original's anchors (a third of them when it has fewer than 9) and ``MIN_SHARE`` of them (a whole copy holds nearly all of them; a
bundle or a concatenation holds the share of the original it emits). A suspect too poor
in member anchors to judge (fewer than ``OWN_MIN``: small files, JSX-heavy components)
or large (a bundle: ``MAX_BYTES``) is always parsed, so a copy of an original with few
anchors is never skipped. A regex cannot lose sync here the way a regex lexer does:
nothing depends on knowing where a string or a comment starts, only on runs of names.
"""

from __future__ import annotations

import re
import zlib
from itertools import repeat
from typing import Any, Iterable

import numpy as np

from seawall.hunt.fingerprint import distinct, kgram_hashes

MEMBER_K = 3
WORDS_K = 6
OWN_MIN = 10
"""A suspect with fewer distinct member anchors than this is always parsed."""
MIN_HITS = 3
MIN_SHARE = 0.05
SMALL_SHARE = 1 / 3
"""An original with fewer than 9 anchors needs a third of them (at least one): a
transpiled React component keeps few of its runs of member names (JSX compiles to
``createElement`` calls that interleave new ones)."""
MAX_BYTES = 1 << 20
"""Larger suspects (bundles) are always parsed: they hold parts of many originals."""

_MEMBER = re.compile(rb"(?:\.|->|::)[ \t]*([A-Za-z_$][\w$]*)")
_WORD = re.compile(rb"[a-z0-9]+")
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


def member_anchors(source: bytes) -> np.ndarray:
    return _grams(_MEMBER.findall(source), MEMBER_K, _MEMBER_SEED)


def word_anchors(source: bytes) -> np.ndarray:
    """Every run of ``WORDS_K`` words of the text (the suspect side)."""
    return _grams(_WORD.findall(source.lower()), WORDS_K, _WORD_SEED)


def string_anchors(source: bytes, fragments: Iterable[tuple[int, int]]) -> np.ndarray:
    """The runs of ``WORDS_K`` words inside one string literal (the private side)."""
    parts = [_grams(_WORD.findall(source[s:e].lower()), WORDS_K, _WORD_SEED)
             for s, e in fragments if e - s >= 2 * WORDS_K - 1]
    return distinct(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.uint64)


def private_anchors(source: bytes, fragments: Iterable[tuple[int, int]]) -> np.ndarray:
    return np.union1d(member_anchors(source), string_anchors(source, fragments))


def worth_parsing(source: bytes, index: Any) -> bool:
    """Whether ``source`` may hold one of the originals of ``index``, judged by anchors
    alone (``index.has_anchors`` must be true)."""
    if len(source) > MAX_BYTES:
        return True
    members = member_anchors(source)
    if len(members) < OWN_MIN:
        return True
    q = index.query_arrays()
    totals = q["anchor_total"]
    need = np.maximum(np.minimum(MIN_HITS, np.maximum(1, np.floor(totals * SMALL_SHARE))),
                      MIN_SHARE * totals)
    count = _hits(members, index.anchor["hash"], q)
    if count is not None and bool(np.any((count > 0) & (count >= need))):
        return True
    words = _hits(word_anchors(source), index.anchor["hash"], q)
    if words is None:
        return False
    if count is not None:
        words += count
    return bool(np.any((words > 0) & (words >= need)))


def _hits(hashes: np.ndarray, table: np.ndarray, q: dict[str, np.ndarray]
          ) -> np.ndarray | None:
    """Per original, how many of ``hashes`` are its anchors (None: none at all)."""
    if len(table) == 0 or len(hashes) == 0:
        return None
    from seawall.hunt.index import FILTER_BITS

    top = (hashes >> np.uint64(64 - FILTER_BITS)).astype(np.int64)
    bits = q["anchor_bits"]
    hashes = hashes[(bits[top >> 3] >> (top & 7).astype(np.uint8)) & 1 == 1]
    if len(hashes) == 0:
        return None
    files, counting = q["anchor_file"], q["anchor_counting"]
    lo = np.searchsorted(table, hashes, side="left")
    hit = np.flatnonzero(table[np.minimum(lo, len(table) - 1)] == hashes)
    if len(hit) == 0:
        return None
    hi = np.searchsorted(table, hashes[hit], side="right")
    rows = np.concatenate([np.arange(a, b) for a, b in zip(lo[hit].tolist(), hi.tolist())])
    rows = rows[counting[rows]]
    if len(rows) == 0:
        return None
    return np.bincount(files[rows], minlength=len(q["anchor_total"]))
