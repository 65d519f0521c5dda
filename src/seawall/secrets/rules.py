"""Secret rules as data: load ``rules/secrets/*.toml`` and confirm candidates.

The format is documented in ``rules/secrets/README.md``. This module is the whole
meaning of a rule: given a window of bytes and the keyword hit inside it, which secret
values does the rule find? The matcher (Hyperscan or pure Python) only decides where
to look.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any, Iterator, Mapping

from seawall.findings import Severity
from seawall.secrets.validators import VALIDATORS

DEFAULT_MAX_LENGTH = 256
KNOWN_KEYS = {
    "id", "name", "severity", "description", "fix", "keywords", "pattern", "max_length",
    "entropy", "validator", "allow", "examples",
}


@dataclass(frozen=True)
class SecretRule:
    id: str
    name: str
    severity: Severity
    description: str
    fix: str
    keywords: tuple[bytes, ...]
    """Lower-cased literals; one of them lies inside every match."""
    pattern: re.Pattern[bytes]
    max_length: int = DEFAULT_MAX_LENGTH
    entropy: float | None = None
    validator: str | None = None
    allow: tuple[re.Pattern[bytes], ...] = ()
    examples: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    family: str = ""

    def values(self, data: bytes, start: int, end: int) -> Iterator[tuple[int, int, bytes]]:
        """(start, end, secret) of every accepted match that overlaps ``data[start:end]``."""
        for match in self.pattern.finditer(data, max(start - self.max_length, 0),
                                           min(end + self.max_length, len(data))):
            if match.start() > start or match.end() < end:
                continue  # the match does not contain the keyword hit that led here
            group = "secret" if "secret" in self.pattern.groupindex else 0
            secret = match.group(group)
            if secret and self.accepts(secret):
                return_start = match.start(group)
                yield return_start, return_start + len(secret), secret

    def accepts(self, secret: bytes) -> bool:
        if self.entropy is not None and shannon(secret) < self.entropy:
            return False
        if self.validator is not None and not VALIDATORS[self.validator](secret.decode("latin-1")):
            return False
        return not any(allow.search(secret) for allow in self.allow)

    def find_all(self, text: str | bytes) -> list[bytes]:
        """Every secret the rule finds in ``text`` (for examples and tests; no keyword gate)."""
        data = text.encode() if isinstance(text, str) else text
        found: list[bytes] = []
        lowered = data.lower()
        for keyword in self.keywords:
            at = lowered.find(keyword)
            while at >= 0:
                for _, _, secret in self.values(data, at, at + len(keyword)):
                    if secret not in found:
                        found.append(secret)
                at = lowered.find(keyword, at + 1)
        return found


def shannon(value: bytes) -> float:
    if not value:
        return 0.0
    counts = Counter(value)
    total = len(value)
    return -sum(n / total * math.log2(n / total) for n in counts.values())


class RuleError(ValueError):
    pass


def parse_rule(raw: Mapping[str, Any], family: str) -> SecretRule:
    rule_id = str(raw.get("id", "?"))
    unknown = set(raw) - KNOWN_KEYS
    if unknown:
        raise RuleError(f"{family}: {rule_id}: unknown key(s) {sorted(unknown)}")
    try:
        keywords = tuple(str(k).lower().encode() for k in raw["keywords"])
        if not keywords or not all(keywords):
            raise RuleError(f"{family}: {rule_id}: needs at least one non-empty keyword")
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
            pattern=re.compile(str(raw["pattern"]).encode()),
            max_length=int(raw.get("max_length", DEFAULT_MAX_LENGTH)),
            entropy=float(raw["entropy"]) if "entropy" in raw else None,
            validator=validator,
            allow=tuple(re.compile(str(a).encode()) for a in raw.get("allow", ())),
            examples={k: tuple(str(v) for v in examples.get(k, ())) for k in ("match", "no_match")},
            family=family,
        )
    except KeyError as exc:
        raise RuleError(f"{family}: {rule_id}: missing {exc}") from None
    except re.error as exc:
        raise RuleError(f"{family}: {rule_id}: bad pattern: {exc}") from None


@lru_cache(maxsize=1)
def load() -> tuple[SecretRule, ...]:
    """Every built-in secret rule, in a stable order."""
    folder = resources.files("seawall.rules").joinpath("secrets")
    rules: list[SecretRule] = []
    for item in sorted(folder.iterdir(), key=lambda p: p.name):
        if item.name.endswith(".toml"):
            doc = tomllib.loads(item.read_text(encoding="utf-8"))
            family = item.name.removesuffix(".toml")
            rules.extend(parse_rule(raw, family) for raw in doc.get("rule", []))
    ids = [r.id for r in rules]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise RuleError(f"duplicate secret rule ids: {duplicates}")
    return tuple(rules)
