"""The one Finding model shared by every detector, reporter and later capability.

A finding's fingerprint ignores line numbers and the target's name, so a baseline
accepted for one release keeps matching the same problem in the next one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Mapping


class Severity(IntEnum):
    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @classmethod
    def parse(cls, text: str) -> "Severity":
        try:
            return cls[text.strip().upper()]
        except KeyError:
            names = ", ".join(s.label for s in cls)
            raise ValueError(f"unknown severity {text!r} (expected one of: {names})") from None

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class Location:
    path: str
    line: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "line": self.line}


@dataclass(frozen=True)
class Finding:
    """One thing that must not ship.

    ``key``, when set, says what makes two findings "the same problem" instead of their
    path: a secret's hash, a URL. Findings with the same rule and key are folded into one
    with several locations, and the fingerprint follows the key, so a secret that moves
    to another file stays accepted by a baseline. It is never a secret value itself.
    """

    rule: str
    severity: Severity
    path: str
    message: str
    evidence: Mapping[str, Any] = field(default_factory=dict)
    line: int | None = None
    locations: tuple[Location, ...] = ()
    target: str = ""
    key: str = ""
    fingerprint: str = field(init=False)

    def __post_init__(self) -> None:
        if not self.locations:
            object.__setattr__(self, "locations", (Location(self.path, self.line),))
        # A keyed finding (a secret's hash) is the same problem wherever it moves; others are
        # identified by where they are.
        basis = f"key\0{self.key}" if self.key else f"path\0{self.path}"
        digest = hashlib.sha256(f"{self.rule}\0{basis}".encode()).hexdigest()
        object.__setattr__(self, "fingerprint", digest[:32])

    @property
    def category(self) -> str:
        return self.rule.split(".", 1)[0]

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "category": self.category,
            "severity": self.severity.label,
            "target": self.target,
            "path": self.path,
            "line": self.line,
            "locations": [loc.to_dict() for loc in self.locations],
            "message": self.message,
            "evidence": dict(self.evidence),
            "fingerprint": self.fingerprint,
        }


def sort_key(finding: Finding) -> tuple:
    """Most severe first, then by place, so every output is deterministic."""
    return (-finding.severity, finding.target, finding.path, finding.rule, finding.line or 0)


def redact(value: str, keep: int = 4) -> str:
    """Show only a short prefix and suffix of a secret value (whitespace dropped, so a
    multi-line key shows its first and last characters, not its line breaks)."""
    value = "".join(value.split())
    if len(value) <= keep * 3:
        return value[:2] + "…" if len(value) > 2 else "…"
    return f"{value[:keep]}…{value[-keep:]}"


def secret_hash(value: str | bytes) -> str:
    """A stable hash that identifies a secret without revealing it."""
    raw = value.encode() if isinstance(value, str) else value
    return "sha256:" + hashlib.sha256(raw).hexdigest()[:16]
