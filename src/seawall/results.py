"""What a finished scan hands to reporters: plain data, no engine inside."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from seawall.findings import Finding, Severity, sort_key


@dataclass(frozen=True)
class TargetSummary:
    target: str
    files: int
    bytes: int
    error: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Report:
    targets: tuple[TargetSummary, ...]
    findings: tuple[Finding, ...]
    fail_on: Severity = Severity.MEDIUM
    suppressed: int = 0
    seconds: float | None = None

    @property
    def has_errors(self) -> bool:
        return any(t.error for t in self.targets)

    @property
    def failing(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity >= self.fail_on)

    @property
    def exit_code(self) -> int:
        """0 clean, 1 findings at or above ``fail_on``, 2 something could not be read."""
        if self.has_errors:
            return 2
        return 1 if self.failing else 0

    def counts(self) -> dict[str, int]:
        counts = {s.label: 0 for s in sorted(Severity, reverse=True)}
        for finding in self.findings:
            counts[finding.severity.label] += 1
        return counts

    def sorted_findings(self) -> list[Finding]:
        return sorted(self.findings, key=sort_key)
