"""``--format text``: for people. Grouped by severity, with counts and what to do."""

from __future__ import annotations

import io
import textwrap
from typing import Any, Mapping

from rich.console import Console
from rich.markup import escape
from rich.text import Text

from seawall import __version__
from seawall.detectors.base import Rule
from seawall.findings import Finding, Severity
from seawall.results import Report

STYLE = {
    Severity.CRITICAL: "bold white on red",
    Severity.HIGH: "bold red",
    Severity.MEDIUM: "yellow",
    Severity.LOW: "cyan",
    Severity.INFO: "dim",
}
MAX_PER_GROUP = 50


def render(report: Report, rules: Mapping[str, Rule], *, color: bool = False, width: int = 100) -> str:
    out = io.StringIO()
    console = Console(file=out, force_terminal=color, no_color=not color, width=width,
                      highlight=False, soft_wrap=False)
    _header(console, report)
    findings = report.sorted_findings()
    for severity in sorted(Severity, reverse=True):
        group = [f for f in findings if f.severity is severity]
        if group:
            _group(console, severity, group, rules, multi_target=len(report.targets) > 1)
    _footer(console, report)
    return out.getvalue()


def _header(console: Console, report: Report) -> None:
    files = sum(t.files for t in report.targets)
    size = sum(t.bytes for t in report.targets)
    took = f" in {report.seconds:.1f} s" if report.seconds is not None else ""
    console.print(f"[bold]seawall {__version__}[/] scanned {len(report.targets)} target(s), "
                  f"{files:,} files, {_size(size)}{took}")
    for t in report.targets:
        status = f"[red]error: {escape(t.error)}[/]" if t.error else "ok"
        console.print(f"  {escape(t.target)}: {t.files:,} files, {_size(t.bytes)} — {status}")
    console.print()


def _group(console: Console, severity: Severity, group: list[Finding], rules: Mapping[str, Rule],
           multi_target: bool) -> None:
    console.print(Text(f" {severity.label.upper()} ({len(group)}) ", style=STYLE[severity]))
    for finding in group[:MAX_PER_GROUP]:
        where = f"{finding.target} :: {finding.path}" if multi_target else finding.path
        line = f":{finding.line}" if finding.line else ""
        console.print(f"  [bold]{finding.rule}[/]  {escape(where)}{line}")
        _indented(console, Text(finding.message))
        facts = _facts(finding.evidence)
        if facts:
            _indented(console, Text(facts, style="dim"))
        if len(finding.locations) > 1:
            _indented(console, Text(f"also in {len(finding.locations) - 1} other place(s)", style="dim"))
        rule = rules.get(finding.rule)
        if rule is not None and severity >= Severity.MEDIUM:
            todo = rule.fix or _first_sentence(rule.help or rule.summary)
            _indented(console, Text(f"→ {todo}", style="green"))
    if len(group) > MAX_PER_GROUP:
        console.print(f"  … and {len(group) - MAX_PER_GROUP} more (use --format json for all)")
    console.print()


def _indented(console: Console, text: Text) -> None:
    """Wrap under a 4-space indent (rich's Padding would pad wrapped lines with spaces)."""
    for line in textwrap.wrap(text.plain, width=max(console.width - 4, 20)) or [""]:
        console.print(Text("    " + line, style=text.style))


def _footer(console: Console, report: Report) -> None:
    counts = ", ".join(f"{n} {label}" for label, n in report.counts().items() if n)
    failing = len(report.failing)
    suppressed = f"; {report.suppressed} suppressed by config or baseline" if report.suppressed else ""
    if report.has_errors:
        console.print(f"[bold red]ERROR[/]: some content could not be read; the scan is incomplete "
                      f"(exit 2). Findings: {counts or 'none'}{suppressed}.")
    elif failing:
        console.print(f"[bold red]FAIL[/]: {failing} finding(s) at or above {report.fail_on.label} "
                      f"({counts}){suppressed}.")
    else:
        below = f" ({counts} below {report.fail_on.label})" if counts else ""
        console.print(f"[bold green]PASS[/]: nothing at or above {report.fail_on.label}{below}{suppressed}.")


def _facts(evidence: Mapping[str, Any], limit: int = 8) -> str:
    parts: list[str] = []
    for key, value in evidence.items():
        if key == "sample" or value in (None, "", [], {}):
            continue
        if isinstance(value, dict):
            value = ", ".join(f"{k} ({_num(v)})" for k, v in list(value.items())[:5])
        elif isinstance(value, (list, tuple)):
            shown = [_item(v) for v in value[:5]]
            value = ", ".join(shown) + (" …" if len(value) > 5 else "")
        parts.append(f"{key.replace('_', ' ')}: {_num(value)}")
        if len(parts) >= limit:
            break
    return " · ".join(parts)


def _item(value: Any) -> str:
    """A list element: ``{"path": p, "bytes": n}`` reads as ``p (n)``."""
    if isinstance(value, dict) and "path" in value:
        rest = [_num(v) for k, v in value.items() if k != "path"]
        return f"{value['path']} ({', '.join(rest)})" if rest else str(value["path"])
    return str(value)


def _num(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


def _first_sentence(text: str) -> str:
    head = text.split(". ", 1)[0].strip()
    return head if head.endswith(".") else head + "."


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1000  # type: ignore[assignment]
    return f"{n} B"
