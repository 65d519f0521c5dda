"""Find every rule keyword in a file in one pass, with Hyperscan or in pure Python.

Both engines answer the same question, exactly: every occurrence, overlapping ones
included, of every keyword (a lower-cased literal) in ``data`` compared case-insensitively
in ASCII, whose first byte lies in ``[start, stop)``. A test holds them to identical answers.

Hyperscan (a default dependency on Linux x86_64, ``seawall[fast]`` elsewhere) compiles the keywords into one
database and reads the bytes once, at hundreds of MB/s. The fallback lower-cases each
chunk once and makes one ``re`` pass per distinct first byte of the keywords (see
``PythonMatcher``): tens of MB/s, the same per byte on a 10 MB line as on small files.
"""

from __future__ import annotations

import os
import re
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, ClassVar

ENGINES = ("hyperscan", "python")
ENV = "SEAWALL_ENGINE"
"""Environment variable naming the engine (``hyperscan`` or ``python``); unset picks the best."""

Hits = dict[int, list[int]]
"""keyword index -> sorted starts of its occurrences (keywords not found are absent)."""


class Matcher(ABC):
    """Finds keyword occurrences; built once per keyword set and reused for every file."""

    name: ClassVar[str]

    def __init__(self, keywords: Sequence[bytes]) -> None:
        if not keywords or not all(keywords) or any(k != k.lower() for k in keywords):
            raise ValueError("keywords must be non-empty lower-case literals")
        if len(set(keywords)) != len(keywords):
            raise ValueError("keywords must be unique")
        self.keywords = tuple(keywords)
        self.lengths = tuple(len(k) for k in keywords)
        self.longest = max(self.lengths)

    @abstractmethod
    def find(self, data: Any, start: int = 0, stop: int | None = None) -> Hits:
        """Where each keyword starts in ``data[start:stop]`` (absolute offsets, sorted).

        A keyword that starts before ``stop`` is found even when it ends after it, so
        consecutive ranges together find everything, whatever the boundaries.
        """

    def _span(self, data: Any, start: int, stop: int | None) -> tuple[int, int, int]:
        """(stop, end of the bytes to read, how many bytes may hold a hit's first byte)."""
        size = len(data)
        stop = size if stop is None else min(stop, size)
        end = min(stop + self.longest - 1, size)
        return stop, end, max(stop - start, 0)


class PythonMatcher(Matcher):
    """Python's ``re`` over one lower-cased copy of each chunk, one pass per first byte.

    Keywords are grouped by their first byte, and each group becomes ``x(?=(<trie>))``:
    ``re`` jumps from one ``x`` to the next in C and tries the group's trie there, which
    answers with the longest keyword starting at that place. The shorter keywords that
    start there too are exactly its prefixes, known in advance. One pass per byte value
    (a few dozen) instead of one per keyword (hundreds) makes this about four times
    faster than a ``bytes.find`` loop per keyword.
    """

    name = "python"

    def __init__(self, keywords: Sequence[bytes]) -> None:
        super().__init__(keywords)
        self.ids = {k: i for i, k in enumerate(self.keywords)}
        self.prefixes = tuple(
            tuple(self.ids[k[:n]] for n in range(1, len(k) + 1) if k[:n] in self.ids)
            for k in self.keywords
        )
        """keyword index -> indices of the keywords that are its prefixes, itself included."""
        groups: dict[bytes, list[bytes]] = {}
        for keyword in self.keywords:
            groups.setdefault(keyword[:1], []).append(keyword[1:])
        self.passes = tuple(
            re.compile(re.escape(first) + b"(?=(" + _trie(rests) + b"))", re.DOTALL)
            for first, rests in sorted(groups.items())
        )

    def find(self, data: Any, start: int = 0, stop: int | None = None) -> Hits:
        stop, end, room = self._span(data, start, stop)
        if room == 0:
            return {}
        whole = start == 0 and end == len(data) and isinstance(data, bytes)
        lowered = data.lower() if whole else bytes(data[start:end]).lower()
        found: list[tuple[int, int]] = []
        ids, prefixes = self.ids, self.prefixes
        for search in self.passes:
            # The lookahead must see past ``room``: stop by hand rather than with endpos.
            for match in search.finditer(lowered):
                at = match.start()
                if at >= room:
                    break
                for keyword in prefixes[ids[lowered[at : match.end(1)]]]:
                    found.append((keyword, at + start))
        found.sort()
        hits: Hits = {}
        for keyword, at in found:
            if keyword in hits:
                hits[keyword].append(at)
            else:
                hits[keyword] = [at]
        return hits


def _trie(words: Sequence[bytes]) -> bytes:
    """A regex matching any of ``words``, longest first, as a trie (no backtracking)."""
    node: dict[int | None, Any] = {}
    for word in words:
        here = node
        for byte in word:
            here = here.setdefault(byte, {})
        here[None] = {}
    return _emit(node)


def _emit(node: dict[int | None, Any]) -> bytes:
    branches = [re.escape(bytes([b])) + _emit(child)
                for b, child in sorted((b, c) for b, c in node.items() if b is not None)]
    if not branches:
        return b""
    body = branches[0] if len(branches) == 1 else b"(?:" + b"|".join(branches) + b")"
    if None in node:  # a word ends here: longer words are tried first, then this one
        return b"(?:" + body + b")?"
    return body


class HyperscanMatcher(Matcher):
    """One Hyperscan database of every keyword, scanned over the bytes in place (no copy)."""

    name = "hyperscan"

    def __init__(self, keywords: Sequence[bytes]) -> None:
        super().__init__(keywords)
        import hyperscan

        self._db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
        # Each keyword as a pattern of escaped bytes (the binding's literal mode stops at
        # a NUL). No SOM flag is needed: a literal's start is its end minus its length,
        # and each end is reported once.
        self._db.compile(
            expressions=[_escaped(k) for k in self.keywords],
            ids=list(range(len(self.keywords))),
            elements=len(self.keywords),
            flags=hyperscan.HS_FLAG_CASELESS,
        )
        # A scratch space serves one scan at a time: each thread gets its own (the watch
        # service scans releases on several threads).
        self._scratch = threading.local()

    def find(self, data: Any, start: int = 0, stop: int | None = None) -> Hits:
        stop, end, room = self._span(data, start, stop)
        if room == 0:
            return {}
        hits: Hits = {}
        lengths = self.lengths

        def on_match(index: int, _from: int, to: int, _flags: int, _context: Any) -> None:
            # Matches come in order of their end, so each keyword's starts come sorted.
            first = to - lengths[index]
            if first < room:
                if index in hits:
                    hits[index].append(first + start)
                else:
                    hits[index] = [first + start]

        scratch = getattr(self._scratch, "space", None)
        if scratch is None:
            import hyperscan

            scratch = self._scratch.space = hyperscan.Scratch(self._db)
        with memoryview(data) as view, view[start:end] as window:
            self._db.scan(window, match_event_handler=on_match,  # type: ignore[type-var]
                          scratch=scratch)
        return dict(sorted(hits.items()))


def _escaped(keyword: bytes) -> bytes:
    return b"".join(bytes([c]) if chr(c).isalnum() and c < 128 else b"\\x%02x" % c
                    for c in keyword)


def available() -> tuple[str, ...]:
    """The engines this interpreter can run, best first."""
    try:
        import hyperscan  # noqa: F401
    except ImportError:
        return ("python",)
    return ENGINES


def choose(requested: str | None = None) -> str:
    """The engine to use: ``requested``, else ``$SEAWALL_ENGINE``, else the best available."""
    name = (requested or os.environ.get(ENV) or "").strip().lower()
    if not name or name == "auto":
        return available()[0]
    if name not in ENGINES:
        raise ValueError(f"unknown secret engine {name!r} (expected one of: {', '.join(ENGINES)})")
    if name not in available():
        raise ValueError(f"secret engine {name!r} is not installed: pip install 'seawall[fast]'")
    return name


@lru_cache(maxsize=8)
def matcher(keywords: tuple[bytes, ...], engine: str) -> Matcher:
    """A compiled matcher, shared by every detector instance with the same keywords."""
    cls = HyperscanMatcher if engine == "hyperscan" else PythonMatcher
    return cls(keywords)
