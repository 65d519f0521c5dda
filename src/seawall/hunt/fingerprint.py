"""From a token stream to the three channels of fingerprints, with line numbers.

* ``kgrams``: a 64-bit hash of every run of ``K`` normalised tokens (all of them kept,
  no winnowing: the private side is small and every lookup is one binary search), with
  a 32-bit hash of the same run with real identifier names (``exact``), and the first
  and last line of the run.
* ``shingles``: a hash of every run of ``SHINGLE`` words of string literals, the
  channel that survives a port to another language.
* ``whole``: one hash of the whole normalised stream, for files too small for k-grams;
* ``text``: one hash of the file's text without whitespace, for files with no code tokens
  at all (type declarations only), which a verbatim copy still reveals.

Token hashes are BLAKE2b, so fingerprints are the same in every process and on every
machine (Python's ``hash`` is salted per process); the k-gram hash is a polynomial over
them computed with numpy, then mixed (splitmix64) so its high bits are uniform.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from seawall.hunt.lexer import WEB, Tokens, tokenize

K = 14
"""Tokens per k-gram (12 found more of a bundle but let haystack files through; 16 lost
transpiled copies: measured in shared/notes/code-fingerprinting.md)."""
SHINGLE = 8
"""Words per string-literal shingle."""
WHOLE_MIN_TOKENS = 10
"""A whole-file hash of fewer tokens would match unrelated trivial files."""
TEXT_MIN_BYTES = 64
"""Fewer non-space bytes (``export * from './x'``) are shared by unrelated files."""
_SPACES = b" \t\n\r\x0b\x0c"

_KEYWORDS = frozenset("""
    function class new this super null typeof instanceof in of for while do if else return
    throw try catch finally switch case break continue async await yield delete with def
    lambda not and or is pass raise except elif from global nonlocal assert del true false
    none self""".split())
"""Tokens that every program is made of (a string word that equals one still counts as
common: it is as likely in unrelated code)."""

_NATIVE_KEYWORDS = _KEYWORDS | frozenset("""
    func go chan defer select range struct interface map package fallthrough goto nil iota
    fn impl mut match loop pub crate mod trait where unsafe ref dyn move use self extern
    static final extends implements throws synchronized native transient volatile
    instanceof interface void int char long short double float byte boolean bool unsigned
    signed sizeof typedef union auto register inline template typename virtual operator
    friend using nullptr explicit mutable constexpr noexcept decltype u8 u16 u32 u64 u128
    usize i8 i16 i32 i64 i128 isize f32 f64 str string NULL null_literal""".split())
"""The same for Go, Rust, Java and C/C++ (their own keywords and primitive types)."""

_BASE = np.uint64(0x9E3779B97F4A7C15)
_TOKEN_CACHE: dict[str, int] = {}
_CACHE_MAX = 2_000_000


def token_hash(token: str) -> int:
    value = _TOKEN_CACHE.get(token)
    if value is None:
        digest = hashlib.blake2b(token.encode("utf-8", "surrogatepass"), digest_size=8).digest()
        value = int.from_bytes(digest, "little")
        if len(_TOKEN_CACHE) >= _CACHE_MAX:
            _TOKEN_CACHE.clear()
        _TOKEN_CACHE[token] = value
    return value


def token_array(tokens: list[str]) -> np.ndarray:
    """Token hashes, in one pass (a hash of 0 is only recomputed, never wrong)."""
    cache_get = _TOKEN_CACHE.get
    return np.array([cache_get(t) or token_hash(t) for t in tokens], dtype=np.uint64)


@lru_cache(maxsize=None)
def _generic(native: bool) -> np.ndarray:
    """Hashes of the tokens that any code is made of (``I``, ``N``, keywords)."""
    words = _NATIVE_KEYWORDS if native else _KEYWORDS
    return np.unique(np.array([token_hash(t) for t in ("I", "N", *words)], dtype=np.uint64))


def _mix(h: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: spreads every input bit over the whole word."""
    h = h ^ (h >> np.uint64(30))
    h = h * np.uint64(0xBF58476D1CE4E5B9)
    h = h ^ (h >> np.uint64(27))
    h = h * np.uint64(0x94D049BB133111EB)
    return h ^ (h >> np.uint64(31))


def distinct(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values: a sort and one comparison, several times faster than
    ``np.unique`` (numpy 2's hash table) on the million-element arrays of a bundle."""
    out = np.sort(values)
    if len(out) < 2:
        return out
    return out[np.concatenate(([True], out[1:] != out[:-1]))]


def kgram_hashes(values: np.ndarray, k: int) -> np.ndarray:
    """Hash of every window of ``k`` token hashes (a polynomial, wrapping mod 2**64)."""
    n = len(values) - k + 1
    if n <= 0:
        return np.zeros(0, dtype=np.uint64)
    with np.errstate(over="ignore"):
        h = values[:n].copy()
        for j in range(1, k):
            h *= _BASE
            h += values[j : j + n]
        return _mix(h)


def lines_of(starts: list[int], newlines: np.ndarray) -> np.ndarray:
    """1-based line number of each byte offset."""
    return (np.searchsorted(newlines, np.asarray(starts, dtype=np.int64), side="right") + 1
            ).astype(np.uint32)


@dataclass
class Fingerprint:
    """All a file contributes to the index or to a query. Hashes and line numbers only."""

    kgrams: np.ndarray  # uint64
    exact: np.ndarray  # uint32
    first: np.ndarray  # uint32, first line of each k-gram
    last: np.ndarray  # uint32, last line
    shingles: np.ndarray  # uint64
    shingle_first: np.ndarray  # uint32
    shingle_last: np.ndarray  # uint32
    whole: int  # 0 when the file is too small
    tokens: int
    lines: int
    errors: bool = False
    text: int = 0
    """Hash of the text without whitespace (0 when too short)."""
    compact: bool = False
    """Reduced to what an index keeps (``index.compact``)."""
    anchors: np.ndarray | None = None
    """The private side's member anchors (``anchors.py``), for ``index add``."""
    string_anchors: np.ndarray | None = None
    """...and its string anchors."""
    specific: np.ndarray | None = None
    """Per k-gram: how many of its tokens are specific (property names, string words,
    regexes), as opposed to ``I``, ``N`` and keywords that any code is made of."""


def fingerprint_tokens(tokens: Tokens, newlines: np.ndarray, lines: int, *,
                       native: bool = False) -> Fingerprint:
    """``native``: the tokens are of Go, Rust, Java or C/C++ (another keyword list)."""
    k = K
    hashed = tokens.norm_hash is not None
    norm = tokens.norm_hash if hashed else token_array(tokens.norm)
    exact = tokens.exact_hash if hashed else token_array(tokens.exact)
    kg = kgram_hashes(norm, k)
    ex = (kgram_hashes(exact, k) >> np.uint64(32)).astype(np.uint32)
    tline = lines_of(tokens.starts, newlines)
    first = tline[: len(kg)]
    last = tline[k - 1 : k - 1 + len(kg)] if len(kg) else first
    words = tokens.words_hash if hashed else token_array(tokens.words)
    sh = kgram_hashes(words, SHINGLE)
    wline = lines_of(tokens.word_starts, newlines)
    whole = 0
    if len(norm) >= WHOLE_MIN_TOKENS:
        digest = hashlib.blake2b(norm.tobytes(), digest_size=8).digest()
        whole = int.from_bytes(digest, "little") or 1
    generic = _generic(native)
    at = np.minimum(np.searchsorted(generic, norm), len(generic) - 1)
    special = (generic[at] != norm).astype(np.int32)
    cumulative = np.concatenate([[0], np.cumsum(special)])
    specific = (cumulative[k:] - cumulative[:-k]) if len(kg) else np.zeros(0, np.int64)
    return Fingerprint(
        specific=specific,
        kgrams=kg, exact=ex, first=first, last=last,
        shingles=sh, shingle_first=wline[: len(sh)],
        shingle_last=wline[SHINGLE - 1 : SHINGLE - 1 + len(sh)] if len(sh) else wline[:0],
        whole=whole, tokens=len(norm), lines=lines, errors=tokens.errors,
    )


def newline_offsets(source: Any) -> np.ndarray:
    buf = np.frombuffer(source, dtype=np.uint8)
    return np.flatnonzero(buf == 10)


def text_hash(source: bytes) -> int:
    bare = source.translate(None, _SPACES)  # what `\s` matches in bytes, in one C call
    if len(bare) < TEXT_MIN_BYTES:
        return 0
    digest = hashlib.blake2b(bare, digest_size=8, person=b"seawall-text").digest()
    return int.from_bytes(digest, "little") or 1


def fingerprint(source: bytes, language: str, *, anchors: bool = False) -> Fingerprint:
    """``anchors``: also compute the anchors an index keeps (the private side)."""
    newlines = newline_offsets(source)
    lines = len(newlines) + (1 if source and not source.endswith(b"\n") else 0)
    tokens = tokenize(source, language, hasher=token_array, fragments=anchors)
    fp = fingerprint_tokens(tokens, newlines, lines, native=language not in WEB)
    fp.text = text_hash(source)
    if anchors:
        from seawall.hunt import anchors as anchor_mod

        fp.anchors = anchor_mod.private_member_anchors(source, tokens.dropped)
        fp.string_anchors = anchor_mod.string_anchors(source, tokens.fragments)
    return fp
