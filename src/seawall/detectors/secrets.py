"""``secret``: credentials in any file of the tree, by provider-precise rules.

The rules are data (``seawall/rules/secrets/*.toml``, documented in the README there);
``seawall.secrets`` finds their values, with Hyperscan when it is installed and in pure
Python otherwise (setting ``engine``, or ``$SEAWALL_ENGINE``). This module decides which
files to read and turns values into findings that never carry the value itself: a
redacted form and a hash, keyed by that hash so the same secret in many files is one
finding with many locations.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from seawall.artifacts import sourcemap as smap
from seawall.detectors.anomaly import anomaly
from seawall.detectors.base import Detector, FileView, Rule, in_test_folder
from seawall.findings import Finding, redact, secret_hash
from seawall.secrets import rules as secret_rules
from seawall.secrets.scanner import MAX_VALUES, Match, Scanner, Value

ARCHIVES = frozenset({"zip", "tar", "compressed", "asar"})
"""Containers whose members are scanned one by one; their own bytes are not read."""
WHY = (
    "Anyone who downloads the release can read this credential and use it. Treat it as "
    "leaked: revoke or rotate it first, then remove it from the source and the build. "
    "Publishing a clean version does not take the old one back."
)


def _text(secret: bytes) -> str:
    return secret.decode("utf-8", "replace")


def _shown(rules: Sequence[secret_rules.SecretRule], text: str) -> str:
    """An example as the docs show it: on one line, with every value ``rules`` find redacted."""
    for rule in rules:
        for secret in rule.find_all(text):
            text = text.replace(_text(secret), redact(_text(secret)))
    return text.replace("\n", "\\n")


class _Examples(Mapping[str, tuple[str, ...]]):
    """A rule's examples as the docs show them, worked out when first read (every scan
    imports the catalogue; only the docs and ``seawall rules`` read examples)."""

    def __init__(self, rules: Sequence[secret_rules.SecretRule],
                 raw: Mapping[str, Sequence[str]]) -> None:
        self._rules, self._raw = rules, raw
        self._shown: dict[str, tuple[str, ...]] | None = None

    def _all(self) -> dict[str, tuple[str, ...]]:
        if self._shown is None:
            self._shown = {
                "match": tuple(_shown(self._rules, e) for e in self._raw.get("match", ())),
                "no_match": tuple(_shown((), e) for e in self._raw.get("no_match", ())),
            }
        return self._shown

    def __getitem__(self, kind: str) -> tuple[str, ...]:
        return self._all()[kind]

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())


def _examples(rules: Sequence[secret_rules.SecretRule],
              raw: Mapping[str, Sequence[str]]) -> _Examples:
    return _Examples(rules, raw)


def _catalogue_rule(rule: secret_rules.SecretRule) -> Rule:
    return Rule(rule.id, rule.name, rule.severity, rule.description, WHY, fix=rule.fix,
                examples=_examples([rule], rule.examples))


def _pair_rule(pair: secret_rules.Pair) -> Rule:
    parts = [rule for rule in SECRET_RULES if rule.id in pair.rules]
    return Rule(pair.id, pair.name, pair.severity, pair.description, WHY, fix=pair.fix,
                examples=_examples(parts, pair.examples))


SECRET_RULES = secret_rules.load()
PAIRS = secret_rules.load_pairs()
RULES = tuple(_catalogue_rule(r) for r in SECRET_RULES) + tuple(_pair_rule(p) for p in PAIRS)


class SecretDetector(Detector):
    name = "secret"
    rules = RULES
    merges = True  # each file on its own (the engine folds one value's places together)

    def __init__(self, settings: Mapping[str, Any] | None = None) -> None:
        super().__init__(settings)
        self.scanner: Scanner | None = None
        self.failure: ValueError | None = None
        try:
            self.scanner = Scanner(SECRET_RULES, PAIRS, engine=self.settings.get("engine"))
        except ValueError as exc:  # a bad engine setting: said once, as a scan error
            self.failure = exc
            self.merges = False  # once: in one process

    def wants(self, view: FileView) -> bool:
        if self.scanner is None:
            return self.failure is not None
        if view.container in ARCHIVES:
            return False
        if view.container == "sourcemap":
            # Its embedded sources are scanned as files of their own, with their own lines;
            # the JSON around them would report each secret again, escaped.
            parsed = smap.load(view.content, view.memo)
            return parsed is None or all(body is None for body in parsed.contents)
        return True

    def scan(self, view: FileView) -> Iterable[Finding]:
        if self.scanner is None:
            failure, self.failure = self.failure, None
            raise failure or RuntimeError("no scanner")
        data = view.data
        matches, cut = self.scanner.scan(data)
        places = positions(data, sorted({part.start for m in matches for part in m.parts}))
        for match in matches:
            yield self._finding(view.path, match, places)
        if cut:
            yield anomaly("anomaly.limit", view.path,
                          f"more than {MAX_VALUES:,} secret values in one file; the rest were "
                          "not examined", limit="secret_values_per_file")

    def _finding(self, path: str, match: Match, places: Mapping[int, tuple[int, int]]) -> Finding:
        line, column = places[match.start]
        if len(match.parts) == 1:
            evidence = _describe(match.parts[0], column)
            key = evidence["hash"]
        else:
            parts = [
                {"rule": p.rule.id, "line": places[p.start][0], **_describe(p, places[p.start][1])}
                for p in match.parts
            ]
            key = secret_hash(b"\0".join(p.secret for p in match.parts))
            shown = " with ".join(p["redacted"] for p in parts)
            evidence = {"redacted": shown, "hash": key, "column": column, "parts": parts}
        severity, message = match.severity, f"{match.name} {evidence['redacted']}"
        lowered = match.parts[0].rule.tests_severity if len(match.parts) == 1 else None
        if lowered is not None and in_test_folder(path[: path.rfind("/") + 1]):
            severity, message = lowered, message + " (in a test folder)"
            evidence["in_tests"] = True
        return Finding(rule=match.id, severity=severity, path=path, message=message,
                       evidence=evidence, line=line, key=key)


def _describe(value: Value, column: int) -> dict[str, Any]:
    evidence: dict[str, Any] = {
        "redacted": redact(_text(value.secret)),
        "hash": secret_hash(value.secret),
        "length": len(value.secret),
        "column": column,
    }
    if value.rule.validator is not None:
        evidence["validated"] = value.rule.validator  # the check it passed, e.g. "crc32-base62"
    return evidence


def positions(data: Any, offsets: Sequence[int]) -> dict[int, tuple[int, int]]:
    """1-based (line, byte column) of each of the sorted ``offsets``, counting each byte once."""
    places: dict[int, tuple[int, int]] = {}
    line, line_start, counted = 1, 0, 0
    for offset in offsets:
        newlines = _newlines(data, counted, offset)
        if newlines:
            line += newlines
            line_start = data.rfind(b"\n", counted, offset) + 1
        counted = offset
        places[offset] = (line, offset - line_start + 1)
    return places


def _newlines(data: Any, start: int, end: int) -> int:
    if isinstance(data, bytes):
        return data.count(b"\n", start, end)
    return data[start:end].count(b"\n")  # an mmap has no count(); a copy of the gap only
