"""Look one suspect file up in the index and decide which originals it contains.

Scoring is asymmetric containment, never symmetric similarity: a copied file is judged
by how much of *it* comes from one original (``coverage_suspect``), a bundle by how
much of each *original* it holds (``coverage_original``): a 13 MB bundle holding all of
a 200-line file is a complete copy of that file, though the file is 0.01% of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from seawall.hunt.fingerprint import K, Fingerprint, distinct
from seawall.hunt.index import DF_CAP, FILTER_BITS, Index

MIN_MATCHED = 10
"""k-grams (14 tokens each) in common, at least, before any score counts."""
SUSPECT_COVERAGE = 0.5
"""Share of the suspect's k-grams that come from one original: a whole-file copy."""
ORIGINAL_COVERAGE = 0.2
"""Share of the original's k-grams found in the suspect: a bundle or a concatenation."""
PART_MIN_MATCHED = 5
PART_COVERAGE = 0.05
"""Weaker evidence, for a bundle (most originals are only partly emitted: unused exports
and feature-gated code are dropped): at least 5 matched k-grams covering 5% of the
original, counted only with the specificity below."""
SMALL_MIN_MATCHED = 3
SMALL_COVERAGE = 0.3
"""...or, for a small original, at least 3 matched k-grams covering 30% of it."""
SMALL_SPECIFIC = 2.0
"""Both need matched k-grams that hold on average this many specific tokens (property
names, string words, regexes), never `I I N I ...` that any code has."""
SUPPORT_SHINGLES = 3
SUPPORT_SHINGLE_SHARE = 0.5
"""In a file that holds private code and is no one original's copy (a bundle), an
original whose string shingles are matched this many times, and at least half of them,
is found by its strings (a file with little code: messages, prompts, tables)."""
MIN_SHINGLES = 10
"""String-literal word shingles in common for a string-only (port) match."""
RUN_GAP = K
"""Two hits of one original closer than this (in k-grams) are one copied passage."""
VERBATIM_EXACT = 0.95
"""Share of matched k-grams with the same identifier names, for ``verbatim``."""
VERBATIM_LAYOUT = 0.9
"""...and with the same line layout (same lines, shifted by one offset)."""


@dataclass
class Match:
    original: int
    kind: str
    matched: int
    coverage_original: float
    coverage_suspect: float
    original_lines: list[list[int]]
    suspect_lines: list[list[int]]
    shingles: int = 0
    whole: bool = False
    channels: list[str] = field(default_factory=list)

    def evidence(self, index: Index) -> dict[str, Any]:
        f = index.files[self.original]
        return {
            "original": f.path, "label": f.label, "kind": self.kind,
            "coverage_original": round(self.coverage_original, 4),
            "coverage_suspect": round(self.coverage_suspect, 4),
            "matched": self.matched, "original_lines": self.original_lines,
            "suspect_lines": self.suspect_lines, "channels": self.channels,
            "string_shingles": self.shingles, "original_total_lines": f.lines,
        }


def lookup(hashes: np.ndarray, table: np.ndarray, bits: np.ndarray | None = None,
           cap: int | None = DF_CAP) -> tuple[np.ndarray, np.ndarray]:
    """Every (suspect position, index row) pair with equal hashes; a hash in more than
    ``cap`` rows is skipped (``None``: none is).

    ``bits`` (``Index.query_arrays``) is a bitmap of the table's top hash bits: most
    k-grams of an unrelated file are ruled out by one lookup in it, and only the rest go
    through a binary search of the whole table (which misses the cache at every step)."""
    if len(hashes) == 0 or len(table) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    where = None
    if bits is not None:
        top = (hashes >> np.uint64(64 - FILTER_BITS)).astype(np.int64)
        where = np.flatnonzero((bits[top >> 3] >> (top & 7).astype(np.uint8)) & 1)
        hashes = hashes[where]
        if len(hashes) == 0:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty
    pos, rows = _search(hashes, table, cap)
    return (pos if where is None else where[pos]), rows


def _search(hashes: np.ndarray, table: np.ndarray, cap: int | None
            ) -> tuple[np.ndarray, np.ndarray]:
    lo = np.searchsorted(table, hashes, side="left")
    hit = np.flatnonzero(table[np.minimum(lo, len(table) - 1)] == hashes)
    if len(hit) == 0:  # the usual case for an unrelated file: one search per k-gram
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    count = np.searchsorted(table, hashes[hit], side="right") - lo[hit]
    if cap is None:
        ok, c, lo_ok = hit, count, lo[hit]
    else:
        keep = count <= cap
        ok, c, lo_ok = hit[keep], count[keep], lo[hit][keep]
    if len(ok) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    pos = np.repeat(ok, c)
    starts = np.repeat(lo_ok - (np.cumsum(c) - c), c)
    rows = starts + np.arange(len(pos))
    return pos.astype(np.int64), rows.astype(np.int64)


def _in_runs(files: np.ndarray, pos: np.ndarray, rows: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray]:
    """Keep only hits with another hit of the same original within ``K`` positions.

    A copied passage matches as a run of overlapping k-grams; a lone 14-token match in a
    large file is a coincidence (a common idiom), and counting it would let a big bundle
    creep over an original's coverage threshold one idiom at a time."""
    if len(pos) < 2:
        return pos[:0], rows[:0]
    fid = files[rows]
    order = np.lexsort((pos, fid))
    f, p = fid[order], pos[order]
    near = (np.diff(p) <= RUN_GAP) & (f[1:] == f[:-1])
    keep = np.zeros(len(p), dtype=bool)
    keep[1:] |= near
    keep[:-1] |= near
    chosen = order[keep]
    return pos[chosen], rows[chosen]


def _per_file(files: np.ndarray, rows: np.ndarray, pos: np.ndarray, n: int
              ) -> tuple[np.ndarray, np.ndarray]:
    """Distinct original rows and distinct suspect positions matched, per original file."""
    if len(rows) == 0:
        z = np.zeros(n, dtype=np.int64)
        return z, z
    urows = distinct(rows)
    orig = np.bincount(files[urows], minlength=n)
    pairs = distinct((files[rows].astype(np.int64) << 32) | pos)
    susp = np.bincount((pairs >> 32).astype(np.int64), minlength=n)
    return orig, susp


def ranges(first: np.ndarray, last: np.ndarray, gap: int = 1) -> list[list[int]]:
    """Merge line intervals that overlap or touch (within ``gap`` lines)."""
    if len(first) == 0:
        return []
    order = np.lexsort((last, first))
    out: list[list[int]] = []
    for a, b in zip(first[order].tolist(), last[order].tolist()):
        if out and a <= out[-1][1] + gap:
            if b > out[-1][1]:
                out[-1][1] = b
        else:
            out.append([a, b])
    return out


def match(index: Index, fp: Fingerprint, family: str) -> list[Match]:
    """The originals ``fp`` contains, best first."""
    n = len(index.files)
    if n == 0:
        return []
    kg, sh = index.kgram, index.shingle
    cached = index.query_arrays()
    pos, rows = lookup(fp.kgrams, kg["hash"], cached["kgram_bits"])
    files = cached["kgram_file"]
    pos, rows = _in_runs(files, pos, rows)
    orig, susp = _per_file(files, rows, pos, n)
    spos, srows = lookup(fp.shingles, sh["hash"], cached["shingle_bits"])
    sfiles = cached["shingle_file"]
    sorig, _ = _per_file(sfiles, srows, spos, n)
    cov_o = orig / cached["kgram_total"]
    cov_s = susp / max(len(fp.kgrams), 1)
    token_ok = (orig >= MIN_MATCHED) & ((cov_s >= SUSPECT_COVERAGE) | (cov_o >= ORIGINAL_COVERAGE))
    small = np.flatnonzero(~token_ok & (
        ((orig >= SMALL_MIN_MATCHED) & (cov_o >= SMALL_COVERAGE))
        | ((orig >= PART_MIN_MATCHED) & (cov_o >= PART_COVERAGE))))
    if len(small) and fp.specific is not None:
        # weaker evidence (a small original matched by a few k-grams, or a twentieth of a
        # large one in a bundle) counts only when the matched k-grams carry specific tokens
        # (names of properties, words of strings), never for `I I N I ...` that any code has
        info = np.bincount(files[rows], weights=fp.specific[pos], minlength=n)
        hits = np.bincount(files[rows], minlength=n)
        for fid in small.tolist():
            if info[fid] >= SMALL_SPECIFIC * max(hits[fid], 1):
                token_ok[fid] = True
    string_hit = sorig >= MIN_SHINGLES
    string_ok = string_hit
    support = np.zeros(n, dtype=bool)
    if token_ok.any() and not bool(np.any(token_ok & (cov_s >= SUSPECT_COVERAGE))):
        support = ~token_ok & (sorig >= SUPPORT_SHINGLES) & (
            sorig >= SUPPORT_SHINGLE_SHARE * cached["shingle_total"])
        string_hit = string_hit | support
    table = index.whole_table()
    same_stream = set(table.get(fp.whole, [])) if fp.whole else set()
    same_text = set(table.get(fp.text, [])) if fp.text else set()
    whole = same_stream | same_text
    if token_ok.any() or whole:
        # strings shared with a sibling of the original this file is a copy of are
        # explained by that copy; string-only evidence is for ports, which share no code
        string_ok = support  # ...but in a bundle, an original's own strings are found
    candidates = set(np.flatnonzero(token_ok | string_ok).tolist()) | whole
    if not candidates:
        return []
    groups = _grouped(files[rows] if len(rows) else rows, pos, rows)
    if bool(np.any(token_ok & (cov_s >= SUSPECT_COVERAGE))):
        # a copy of a file: what else it matches must be more than that file's siblings;
        # in a bundle (no original is most of it) siblings are all there, and all count
        _explain_away(token_ok, groups, orig, cached["kgram_total"], len(fp.kgrams), whole)
    candidates = set(np.flatnonzero(token_ok | string_ok).tolist()) | whole
    out = []
    for fid in sorted(candidates):
        p, r = groups.get(fid, (pos[:0], rows[:0]))
        channels = []
        if token_ok[fid]:
            channels.append("tokens")
        if fid in same_stream:
            channels.append("whole-file")
        if fid in same_text:
            channels.append("file-text")
        if string_hit[fid]:
            channels.append("strings")
        if token_ok[fid] or fid in whole:
            o_lines = ranges(kg["first"][r], kg["last"][r])
            s_lines = ranges(fp.first[p], fp.last[p])
            kind = "verbatim" if fid in same_text else _kind(index, fid, fp, family, p, r)
            if fid in whole and not len(p):
                o_lines, s_lines = [[1, index.files[fid].lines]], [[1, fp.lines]]
        else:
            ssel = sfiles[srows] == fid
            sp, sr = spos[ssel], srows[ssel]
            o_lines = ranges(sh["first"][sr], sh["last"][sr])
            s_lines = ranges(fp.shingle_first[sp], fp.shingle_last[sp])
            kind = "string-only"
        cov_orig = 1.0 if fid in whole else float(cov_o[fid])
        cov_susp = 1.0 if fid in whole else float(cov_s[fid])
        out.append(Match(fid, kind, int(orig[fid]), min(cov_orig, 1.0), min(cov_susp, 1.0),
                         o_lines, s_lines, int(sorig[fid]), fid in whole, channels))
    out.sort(key=lambda m: (-m.coverage_original, -m.matched, m.original))
    return out


def _grouped(by_file: np.ndarray, pos: np.ndarray, rows: np.ndarray
             ) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """(suspect positions, index rows) of the hits, per original: one sort, not a scan of
    all hits per original (a bundle has hundreds of thousands of hits)."""
    if len(by_file) == 0:
        return {}
    order = np.argsort(by_file, kind="stable")
    ids, first = np.unique(by_file[order], return_index=True)
    bounds = list(first.tolist()) + [len(order)]
    return {int(fid): (pos[order[a:b]], rows[order[a:b]])
            for fid, a, b in zip(ids.tolist(), bounds[:-1], bounds[1:])}


def _explain_away(token_ok: np.ndarray, groups: dict[int, tuple[np.ndarray, np.ndarray]],
                  orig: np.ndarray, totals: np.ndarray, n_suspect: int, whole: set[int]) -> None:
    """Drop originals whose hits are already explained by a better match.

    Sibling originals share code (two list components, a file and its older copy): a
    copy of one also matches part of the other. Originals are taken best first; each must
    pass the thresholds again on the suspect positions no better original has claimed,
    so a concatenation of two originals reports both, and a copy of one reports one."""
    covered = np.zeros(max(n_suspect, 1), dtype=bool)
    order = sorted(np.flatnonzero(token_ok).tolist(), key=lambda f: (-orig[f], f))
    for fid in order:
        p, r = groups.get(fid, (np.zeros(0, np.int64), np.zeros(0, np.int64)))
        fresh = ~covered[p]
        if fid not in whole and not fresh.all():
            matched = len(distinct(r[fresh]))
            cov_o = matched / totals[fid]
            cov_s = len(distinct(p[fresh])) / max(n_suspect, 1)
            passes = matched >= MIN_MATCHED and (
                cov_s >= SUSPECT_COVERAGE or cov_o >= ORIGINAL_COVERAGE)
            if not passes:
                token_ok[fid] = False
                continue
        covered[p] = True


def _kind(index: Index, fid: int, fp: Fingerprint, family: str, p: np.ndarray,
          r: np.ndarray) -> str:
    """verbatim / renamed / transpiled, from which normalisations the match needed."""
    kg = index.kgram
    original = index.files[fid]
    if _family(original.language) != family and {family, _family(original.language)} != {"js", "ts"}:
        return "string-only"  # across languages only the words of strings can match
    if len(p) == 0:
        return "verbatim" if family == _family(original.language) else "transpiled"
    same_names = float(np.mean(kg["exact"][r] == fp.exact[p]))
    o_first = kg["first"][r].astype(np.int64)
    s_first = fp.first[p].astype(np.int64)
    offset = s_first - o_first
    values, counts = np.unique(offset, return_counts=True)
    shift = values[np.argmax(counts)]
    span_same = (fp.last[p].astype(np.int64) - s_first) == (kg["last"][r].astype(np.int64) - o_first)
    layout = float(np.mean((offset == shift) & span_same))
    if same_names >= VERBATIM_EXACT and layout >= VERBATIM_LAYOUT:
        return "verbatim"
    o_span = float(np.median(kg["last"][r].astype(np.int64) - o_first))
    s_span = float(np.median(fp.last[p].astype(np.int64) - s_first))
    if _family(original.language) == "ts" and family == "js":
        return "transpiled"
    if o_span >= 2 and s_span < 0.5 * o_span:
        return "transpiled"  # minified: the same tokens on far fewer lines
    return "renamed"


def _family(language: str) -> str:
    from seawall.hunt.lexer import FAMILY

    return FAMILY.get(language, language)
