"""``seawall diff OLD NEW``: what a release newly exposes compared with the previous one.

Both sides are scanned with the same engine and policy. Members are compared by path
(size and SHA-256), and findings by fingerprint, which ignores lines and the target's
name, so "new" means new in this release, not moved. A large added member and growth
past a ratio are findings of their own (``anomaly.large-addition``, ``anomaly.size-growth``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from seawall.detectors.anomaly import anomaly
from seawall.engine import Engine, Member, Target, TargetResult
from seawall.findings import Finding, sort_key
from seawall.policy import Policy
from seawall.results import Report, TargetSummary
from seawall.scan import resolve_target

DEFAULT_GROWTH_RATIO = 1.5
GROWTH_FLOOR = 1_000_000
"""Growth below this many bytes is never an anomaly, whatever the ratio (tiny packages)."""


@dataclass(frozen=True)
class Change:
    path: str
    old: Member | None
    new: Member | None

    @property
    def delta(self) -> int:
        return (self.new.size if self.new else 0) - (self.old.size if self.old else 0)


@dataclass(frozen=True)
class DiffReport:
    old: TargetSummary
    new: TargetSummary
    added: tuple[Change, ...]
    removed: tuple[Change, ...]
    changed: tuple[Change, ...]
    old_bytes: int
    """Unpacked size: the members of the artifact itself, nested archives counted once."""
    new_bytes: int
    report: Report
    """The new findings (what NEW exposes that OLD did not), as a scan report."""
    resolved: tuple[Finding, ...] = field(default=())
    """Findings of OLD that NEW no longer has."""

    @property
    def exit_code(self) -> int:
        if self.old.error or self.new.error:
            return 2
        return self.report.exit_code


def inventory_diff(old: dict[str, Member], new: dict[str, Member]) -> tuple[list[Change], ...]:
    added = [Change(p, None, new[p]) for p in sorted(new.keys() - old.keys())]
    removed = [Change(p, old[p], None) for p in sorted(old.keys() - new.keys())]
    changed = [
        Change(p, old[p], new[p])
        for p in sorted(old.keys() & new.keys())
        if (old[p].size, old[p].sha256) != (new[p].size, new[p].sha256)
    ]
    return added, removed, changed


def unpacked(inventory: dict[str, Member]) -> int:
    return sum(m.size for m in inventory.values() if m.depth == 1)


def release_anomalies(added: list[Change], changed: list[Change], old_bytes: int, new_bytes: int,
                      *, large_bytes: int, growth_ratio: float) -> list[Finding]:
    findings = [
        anomaly("anomaly.large-addition", c.path, f"new {c.delta / 1e6:.1f} MB file",
                bytes=c.delta)
        for c in added if c.new is not None and c.new.depth == 1 and c.delta >= large_bytes
    ]
    growth = new_bytes - old_bytes
    if old_bytes and growth >= GROWTH_FLOOR and new_bytes > old_bytes * growth_ratio:
        biggest = sorted((c for c in added + changed if c.delta > 0 and c.new and c.new.depth == 1),
                         key=lambda c: -c.delta)[:5]
        where = biggest[0].path if biggest else ""
        findings.append(anomaly(
            "anomaly.size-growth", where,
            f"unpacked size grew {new_bytes / old_bytes:.2f}x ({old_bytes / 1e6:.1f} MB -> "
            f"{new_bytes / 1e6:.1f} MB)",
            old_bytes=old_bytes, new_bytes=new_bytes, ratio=round(new_bytes / old_bytes, 3),
            largest=[{"path": c.path, "bytes": c.delta} for c in biggest],
        ))
    return findings


def diff(old_spec: str | Target, new_spec: str | Target, policy: Policy, *,
         cache_dir: Path | None = None, growth_ratio: float = DEFAULT_GROWTH_RATIO) -> DiffReport:
    """Compare two releases; each is a spec ``scan`` accepts, or a resolved Target."""
    started = time.perf_counter()
    engine = Engine(limits=policy.limits, settings=policy.detectors, inventory=True,
                    jobs=policy.jobs)
    old, new = (engine.scan_target(side if isinstance(side, Target)
                                   else resolve_target(side, cache_dir=cache_dir))
                for side in (old_spec, new_spec))
    old_version, new_version = old.meta.get("version"), new.meta.get("version")
    added, removed, changed = inventory_diff(_versionless(old.inventory, old_version),
                                             _versionless(new.inventory, new_version))
    old_bytes, new_bytes = unpacked(old.inventory), unpacked(new.inventory)
    old_kept, _ = policy.apply(old.findings)
    new_kept, suppressed = policy.apply(new.findings)
    known = {_identity(f, old_version) for f in old_kept}
    fresh = [f for f in new_kept if _identity(f, new_version) not in known]
    grown = release_anomalies(added, changed, old_bytes, new_bytes,
                              large_bytes=policy.limits.large_file_bytes, growth_ratio=growth_ratio)
    fresh += policy.apply(grown)[0]
    current = {_identity(f, new_version) for f in new_kept}
    report = Report(
        targets=(_summary(new),),  # the report speaks of NEW; OLD's state is in DiffReport
        findings=tuple(sorted((_stamp(f, new.target) for f in fresh), key=sort_key)),
        fail_on=policy.fail_on,
        suppressed=suppressed,
        seconds=time.perf_counter() - started,
    )
    return DiffReport(
        old=_summary(old), new=_summary(new), added=tuple(added), removed=tuple(removed),
        changed=tuple(changed), old_bytes=old_bytes, new_bytes=new_bytes, report=report,
        resolved=tuple(f for f in old_kept if _identity(f, old_version) not in current),
    )


VERSION = "{version}"


def _versionless(inventory: dict[str, Member], version: object) -> dict[str, Member]:
    """Paths with the release's own version written as ``{version}``.

    A PyPI release's files are named after their version (``pkg-1.0-py3-none-any.whl``,
    ``pkg-1.0.tar.gz!/pkg-1.0/...``): without this every member of two releases would
    look removed and added again.
    """
    if not isinstance(version, str) or not version:
        return inventory
    return {path.replace(version, VERSION): member for path, member in inventory.items()}


def _identity(finding: Finding, version: object) -> tuple[str, str]:
    """What makes a finding "the same" across releases: its key, else its versionless path."""
    if finding.key:
        return finding.rule, "key:" + finding.key
    path = finding.path.replace(version, VERSION) if isinstance(version, str) and version else finding.path
    return finding.rule, path


def _summary(result: TargetResult) -> TargetSummary:
    return TargetSummary(result.target, result.files, result.bytes, result.error, dict(result.meta))


def _stamp(finding: Finding, target: str) -> Finding:
    return finding if finding.target == target else replace(finding, target=target)
