"""From bytes to secret values: keyword hits, each rule's pattern around them, overlaps, pairs.

The matcher finds where any keyword occurs (one pass, either engine); everything after
that is shared, so both engines give the same values by construction. Files are taken a
chunk at a time so that a hostile file full of keywords costs bounded memory; hits are
assigned to the chunk their first byte is in, and patterns always read the whole file,
so a secret across a chunk boundary is found like any other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from seawall.findings import Severity
from seawall.secrets.matcher import Matcher, choose, matcher
from seawall.secrets.rules import Hit, Pair, SecretRule

CHUNK = 4 * 1024 * 1024
"""Bytes searched for keywords at a time."""
MAX_VALUES = 1000
"""Values kept per file; past this a file is a dump or an attack, and is reported as such."""


@dataclass(frozen=True, slots=True)
class Value:
    """One secret value a rule accepted: ``data[start:end] == secret``."""

    rule: SecretRule
    start: int
    end: int
    secret: bytes


@dataclass(frozen=True, slots=True)
class Match:
    """What becomes one finding: one rule's value, or a pair's two values."""

    id: str
    name: str
    severity: Severity
    parts: tuple[Value, ...]

    @property
    def start(self) -> int:
        return self.parts[0].start


class Scanner:
    """Rules compiled for one engine; turns a file's bytes into matches."""

    def __init__(
        self,
        rules: Sequence[SecretRule],
        pairs: Sequence[Pair] = (),
        engine: str | None = None,
    ) -> None:
        self.rules = tuple(rules)
        self.pairs = tuple(pairs)
        self.engine = choose(engine)
        keywords = sorted({k for rule in self.rules for k in rule.keywords})
        index = {k: i for i, k in enumerate(keywords)}
        owners: list[list[int]] = [[] for _ in keywords]
        for r, rule in enumerate(self.rules):
            for k in sorted({index[k] for k in rule.keywords}):
                owners[k].append(r)
        self.owners = tuple(tuple(o) for o in owners)
        self.matcher: Matcher | None = matcher(tuple(keywords), self.engine) if keywords else None
        self._by_id = {rule.id: rule for rule in self.rules}

    def scan(self, data: Any) -> tuple[list[Match], bool]:
        """Every match in ``data`` (bytes or mmap), in file order; True if cut at MAX_VALUES."""
        found: list[Value] = []
        cut = False
        for start in range(0, len(data), CHUNK):
            found = resolve(found + self.values(data, start, start + CHUNK))
            if len(found) > MAX_VALUES:
                found, cut = found[:MAX_VALUES], True
                break
        return self._paired(found), cut

    def values(self, data: Any, start: int, stop: int) -> list[Value]:
        """Values led to by the keyword hits that start in ``data[start:stop]``."""
        if self.matcher is None:
            return []
        lengths = self.matcher.lengths
        per_rule: dict[int, list[Hit]] = {}
        for keyword, starts in self.matcher.find(data, start, stop).items():
            size = lengths[keyword]
            spans = [(at, at + size) for at in starts]
            for r in self.owners[keyword]:
                per_rule.setdefault(r, []).extend(spans)
        found: list[Value] = []
        for r in sorted(per_rule):
            rule, hits = self.rules[r], per_rule[r]
            if len(rule.keywords) > 1:
                hits.sort()
            found.extend(Value(rule, s, e, secret) for s, e, secret in rule.scan(data, hits))
        return found

    def _paired(self, values: list[Value]) -> list[Match]:
        matches: list[Match] = []
        used: set[int] = set()
        for pair in self.pairs:
            first, second = (self._by_id.get(r) for r in pair.rules)
            if first is None or second is None:
                continue
            matches += pair_up(pair, values, first, second, used)
        matches += (
            Match(v.rule.id, v.rule.name, v.rule.severity, (v,))
            for i, v in enumerate(values)
            if i not in used
        )
        return sorted(matches, key=lambda m: (m.start, m.parts[0].end, m.id))


def resolve(values: list[Value]) -> list[Value]:
    """One value per place, in file order.

    The same rule finding overlapping values (a window read twice across a chunk
    boundary) keeps the first; a value overlapping one of a more severe rule (a generic
    ``token=`` rule over a provider's exact format) is dropped. Equally severe rules that
    agree on a place are all kept: either may be the provider.
    """
    ordered = sorted(values, key=lambda v: (v.start, -v.end, v.rule.id))
    kept: list[Value] = []
    reach: dict[str, int] = {}
    for value in ordered:
        if value.start < reach.get(value.rule.id, -1):
            continue
        reach[value.rule.id] = value.end
        kept.append(value)
    beaten: set[int] = set()
    active: list[int] = []
    for i, value in enumerate(kept):
        active = [a for a in active if kept[a].end > value.start]
        for a in active:
            if kept[a].rule.severity > value.rule.severity:
                beaten.add(i)
            elif value.rule.severity > kept[a].rule.severity:
                beaten.add(a)
        active.append(i)
    return [v for i, v in enumerate(kept) if i not in beaten]


def pair_up(
    pair: Pair, values: list[Value], first: SecretRule, second: SecretRule, used: set[int]
) -> list[Match]:
    """Join each ``first`` value to the nearest unused ``second`` value within reach."""
    seconds = [i for i, v in enumerate(values) if v.rule is second and i not in used]
    matches: list[Match] = []
    for i, value in enumerate(values):
        if value.rule is not first or i in used:
            continue
        best: tuple[int, int] | None = None
        for j in seconds:
            other = values[j]
            gap = max(other.start - value.end, value.start - other.end, 0)
            if j not in used and gap <= pair.within and (best is None or gap < best[0]):
                best = (gap, j)
        if best is not None:
            used.update((i, best[1]))
            matches.append(Match(pair.id, pair.name, pair.severity, (value, values[best[1]])))
    return matches
