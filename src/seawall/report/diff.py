"""Reporters for ``seawall diff``: what changed between two releases, and what is newly exposed."""

from __future__ import annotations

import json
from typing import Any, Mapping

from seawall import __version__
from seawall.detectors.base import Rule
from seawall.diff import Change, DiffReport
from seawall.report import markdown
from seawall.report import text as text_report

LISTED = 30


def render_text(diff: DiffReport, rules: Mapping[str, Rule], *, color: bool = False) -> str:
    lines = [
        f"seawall {__version__} diff: {diff.old.target} -> {diff.new.target}",
        f"  unpacked size {_mb(diff.old_bytes)} -> {_mb(diff.new_bytes)} "
        f"({_signed(diff.new_bytes - diff.old_bytes)}{_ratio(diff)})",
        f"  files: {len(diff.added)} added, {len(diff.removed)} removed, {len(diff.changed)} changed",
    ]
    lines += [f"  error reading {side.target}: {side.error}" for side in (diff.old, diff.new) if side.error]
    lines.append("")
    for title, changes in (("ADDED", diff.added), ("REMOVED", diff.removed), ("CHANGED", diff.changed)):
        if changes:
            lines.append(f" {title} ({len(changes)})")
            ordered = sorted(changes, key=lambda c: -abs(c.delta))
            lines += [f"  {_size_of(c):>12}  {c.path}" for c in ordered[:LISTED]]
            if len(changes) > LISTED:
                lines.append(f"  … and {len(changes) - LISTED} more (--format json lists all)")
            lines.append("")
    if diff.resolved:
        lines.append(f" RESOLVED ({len(diff.resolved)}): findings of the old release that are gone")
        lines += [f"  {f.rule}  {f.path}" for f in diff.resolved[:LISTED]]
        lines.append("")
    lines.append(" NEW IN THIS RELEASE" if diff.report.findings else " NOTHING NEW IS EXPOSED")
    body = text_report.render(diff.report, rules, color=color)
    # The scan report's own header repeats the targets; keep its findings and verdict.
    return "\n".join(lines) + "\n" + body.split("\n\n", 1)[-1]


def render_markdown(diff: DiffReport, rules: Mapping[str, Rule]) -> str:
    """A PR comment / step summary: the size change, the files, what is newly exposed."""
    report = diff.report
    verdict = markdown._verdict(report)
    lines = [
        f"### {verdict} Seawall release diff",
        "",
        f"`{diff.old.target}` → `{diff.new.target}`: unpacked {_mb(diff.old_bytes)} → "
        f"{_mb(diff.new_bytes)} ({_signed(diff.new_bytes - diff.old_bytes)}{_ratio(diff)}); "
        f"{len(diff.added)} added, {len(diff.removed)} removed, {len(diff.changed)} changed",
        "",
    ]
    lines += [f"- **error** reading `{side.target}`: {side.error}" for side in (diff.old, diff.new)
              if side.error]
    if diff.added or diff.removed:
        lines += ["| change | file | size |", "|---|---|---|"]
        for title, changes in (("added", diff.added), ("removed", diff.removed)):
            for c in sorted(changes, key=lambda c: -abs(c.delta))[:LISTED]:
                lines.append(f"| {title} | `{c.path}` | {_size_of(c)} |")
        lines.append("")
    lines += ["**New in this release**", ""]
    lines += markdown.findings_table(report.sorted_findings(), rules)
    return "\n".join(lines) + "\n"


def render_json(diff: DiffReport, rules: Mapping[str, Rule] | None = None) -> str:
    doc: dict[str, Any] = {
        "seawall_version": __version__,
        "old": _target(diff.old),
        "new": _target(diff.new),
        "unpacked_bytes": {"old": diff.old_bytes, "new": diff.new_bytes,
                           "change": diff.new_bytes - diff.old_bytes},
        "added": [_change(c) for c in diff.added],
        "removed": [_change(c) for c in diff.removed],
        "changed": [_change(c) for c in diff.changed],
        "new_findings": [f.to_dict() for f in diff.report.sorted_findings()],
        "resolved_findings": [f.to_dict() for f in diff.resolved],
        "summary": {"fail_on": diff.report.fail_on.label, "failing": len(diff.report.failing),
                    "exit_code": diff.exit_code},
    }
    return json.dumps(doc, indent=2, ensure_ascii=False, default=str) + "\n"


def _target(summary: Any) -> dict[str, Any]:
    return {"target": summary.target, "files": summary.files, "bytes": summary.bytes,
            "error": summary.error}


def _change(change: Change) -> dict[str, Any]:
    return {
        "path": change.path,
        "old_size": change.old.size if change.old else None,
        "new_size": change.new.size if change.new else None,
        "old_sha256": change.old.sha256 if change.old else None,
        "new_sha256": change.new.sha256 if change.new else None,
    }


def _size_of(change: Change) -> str:
    if change.old and change.new:
        return _signed(change.delta)
    return _mb((change.new or change.old).size)  # type: ignore[union-attr]


def _mb(n: int) -> str:
    return f"{n / 1e6:,.1f} MB" if n >= 100_000 else f"{n:,} B"


def _signed(n: int) -> str:
    return ("+" if n >= 0 else "-") + _mb(abs(n))


def _ratio(diff: DiffReport) -> str:
    return f", {diff.new_bytes / diff.old_bytes:.2f}x" if diff.old_bytes else ""
