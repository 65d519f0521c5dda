"""``--format markdown``: a summary for a pull-request comment or a CI step summary.

GitHub renders it as is (``>> $GITHUB_STEP_SUMMARY``). Secret values never appear; the
findings table is capped so a flood stays readable, and JSON/SARIF carry the rest.
"""

from __future__ import annotations

from typing import Mapping

from seawall import __version__
from seawall.detectors.base import Rule
from seawall.findings import Finding, Severity
from seawall.results import Report

MAX_ROWS = 50
ICON = {
    Severity.CRITICAL: "🔴",
    Severity.HIGH: "🟠",
    Severity.MEDIUM: "🟡",
    Severity.LOW: "🔵",
    Severity.INFO: "⚪",
}


def render(report: Report, rules: Mapping[str, Rule], *, title: str = "Seawall scan") -> str:
    lines = [f"### {_verdict(report)} {title}", ""]
    lines += [f"- `{t.target}`: {t.files:,} files, {t.bytes / 1e6:,.1f} MB"
              + (f" — **error:** {_cell(t.error)}" if t.error else "") for t in report.targets]
    lines.append("")
    lines += findings_table(report.sorted_findings(), rules)
    counts = ", ".join(f"{n} {label}" for label, n in report.counts().items() if n) or "no findings"
    lines += ["", f"<sub>seawall {__version__} · {counts} · fail-on {report.fail_on.label}"
                  + (f" · {report.suppressed} suppressed" if report.suppressed else "") + "</sub>"]
    return "\n".join(lines) + "\n"


def findings_table(findings: list[Finding], rules: Mapping[str, Rule]) -> list[str]:
    if not findings:
        return ["Nothing to report."]
    lines = ["| | rule | where | what | what to do |", "|---|---|---|---|---|"]
    for f in findings[:MAX_ROWS]:
        rule = rules.get(f.rule)
        todo = (rule.fix or rule.summary) if rule else ""
        where = f"`{f.path}`" + (f":{f.line}" if f.line else "")
        lines.append(f"| {ICON[f.severity]} {f.severity.label} | `{f.rule}` | {_cell(where)} | "
                     f"{_cell(f.message)} | {_cell(todo)} |")
    if len(findings) > MAX_ROWS:
        lines.append(f"\n… and {len(findings) - MAX_ROWS} more; see the JSON or SARIF report.")
    return lines


def _verdict(report: Report) -> str:
    if report.has_errors:
        return "⚠️ Incomplete:"
    return "❌ Blocked:" if report.failing else "✅ Passed:"


def _cell(text: str | None) -> str:
    return (text or "").replace("|", "\\|").replace("\n", " ")
