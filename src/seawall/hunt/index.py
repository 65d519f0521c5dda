"""The private index: fingerprints and line numbers of the originals, never their text.

On-disk format, version 2 (``docs/hunt.md`` is the full specification)::

    offset 0   8 bytes   magic b"SWLHUNT\\0"
    offset 8   u32 LE    format version (2; version 1 is read too)
    offset 12  u32 LE    header length H
    offset 16  H bytes   header: UTF-8 JSON (parameters, labels, file table, sections)
    then zero padding to a multiple of 8, then the arrays of each section back to back
    (little-endian, each starting at a multiple of 8), in the order the header lists them.

Section ``kgram`` holds ``hash`` u64 (sorted ascending), ``file`` u32, ``exact`` u32,
``first`` u32, ``last`` u32; section ``shingle`` holds ``hash``, ``file``, ``first``,
``last``; section ``anchor`` (version 2) holds ``hash``, ``file`` and ``kind`` (0 member,
1 string: ``anchors.py``).
One row per distinct (hash, file). Loading maps the file and wraps the arrays
without copying, so even a 5-million-line index opens in milliseconds; it is checked
(sizes, order, file ids) before use, because an index may come from someone else.
"""

from __future__ import annotations

import contextlib
import json
import mmap
import os
import struct
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from seawall.hunt.fingerprint import K, SHINGLE, Fingerprint
from seawall.hunt.lexer import NORMALISER

MAGIC = b"SWLHUNT\0"
VERSION = 2
DF_CAP = 10
"""A fingerprint found in more original files than this is internal boilerplate: it
says nothing about which file was copied, so it never counts."""
FILTER_BITS = 26
"""Prefix bits of the lookup bitmap (``query_arrays``), built when an index is loaded."""
_PREAMBLE = struct.Struct("<8sII")
MAX_HEADER = 1 << 30

KGRAM_FIELDS = (("hash", "<u8"), ("file", "<u4"), ("exact", "<u4"), ("first", "<u4"),
                ("last", "<u4"))
SHINGLE_FIELDS = (("hash", "<u8"), ("file", "<u4"), ("first", "<u4"), ("last", "<u4"))
ANCHOR_FIELDS = (("hash", "<u8"), ("file", "<u4"), ("kind", "<u1"))
SECTIONS = {"kgram": KGRAM_FIELDS, "shingle": SHINGLE_FIELDS, "anchor": ANCHOR_FIELDS}
"""Each section's arrays, in the order they are stored."""


class IndexFormatError(ValueError):
    """The file is not a readable index of a version this seawall understands."""


@dataclass
class Original:
    label: str
    path: str
    language: str
    lines: int
    kgrams: int = 0
    """k-grams that count (after the stoplist and the document-frequency cap)."""
    shingles: int = 0
    whole: int = 0
    text: int = 0
    anchors: int = 0
    """Member anchors that count (``anchors.py``); -1 when unknown (added by a version 1
    index)."""
    string_anchors: int = 0
    """String anchors that count; -1 when unknown."""


@dataclass
class Index:
    files: list[Original] = field(default_factory=list)
    labels: dict[str, dict[str, Any]] = field(default_factory=dict)
    kgram: dict[str, np.ndarray] = field(default_factory=dict)
    shingle: dict[str, np.ndarray] = field(default_factory=dict)
    anchor: dict[str, np.ndarray] = field(default_factory=dict)
    stoplist: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    version: int = VERSION
    """The format version the index was read in (a save writes the current one)."""
    _keep: Any = None  # the mapping the arrays view

    def __post_init__(self) -> None:
        for name, fields in SECTIONS.items():
            if not getattr(self, name):
                setattr(self, name, _empty(fields))
        self._whole: dict[int, list[int]] | None = None
        self._query: dict[str, np.ndarray] | None = None
        self._anchored: bool | None = None

    # -- building ------------------------------------------------------------------
    def replace_label(self, label: str, sources: list[str],
                      items: "Packer | Iterable[tuple[str, str, Fingerprint]]",
                      stop: np.ndarray | None = None, stop_info: dict[str, Any] | None = None
                      ) -> None:
        """Drop everything ``label`` held, then add ``items``: a ``Packer``, or (path,
        language, fingerprint) triples, packed here. Either is consumed as its arrays move
        into the index, so a 5-million-line build never holds its fingerprints twice."""
        packer = items if isinstance(items, Packer) else Packer.of(items)
        keep = np.array([f.label != label for f in self.files], dtype=bool)
        remap = np.full(len(self.files) + 1, -1, dtype=np.int64)
        remap[np.flatnonzero(keep)] = np.arange(int(keep.sum()))
        self.files = [f for f in self.files if f.label != label]
        base = len(self.files)
        for path, language, lines, whole, text, known in packer.files:
            self.files.append(Original(label, path, language, lines, whole=whole, text=text,
                                       anchors=known, string_anchors=known))
        chunks = packer.take(base)
        for name, fields in SECTIONS.items():
            kept = _filter_files(getattr(self, name), remap)
            setattr(self, name, None)  # the old section's arrays go before the new are made
            setattr(self, name, _sorted(_concat([kept, *chunks.pop(name)], fields), stop))
        self.labels.pop(label, None)
        self.labels[label] = {"sources": sources,
                              "files": sum(1 for f in self.files if f.label == label)}
        if stop_info is not None:
            self.stoplist = stop_info
        self._count()

    def _count(self) -> None:
        """Per-file totals of fingerprints that count: the denominators of coverage."""
        n = len(self.files)
        kg = np.bincount(self.kgram["file"][self.counting(self.kgram["hash"])], minlength=n)
        sh = np.bincount(self.shingle["file"][self.counting(self.shingle["hash"])], minlength=n)
        counted = self.counting(self.anchor["hash"])
        kind = self.anchor["kind"]
        an = [np.bincount(self.anchor["file"][counted & (kind == k)], minlength=n) for k in (0, 1)]
        for i, f in enumerate(self.files):
            f.kgrams, f.shingles = int(kg[i]), int(sh[i])
            if f.anchors >= 0 and f.string_anchors >= 0:
                f.anchors, f.string_anchors = int(an[0][i]), int(an[1][i])
        self._whole = None
        self._query = None
        self._anchored = None

    @staticmethod
    def counting(hashes: np.ndarray) -> np.ndarray:
        """Mask of rows whose hash is in at most ``DF_CAP`` files (rows are sorted)."""
        if len(hashes) == 0:
            return np.zeros(0, dtype=bool)
        starts = np.flatnonzero(np.concatenate(([True], hashes[1:] != hashes[:-1])))
        runs = np.diff(np.append(starts, len(hashes)))  # rows per distinct hash
        return np.repeat(runs <= DF_CAP, runs)

    def query_arrays(self) -> dict[str, np.ndarray]:
        """What every lookup needs, computed once per loaded index (not per file)."""
        if self._query is None:
            self._query = {
                "kgram_file": self.kgram["file"].astype(np.int64),
                "shingle_file": self.shingle["file"].astype(np.int64),
                "kgram_total": np.array([max(f.kgrams, 1) for f in self.files], np.float64),
                "shingle_total": np.array([f.shingles for f in self.files], np.float64),
                "kgram_bits": _bitmap(self.kgram["hash"]),
                "shingle_bits": _bitmap(self.shingle["hash"]),
                **self._anchor_arrays(),
                "anchor_bits": _bitmap(self.anchor["hash"]),
            }
        return self._query

    def _anchor_arrays(self) -> dict[str, Any]:
        """What ``anchors.worth_parsing`` needs. An original whose anchors of a kind are
        all capped (the same file indexed more than ``DF_CAP`` times) is judged by all of
        them, capped or not: with none that count, a copy of it could never be parsed."""
        n = len(self.files)
        files = self.anchor["file"].astype(np.int64)
        kind = self.anchor["kind"].astype(np.int64)
        counting = self.counting(self.anchor["hash"])
        rows = np.bincount(files * 2 + kind, minlength=2 * n).reshape(n, 2)
        counted = np.bincount(files[counting] * 2 + kind[counting], minlength=2 * n).reshape(n, 2)
        capped = (counted == 0) & (rows > 0)
        counting = counting | capped[files, kind]
        totals = np.where(capped, rows, counted).astype(np.float64)
        return {"anchor_file": files, "anchor_kind": kind, "anchor_counting": counting,
                "anchor_total": (totals[:, 0], totals[:, 1])}

    @property
    def has_anchors(self) -> bool:
        """Whether suspects may be judged by anchors before parsing: only when every
        original has them (an original added by a version 1 index has none, and a copy
        of it would otherwise be skipped)."""
        if self._anchored is None:
            self._anchored = bool(self.files) and all(
                f.anchors >= 0 and f.string_anchors >= 0 for f in self.files)
        return self._anchored

    def whole_table(self) -> dict[int, list[int]]:
        """Originals by whole-stream hash and by text hash (distinct hash spaces)."""
        if self._whole is None:
            table: dict[int, list[int]] = {}
            for i, f in enumerate(self.files):
                for value in {f.whole, f.text} - {0}:
                    table.setdefault(value, []).append(i)
            self._whole = table
        return self._whole

    # -- storage -------------------------------------------------------------------
    def save(self, path: Path) -> None:
        """Write atomically: a crash never leaves half an index behind."""
        sections = []
        for name, fields, arrays in self._sections():
            sections.append({"name": name, "count": int(len(arrays["hash"])),
                             "arrays": [[f, dt] for f, dt in fields]})
        header = {
            "format": "seawall-hunt-index", "version": VERSION,
            "k": K, "shingle": SHINGLE, "df_cap": DF_CAP, "normaliser": NORMALISER,
            "stoplist": self.stoplist, "labels": self.labels,
            "files": [[f.label, f.path, f.language, f.lines, f.kgrams, f.shingles,
                       f"{f.whole:016x}", f"{f.text:016x}", f.anchors, f.string_anchors]
                      for f in self.files],
            "sections": sections,
        }
        raw = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
        path = Path(path)
        fd, tmp = tempfile.mkstemp(dir=path.parent or Path("."), prefix=".hunt-index-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(_PREAMBLE.pack(MAGIC, VERSION, len(raw)))
                out.write(raw)
                out.write(b"\0" * (-(_PREAMBLE.size + len(raw)) % 8))
                for _name, fields, arrays in self._sections():
                    for f, dt in fields:
                        data = np.ascontiguousarray(arrays[f], dtype=dt)
                        out.write(memoryview(data).cast("B"))  # no copy of the column
                        out.write(b"\0" * (-data.nbytes % 8))
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would surprise a shared index
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def _sections(self) -> list[tuple[str, tuple[tuple[str, str], ...], dict[str, np.ndarray]]]:
        return [(name, fields, getattr(self, name)) for name, fields in SECTIONS.items()]

    @classmethod
    def load(cls, path: Path) -> "Index":
        path = Path(path)
        try:
            with open(path, "rb") as fh:
                size = os.fstat(fh.fileno()).st_size
                if size < _PREAMBLE.size:
                    raise IndexFormatError(f"{path}: not a seawall hunt index (too short)")
                buf: Any = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        except OSError as exc:
            raise IndexFormatError(f"{path}: cannot read index: {exc.strerror or exc}") from None
        try:
            return cls._parse(buf, size, path)
        except IndexFormatError:
            raise
        except (ValueError, KeyError, TypeError, IndexError, UnicodeDecodeError,
                OverflowError, struct.error) as exc:
            # the mapping is left to the collector: arrays made so far may still view it
            raise IndexFormatError(f"{path}: corrupt index: {exc}") from None

    @classmethod
    def _parse(cls, buf: Any, size: int, path: Path) -> "Index":
        magic, version, hlen = _PREAMBLE.unpack_from(buf, 0)
        if magic != MAGIC:
            raise IndexFormatError(f"{path}: not a seawall hunt index (bad magic)")
        if version > VERSION:
            raise IndexFormatError(
                f"{path}: index format version {version} is newer than this seawall reads "
                f"(version {VERSION}); upgrade seawall or rebuild the index")
        if version < 1:
            raise IndexFormatError(f"{path}: unknown index format version {version}")
        if hlen > min(MAX_HEADER, size - _PREAMBLE.size):
            raise IndexFormatError(f"{path}: corrupt index: header runs past the end")
        header = json.loads(bytes(buf[_PREAMBLE.size:_PREAMBLE.size + hlen]))
        if header.get("version") != version or header.get("k") != K \
                or header.get("shingle") != SHINGLE:
            raise IndexFormatError(f"{path}: index parameters do not match this seawall "
                                   f"(k={header.get('k')}, shingle={header.get('shingle')})")
        if header.get("normaliser") != NORMALISER:
            raise IndexFormatError(
                f"{path}: index made by token normaliser {header.get('normaliser')}, this "
                f"seawall uses {NORMALISER}: rebuild it (remove the file, then `seawall index "
                f"add` your sources again)")
        width = 10 if version >= 2 else 8
        if any(not isinstance(r, list) or len(r) != width for r in header["files"]):
            raise IndexFormatError(f"{path}: corrupt index: a file row is not {width} fields")
        files = [Original(str(r[0]), str(r[1]), str(r[2]), _header_int(r[3]), _header_int(r[4]),
                          _header_int(r[5]), int(r[6], 16), int(r[7], 16),
                          _header_int(r[8], -1) if version >= 2 else -1,
                          _header_int(r[9], -1) if version >= 2 else -1)
                 for r in header["files"]]
        offset = _PREAMBLE.size + hlen
        offset += -offset % 8
        sections: dict[str, dict[str, np.ndarray]] = {}
        for section in header["sections"]:
            count = int(section["count"])
            if count < 0:
                raise IndexFormatError(f"{path}: corrupt index: negative count")
            arrays = {}
            for fname, dt in section["arrays"]:
                dtype = np.dtype(dt)
                nbytes = count * dtype.itemsize
                if offset + nbytes > size:
                    raise IndexFormatError(f"{path}: corrupt index: truncated "
                                           f"({section['name']}.{fname})")
                arrays[fname] = np.frombuffer(buf, dtype=dtype, count=count, offset=offset)
                offset += nbytes + (-nbytes % 8)
            sections[section["name"]] = arrays
        if version >= 2 and "anchor" not in sections:
            raise IndexFormatError(f"{path}: corrupt index: no anchor section")
        index = cls(files=files, labels=dict(header.get("labels", {})),
                    kgram=sections["kgram"], shingle=sections["shingle"],
                    anchor=sections.get("anchor", {}),
                    stoplist=dict(header.get("stoplist", {})), path=path, version=version,
                    _keep=buf)
        index._check(path)
        return index

    def _check(self, path: Path) -> None:
        for name, fields, arrays in self._sections():
            if set(arrays) != {f for f, _ in fields} or any(
                    arrays[f].dtype != np.dtype(dt) for f, dt in fields):
                raise IndexFormatError(f"{path}: corrupt index: bad {name} section")
            if name == "anchor" and len(arrays["kind"]) and int(arrays["kind"].max()) > 1:
                raise IndexFormatError(f"{path}: corrupt index: unknown anchor kind")
            h = arrays["hash"]
            if len(h) > 1 and bool(np.any(h[1:] < h[:-1])):
                raise IndexFormatError(f"{path}: corrupt index: {name} hashes out of order")
            if len(h) and int(arrays["file"].max()) >= len(self.files):
                raise IndexFormatError(f"{path}: corrupt index: {name} names a missing file")

    def info(self) -> dict[str, Any]:
        return {
            "version": self.version, "k": K, "shingle": SHINGLE, "df_cap": DF_CAP,
            "normaliser": NORMALISER, "files": len(self.files), "lines": sum(f.lines for f in self.files),
            "kgrams": int(len(self.kgram["hash"])), "shingles": int(len(self.shingle["hash"])),
            "anchors": int(len(self.anchor["hash"])), "prefilter": self.has_anchors,
            "labels": self.labels, "stoplist": self.stoplist,
        }


def _bitmap(hashes: np.ndarray) -> np.ndarray:
    """One bit per value of the top ``FILTER_BITS`` bits of a hash: set when the table
    holds a hash with that prefix (8 MiB; 1% of the bits set for a million k-grams)."""
    bits = np.zeros(1 << (FILTER_BITS - 3), dtype=np.uint8)
    top = (np.asarray(hashes, dtype=np.uint64) >> np.uint64(64 - FILTER_BITS)).astype(np.int64)
    if len(top) > 1 and bool(np.any(top[1:] < top[:-1])):
        top.sort()  # index tables are sorted already: their prefixes are too
    if len(top) == 0:
        return bits
    top = top[np.concatenate(([True], top[1:] != top[:-1]))]
    byte = top >> 3
    starts = np.flatnonzero(np.concatenate(([True], byte[1:] != byte[:-1])))
    bits[byte[starts]] = np.bitwise_or.reduceat((1 << (top & 7)).astype(np.uint8), starts)
    return bits


def _empty(fields: tuple[tuple[str, str], ...]) -> dict[str, np.ndarray]:
    return {f: np.zeros(0, dtype=dt) for f, dt in fields}


def _concat(parts: list[dict[str, np.ndarray]], fields: tuple[tuple[str, str], ...]
            ) -> dict[str, np.ndarray]:
    """One array per field, taking each field out of the parts as it goes: a field's
    per-file arrays are freed once joined, so at most one extra field exists at a time."""
    return {f: np.concatenate([np.asarray(p.pop(f), dtype=dt) for p in parts])
            for f, dt in fields}


class Packer:
    """Fingerprints on their way into an index, packed into large column chunks as they
    come: a build never holds many thousand small per-file arrays at once (freed, they
    stay in the allocator's heap), so its peak memory stays near the index's own size."""

    CHUNK_ROWS = 1 << 18

    def __init__(self) -> None:
        self.files: list[tuple[str, str, int, int, int, int]] = []
        """(path, language, lines, whole hash, text hash, 0 or -1: anchors known or not)."""
        self._seen: set[str] = set()
        self._pending: dict[str, list[dict[str, np.ndarray]]] = {n: [] for n in SECTIONS}
        self._rows = dict.fromkeys(self._pending, 0)
        self._chunks: dict[str, list[dict[str, np.ndarray]]] = {n: [] for n in self._pending}

    @classmethod
    def of(cls, items: Iterable[tuple[str, str, Fingerprint]]) -> "Packer":
        packer = cls()
        for path, language, fp in items:
            packer.add(path, language, fp)
        if isinstance(items, list):
            items.clear()
        return packer

    def __len__(self) -> int:
        return len(self.files)

    def add(self, path: str, language: str, fp: Fingerprint) -> bool:
        """Add one file (False when its path was added already: the first one stays)."""
        if path in self._seen:
            return False
        self._seen.add(path)
        fid = len(self.files)
        known = 0 if fp.anchors is not None and fp.string_anchors is not None else -1
        self.files.append((path, language, fp.lines, fp.whole, fp.text, known))
        fp = compact(fp)
        self._push("kgram", {"hash": fp.kgrams, "exact": fp.exact, "first": fp.first,
                             "last": fp.last, "file": _ids(fid, len(fp.kgrams))})
        self._push("shingle", {"hash": fp.shingles, "first": fp.shingle_first,
                               "last": fp.shingle_last, "file": _ids(fid, len(fp.shingles))})
        for kind, found in ((0, fp.anchors), (1, fp.string_anchors)):
            if found is not None:
                self._push("anchor", {"hash": found, "file": _ids(fid, len(found)),
                                      "kind": np.full(len(found), kind, dtype=np.uint8)})
        return True

    def _push(self, name: str, part: dict[str, np.ndarray]) -> None:
        self._pending[name].append(part)
        self._rows[name] += len(part["hash"])
        if self._rows[name] >= self.CHUNK_ROWS:
            self._flush(name)

    def _flush(self, name: str) -> None:
        if self._pending[name]:
            self._chunks[name].append(_concat(self._pending[name], SECTIONS[name]))
        self._pending[name], self._rows[name] = [], 0

    def take(self, base: int) -> dict[str, list[dict[str, np.ndarray]]]:
        """The chunks, file ids shifted by ``base``; the packer is empty afterwards."""
        for name in self._pending:
            self._flush(name)
        chunks, self._chunks = self._chunks, {n: [] for n in self._pending}
        for parts in chunks.values():
            for part in parts:
                part["file"] += np.uint32(base)
        return chunks


def _header_int(value: Any, least: int = 0) -> int:
    """A count from an index header: an integer, not below ``least`` (-1: unknown)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < least \
            or value >= 1 << 40:
        raise ValueError(f"bad count {value!r}")
    return value


def _ids(fid: int, count: int) -> np.ndarray:
    return np.full(count, fid, dtype=np.uint32)


def compact(fp: Fingerprint) -> Fingerprint:
    """What an index keeps of a fingerprint: one row per distinct k-gram and shingle (its
    first occurrence), and no per-k-gram specificity (a query-side figure). Collecting
    compact fingerprints keeps a large build's memory near the index's own size."""
    if fp.compact:
        return fp
    keep = _first_rows(fp.kgrams)
    fp.kgrams, fp.exact = fp.kgrams[keep], fp.exact[keep]
    fp.first, fp.last = fp.first[keep], fp.last[keep]
    keep = _first_rows(fp.shingles)
    fp.shingles = fp.shingles[keep]
    fp.shingle_first, fp.shingle_last = fp.shingle_first[keep], fp.shingle_last[keep]
    fp.specific = None
    fp.compact = True
    return fp


def _first_rows(hashes: np.ndarray) -> np.ndarray:
    """Positions of each distinct hash's first occurrence, in file order."""
    if len(hashes) < 2:
        return np.arange(len(hashes))
    order = np.argsort(hashes, kind="stable")
    ordered = hashes[order]
    return np.sort(order[np.concatenate(([True], ordered[1:] != ordered[:-1]))])


def _filter_files(arrays: dict[str, np.ndarray], remap: np.ndarray) -> dict[str, np.ndarray]:
    new = remap[arrays["file"].astype(np.int64)] if len(arrays["file"]) else \
        np.zeros(0, dtype=np.int64)
    keep = new >= 0
    out = {k: np.asarray(v)[keep] for k, v in arrays.items()}
    out["file"] = new[keep].astype(np.uint32)
    return out


def _sorted(arrays: dict[str, np.ndarray], stop: np.ndarray | None) -> dict[str, np.ndarray]:
    """Drop stoplisted rows, then sort by (hash, file): one column at a time, each old
    column freed as its new one is made (``arrays`` is consumed)."""
    if stop is not None and len(stop) and len(arrays["hash"]):
        from seawall.hunt.stoplist import stopped

        keep = ~stopped(stop, arrays["hash"])  # a mask: an eighth of an index array's size
        if not keep.all():
            for k in list(arrays):
                arrays[k] = arrays[k][keep]
        del keep
    # within one hash, rows already come in file order (the kept rows were sorted by
    # (hash, file) and renumbering keeps their order; new files have higher ids, added in
    # order), so a stable sort by hash alone sorts by (hash, file), in less memory
    # than a lexsort
    order = np.argsort(arrays["hash"], kind="stable")
    for k in list(arrays):
        arrays[k] = np.ascontiguousarray(arrays[k][order])
    return arrays
