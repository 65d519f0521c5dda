"""Secret rules as data: load ``rules/secrets/*.toml`` and confirm candidates.

The format is documented in ``rules/secrets/README.md``. This module is the whole
meaning of a rule: given the bytes of a file and the keyword hits in it, which secret
values does the rule find? The matcher (Hyperscan or pure Python) only decides where
to look. A ``Pair`` joins two rules' values that sit close together into one finding.
"""

from __future__ import annotations

import bisect
import math
import re
import re._parser as re_parser  # type: ignore[import-not-found]  # the stdlib's parser (3.11+)
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from importlib import resources
from typing import Any

from seawall.findings import Severity
from seawall.rules import parse_toml
from seawall.secrets.validators import VALIDATORS

DEFAULT_MAX_LENGTH = 256
KNOWN_KEYS = {
    "id", "name", "severity", "description", "fix", "keywords", "pattern", "max_length",
    "before", "entropy", "validator", "allow", "examples", "tests_severity",
}
PAIR_KEYS = {"id", "name", "severity", "description", "fix", "rules", "within", "examples"}
DEFAULT_PAIR_WITHIN = 1024

Hit = tuple[int, int]
"""(start, end) of one keyword occurrence."""


class LazyPattern:
    """A rule's pattern, compiled on first use.

    A scan needs only the rules whose keywords occur; compiling all of them up front is
    most of what loading the rules costs. ``pattern`` and ``flags`` are readable without
    compiling, so the loader can still analyse the source.
    """

    __slots__ = ("pattern", "flags", "_compiled")

    def __init__(self, source: bytes) -> None:
        self.pattern = source
        self.flags = 0
        self._compiled: re.Pattern[bytes] | None = None

    def compiled(self) -> re.Pattern[bytes]:
        if self._compiled is None:
            self._compiled = re.compile(self.pattern)
        return self._compiled

    def __getattr__(self, name: str) -> Any:
        return getattr(self.compiled(), name)


@dataclass(frozen=True)
class SecretRule:
    id: str
    name: str
    severity: Severity
    description: str
    fix: str
    keywords: tuple[bytes, ...]
    """Lower-cased literals; one of them lies inside every match."""
    pattern: LazyPattern
    max_length: int = DEFAULT_MAX_LENGTH
    before: int | None = None
    """Most bytes a match can start before its keyword. 0 says every match starts with a
    keyword, so the pattern is tried only at the hits. None: read off the pattern on first
    use (``keyword_offset``), else ``max_length``."""
    line_start: bool | None = None
    """Every match starts a line (``(?m)^``): tried only at line starts near the hits.
    None: read off the pattern on first use."""
    entropy: float | None = None
    validator: str | None = None
    allow: tuple[LazyPattern, ...] = ()
    examples: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    family: str = ""
    tests_severity: Severity | None = None
    """Severity inside test/fixture folders, for kinds that are nearly always throwaway
    fixtures there (TLS test keys); None keeps the rule's severity everywhere."""

    def values(self, data: Any, start: int, end: int) -> Iterator[tuple[int, int, bytes]]:
        """(start, end, secret) of every accepted match that contains ``data[start:end]``."""
        return self.scan(data, [(start, end)])

    def scan(self, data: Any, hits: Sequence[Hit]) -> Iterator[tuple[int, int, bytes]]:
        """(start, end, secret) of every accepted match that contains one of ``hits``.

        ``hits`` are this rule's keyword occurrences, sorted. A match must begin at most
        ``before`` bytes ahead of a hit, so the pattern is tried only there: at each
        possible start when there are few (at the hits themselves when ``before`` is 0,
        at line starts for a ``(?m)^`` pattern), else searched in the window from
        ``before`` ahead of each hit to ``max_length`` past it, hits whose windows overlap
        as one window: a busy file costs one pass over its busy part, not one per hit.
        """
        reach, size, count = self.max_length, len(data), len(hits)
        back, line_start = self._shape
        if line_start:
            yield from self._anchored(data, hits, _line_starts(data, hits, back))
            return
        if back == 0:
            yield from self._anchored(data, hits, [at for at, _ in hits])
            return
        if back <= FEW_STARTS:  # a few tries at each hit beat a search of the window
            starts = sorted({at - n for at, _ in hits for n in range(back + 1) if at >= n})
            yield from self._anchored(data, hits, starts)
            return
        i = 0
        while i < count:
            j, last = i + 1, hits[i][1]
            while j < count:
                at, end = hits[j]
                if at - back > last + reach:
                    break
                if end > last:  # noqa: PLR1730 - a call to max() per hit costs more
                    last = end
                j += 1
            low, high = max(hits[i][0] - back, 0), min(last + reach, size)
            for match in self.regex.finditer(data, low, high):
                if _contains_hit(hits, i, j, match.start(), match.end()):
                    yield from self._accepted(match)
            i = j

    def _anchored(
        self, data: Any, hits: Sequence[Hit], starts: Sequence[int]
    ) -> Iterator[tuple[int, int, bytes]]:
        """Try the pattern only at ``starts`` (sorted), where every match must begin."""
        covered, last, reach = -1, -1, 2 * self.max_length
        regex = self.regex
        for at in starts:
            if at <= last or at < covered:
                continue  # tried already, or inside the previous match as a search would skip
            last = at
            match = regex.match(data, at, at + reach)  # re clips endpos to the data
            if match is None or not _contains_hit(hits, 0, len(hits), at, match.end()):
                continue
            covered = match.end()
            yield from self._accepted(match)

    def _accepted(self, match: re.Match[bytes]) -> Iterator[tuple[int, int, bytes]]:
        group = self._group
        secret = match.group(group)
        if secret and self.accepts(secret):
            at = match.start(group)
            yield at, at + len(secret), secret

    @cached_property
    def _shape(self) -> tuple[int, bool]:
        """(``before``, ``line_start``), analysed on first use: most rules never meet
        their keyword in a scan, so loading the rules parses no pattern."""
        parsed = _parsed(self.pattern) if self.before is None or self.line_start is None else None
        back = self.before
        if back is None:
            found = keyword_offset(self.pattern, self.keywords, parsed) if parsed else None
            back = found if found is not None and found < self.max_length else self.max_length
        line_start = self.line_start
        if line_start is None:
            line_start = starts_lines(self.pattern, parsed) if parsed else False
        return back, line_start

    @property
    def regex(self) -> re.Pattern[bytes]:
        return self.pattern.compiled()

    @property
    def _group(self) -> int | str:
        return "secret" if "secret" in self.regex.groupindex else 0

    def accepts(self, secret: bytes) -> bool:
        if self.entropy is not None and shannon(secret) < self.entropy:
            return False
        if self.validator is not None and not VALIDATORS[self.validator](secret.decode("latin-1")):
            return False
        return not any(allow.search(secret) for allow in self.allow)

    def find_all(self, text: str | bytes) -> list[bytes]:
        """Every secret the rule finds in ``text``, as the detector would (for examples)."""
        data = text.encode() if isinstance(text, str) else text
        lowered = data.lower()
        hits: list[Hit] = []
        for keyword in self.keywords:
            at = lowered.find(keyword)
            while at >= 0:
                hits.append((at, at + len(keyword)))
                at = lowered.find(keyword, at + 1)
        found: list[bytes] = []
        for _, _, secret in self.scan(data, sorted(set(hits))):
            if secret not in found:
                found.append(secret)
        return found


def _contains_hit(hits: Sequence[Hit], i: int, j: int, start: int, end: int) -> bool:
    """Does one of ``hits[i:j]`` lie inside ``[start, end)``?"""
    k = bisect.bisect_left(hits, (start, -1), i, j)
    while k < j and hits[k][0] < end:
        if hits[k][1] <= end:
            return True
        k += 1
    return False


def _line_starts(data: Any, hits: Sequence[Hit], back: int) -> list[int]:
    """Sorted starts of the lines that begin at most ``back`` bytes before a hit.

    Walked from whichever is rarer: the hits (source code, many short lines) or the
    newlines (minified code, where one line holds thousands of hits).
    """
    low, high = max(hits[0][0] - back, 0), hits[-1][0]
    region = data[low:high] if not isinstance(data, bytes) else None
    lines = region.count(b"\n") if region is not None else data.count(b"\n", low, high)
    if lines < len(hits):
        firsts = [at for at, _ in hits]
        starts = [0] if low == 0 else []
        newline = data.find(b"\n", max(low - 1, 0), high)
        while newline >= 0:
            starts.append(newline + 1)
            newline = data.find(b"\n", newline + 1, high)
        return [p for p in starts if _first_at_or_after(firsts, p) <= p + back]
    ranges: list[list[int]] = []
    for at, _ in hits:
        if ranges and at - back <= ranges[-1][1]:
            ranges[-1][1] = at  # ranges [at - back, at] that overlap are searched as one
        else:
            ranges.append([max(at - back, 0), at])
    found: list[int] = []
    for start, end in ranges:
        here = [0] if start == 0 else []
        newline = data.rfind(b"\n", max(start - 1, 0), end)
        while newline >= 0:
            here.append(newline + 1)
            newline = data.rfind(b"\n", max(start - 1, 0), newline)
        found += sorted(here)
    return found


def _first_at_or_after(firsts: Sequence[int], at: int) -> int:
    k = bisect.bisect_left(firsts, at)
    return firsts[k] if k < len(firsts) else 1 << 62


@dataclass(frozen=True)
class Pair:
    """Two rules whose values, found close together in one file, are one credential.

    An AWS access key id is harmless alone and a secret access key is useless without
    its id; side by side they are a working key, reported once under the pair's id.
    """

    id: str
    name: str
    severity: Severity
    description: str
    fix: str
    rules: tuple[str, str]
    within: int = DEFAULT_PAIR_WITHIN
    """Most bytes between the two values."""
    examples: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    family: str = ""


MAX_HEADS = 256
LOOKAHEAD = 16
FEW_STARTS = 16
"""Up to this ``before``, the pattern is tried at each possible start instead of searched."""
UNBOUNDED = 1 << 30
"""Bytes before a keyword that ``keyword_offset`` looks through."""


def keyword_offset(
    pattern: re.Pattern[bytes] | LazyPattern, keywords: Sequence[bytes], parsed: Any = None
) -> int | None:
    """How far into any match of ``pattern`` a keyword begins, at most (None: unknown).

    Read off the parsed pattern. From each place in its top-level sequence, the bytes
    every match must continue with are enumerated (lower-cased, past zero-width
    assertions, through groups, alternations, optional parts and small classes) until a
    construct this does not know; if each such beginning holds a keyword, the bound is
    the widest the sequence before it can be, plus the furthest keyword's offset.
    0 means every match starts with a keyword, and the rule is tried only at its hits.
    """
    try:
        parsed = parsed or re_parser.parse(pattern.pattern, pattern.flags)
        need = max(map(len, keywords)) + LOOKAHEAD
        best: int | None = None
        for i in range(len(parsed.data)):
            lead = re_parser.SubPattern(parsed.state, parsed.data[:i]).getwidth()[1]
            if best is not None and lead >= best or lead > UNBOUNDED:
                break
            heads, _ = _heads(parsed.data[i:], need)
            offsets = [min((at for at in (h.find(k) for k in keywords) if at >= 0), default=-1)
                       for h in heads]
            if offsets and min(offsets) >= 0:
                best = lead + max(offsets) if best is None else min(best, lead + max(offsets))
        return best
    except Exception:  # noqa: BLE001 - a private module: when in doubt, no shortcut
        return None


def starts_lines(pattern: re.Pattern[bytes] | LazyPattern, parsed: Any = None) -> bool:
    """Does every match begin at a line start (a leading ``^`` under ``(?m)``)?"""
    try:
        parsed = parsed or re_parser.parse(pattern.pattern, pattern.flags)
        op, arg = parsed.data[0]
        return str(op) == "AT" and (
            str(arg) == "AT_BEGINNING_LINE"
            or (str(arg) == "AT_BEGINNING" and bool(parsed.state.flags & re.MULTILINE))
        )
    except Exception:  # noqa: BLE001
        return False


def _parsed(pattern: re.Pattern[bytes] | LazyPattern) -> Any:
    try:
        return re_parser.parse(pattern.pattern, pattern.flags)
    except Exception:  # noqa: BLE001 - a private module: the readers then say "unknown"
        return None


def _heads(items: Sequence[Any], need: int) -> tuple[set[bytes], bool]:
    """(lower-cased beginnings of every match of ``items``, whether they are whole)."""
    heads = {b""}
    for op, arg in items:
        if all(len(h) >= need for h in heads):
            return heads, False
        name = str(op)
        if name in ("AT", "ASSERT", "ASSERT_NOT"):
            continue  # zero-width
        if name == "SUBPATTERN":
            options, whole = _heads(arg[3].data, need)
        elif name == "BRANCH":
            parts = [_heads(alt.data, need) for alt in arg[1]]
            options = {h for found, _ in parts for h in found}
            whole = all(w for _, w in parts)
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT") and arg[1] == 1:
            once, whole = _heads(arg[2].data, need)  # exactly once, or optional
            options = once | {b""} if arg[0] == 0 else once
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT") and arg[0] >= 1:
            options, whole = _heads(arg[2].data, need)[0], False
        else:
            options, whole = _one_byte(name, arg), True
        if not options or len(heads) * len(options) > MAX_HEADS:
            return heads, False
        heads = {h + o for h in heads for o in options}
        if not whole:
            return heads, False
    return heads, True


def _one_byte(name: str, arg: Any) -> set[bytes]:
    """The lower-cased bytes one LITERAL or small IN item can match (empty: unknown)."""
    if name == "LITERAL":
        return {bytes([arg]).lower()}
    if name != "IN":
        return set()
    found: set[bytes] = set()
    for op, value in arg:
        if str(op) == "LITERAL":
            found.add(bytes([value]).lower())
        elif str(op) == "RANGE" and value[1] - value[0] < 16:
            found.update(bytes([c]).lower() for c in range(value[0], value[1] + 1))
        else:
            return set()  # a negation, a category, a wide range
    return found


@lru_cache(maxsize=4096)
def shannon(value: bytes) -> float:
    """Bits per byte. Cached: a hostile file repeats one candidate a million times."""
    total = len(value)
    if not total:
        return 0.0
    counts = map(value.count, set(value))
    return max(math.log2(total) - sum(n * math.log2(n) for n in counts) / total, 0.0)


class RuleError(ValueError):
    pass


def parse_rule(raw: Mapping[str, Any], family: str, *, check: bool = True) -> SecretRule:
    """One rule from its TOML table. ``check`` parses its patterns now (the built-in
    rules are checked by the test suite, so a scan skips that cost)."""
    rule_id = str(raw.get("id", "?"))
    unknown = set(raw) - KNOWN_KEYS
    if unknown:
        raise RuleError(f"{family}: {rule_id}: unknown key(s) {sorted(unknown)}")
    try:
        keywords = tuple(str(k).lower().encode() for k in raw["keywords"])
        if not keywords or not all(keywords):
            raise RuleError(f"{family}: {rule_id}: needs at least one non-empty keyword")
        pattern = LazyPattern(str(raw["pattern"]).encode())
        before = int(raw["before"]) if "before" in raw else None
        max_length = int(raw.get("max_length", DEFAULT_MAX_LENGTH))
        allow = tuple(LazyPattern(str(a).encode()) for a in raw.get("allow", ()))
        if check:  # a syntax error is a RuleError now, not at the first match
            for source in (pattern, *allow):
                re_parser.parse(source.pattern, 0)
        if before is not None and not 0 <= before <= max_length:
            raise RuleError(f"{family}: {rule_id}: before must be between 0 and max_length")
        validator = raw.get("validator")
        if validator is not None and validator not in VALIDATORS:
            raise RuleError(f"{family}: {rule_id}: unknown validator {validator!r}")
        examples = raw.get("examples", {})
        return SecretRule(
            id=rule_id,
            name=str(raw["name"]),
            severity=Severity.parse(str(raw["severity"])),
            description=str(raw["description"]),
            fix=str(raw.get("fix", "")),
            keywords=keywords,
            pattern=pattern,
            max_length=max_length,
            before=before,
            entropy=float(raw["entropy"]) if "entropy" in raw else None,
            validator=validator,
            allow=allow,
            examples={k: tuple(str(v) for v in examples.get(k, ())) for k in ("match", "no_match")},
            family=family,
            tests_severity=(Severity.parse(str(raw["tests_severity"]))
                            if "tests_severity" in raw else None),
        )
    except KeyError as exc:
        raise RuleError(f"{family}: {rule_id}: missing {exc}") from None
    except re.error as exc:
        raise RuleError(f"{family}: {rule_id}: bad pattern: {exc}") from None


def parse_pair(raw: Mapping[str, Any], family: str) -> Pair:
    pair_id = str(raw.get("id", "?"))
    unknown = set(raw) - PAIR_KEYS
    if unknown:
        raise RuleError(f"{family}: {pair_id}: unknown key(s) {sorted(unknown)}")
    try:
        rules = tuple(str(r) for r in raw["rules"])
        within = int(raw.get("within", DEFAULT_PAIR_WITHIN))
        if len(rules) != 2 or rules[0] == rules[1] or within <= 0:
            raise RuleError(f"{family}: {pair_id}: needs two different rules and within > 0")
        examples = raw.get("examples", {})
        return Pair(
            id=pair_id,
            name=str(raw["name"]),
            severity=Severity.parse(str(raw["severity"])),
            description=str(raw["description"]),
            fix=str(raw.get("fix", "")),
            rules=(rules[0], rules[1]),
            within=within,
            examples={k: tuple(str(v) for v in examples.get(k, ())) for k in ("match", "no_match")},
            family=family,
        )
    except KeyError as exc:
        raise RuleError(f"{family}: {pair_id}: missing {exc}") from None


@lru_cache(maxsize=1)
def _documents() -> tuple[tuple[str, Mapping[str, Any]], ...]:
    """(family, parsed TOML) of every rule file, by file name."""
    folder = resources.files("seawall.rules").joinpath("secrets")
    docs = []
    for item in sorted(folder.iterdir(), key=lambda p: p.name):
        if item.name.endswith(".toml"):
            family = item.name.removesuffix(".toml")
            docs.append((family, parse_toml(item.read_text(encoding="utf-8"))))
    return tuple(docs)


@lru_cache(maxsize=1)
def load() -> tuple[SecretRule, ...]:
    """Every built-in secret rule, in a stable order."""
    rules = [parse_rule(raw, family, check=False)
             for family, doc in _documents() for raw in doc.get("rule", [])]
    ids = [r.id for r in rules]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise RuleError(f"duplicate secret rule ids: {duplicates}")
    return tuple(rules)


@lru_cache(maxsize=1)
def load_pairs() -> tuple[Pair, ...]:
    """Every built-in pair whose two rules exist (rule files may arrive separately)."""
    pairs = [parse_pair(raw, family) for family, doc in _documents() for raw in doc.get("pair", [])]
    return active_pairs(pairs, load())


def active_pairs(pairs: Sequence[Pair], rules: Sequence[SecretRule]) -> tuple[Pair, ...]:
    """The pairs whose rules are all in ``rules``; an id used twice is an error."""
    rule_ids = {r.id for r in rules}
    ids = [p.id for p in pairs]
    clashes = sorted({i for i in ids if ids.count(i) > 1 or i in rule_ids})
    if clashes:
        raise RuleError(f"pair ids used twice or by a rule: {clashes}")
    taken = [r for p in pairs if set(p.rules) <= rule_ids for r in p.rules]
    if len(taken) != len(set(taken)):
        raise RuleError("a rule can belong to one pair only")
    return tuple(p for p in pairs if set(p.rules) <= rule_ids)
