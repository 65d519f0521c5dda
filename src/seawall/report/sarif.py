"""``--format sarif``: SARIF 2.1.0 as GitHub code scanning accepts it.

Findings inside archives point at the archive (a file that exists in the checkout or
build); the path inside it goes into the message and a logical location, as nested
paths have no place of their own in SARIF.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping

from seawall import __version__
from seawall.artifacts.base import SEP
from seawall.detectors.base import Rule
from seawall.findings import Finding, Severity
from seawall.results import Report, TargetSummary

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFO_URI = "https://github.com/seawall-dev/seawall"

LEVEL = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.INFO: "note",
}
# GitHub maps security-severity >= 9.0 to critical, 7-8.9 high, 4-6.9 medium, else low.
SECURITY_SEVERITY = {
    Severity.CRITICAL: "9.5",
    Severity.HIGH: "8.0",
    Severity.MEDIUM: "5.5",
    Severity.LOW: "3.0",
    Severity.INFO: "1.0",
}


def render(report: Report, rules: Mapping[str, Rule]) -> str:
    used = sorted({f.rule for f in report.findings} | set(rules))
    index = {rule_id: i for i, rule_id in enumerate(used)}
    targets = {t.target: t for t in report.targets}
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": "seawall",
                "version": __version__,
                "semanticVersion": __version__,
                "informationUri": INFO_URI,
                "rules": [_rule(rules.get(rule_id), rule_id) for rule_id in used],
            }
        },
        "results": [_result(f, index[f.rule], targets.get(f.target)) for f in report.sorted_findings()],
        "invocations": [_invocation(report)],
    }
    doc = {"$schema": SCHEMA, "version": "2.1.0", "runs": [run]}
    return json.dumps(doc, indent=2, ensure_ascii=False, default=str) + "\n"


def _rule(rule: Rule | None, rule_id: str) -> dict[str, Any]:
    if rule is None:  # a finding whose rule left the catalogue (renamed plugin rule)
        rule = Rule(rule_id, rule_id, Severity.MEDIUM, rule_id, rule_id)
    help_text = rule.help or rule.summary
    return {
        "id": rule.id,
        "name": "".join(part.capitalize() for part in rule.id.replace("-", ".").split(".")),
        "shortDescription": {"text": rule.name},
        "fullDescription": {"text": rule.summary[:1000]},
        "help": {"text": help_text, "markdown": f"**{rule.name}**\n\n{help_text}"},
        "defaultConfiguration": {"level": LEVEL[rule.severity]},
        "properties": {
            "tags": ["security", rule.category],
            "precision": "high",
            "security-severity": SECURITY_SEVERITY[rule.severity],
        },
    }


def _result(finding: Finding, rule_index: int, target: TargetSummary | None) -> dict[str, Any]:
    outer, _, inner = finding.path.partition(SEP)
    uri = _artifact_uri(finding, target, outer)
    nested = bool(inner) or _is_archive_target(target)
    line = finding.line if (finding.line and not nested) else 1
    result: dict[str, Any] = {
        "ruleId": finding.rule,
        "ruleIndex": rule_index,
        "level": LEVEL[finding.severity],
        "message": {"text": f"{finding.message} [{finding.path}]"},
        "locations": [
            {
                "physicalLocation": {"artifactLocation": {"uri": uri}, "region": {"startLine": line}},
                "logicalLocations": [{"fullyQualifiedName": finding.path, "kind": "member"}],
            }
        ],
        "partialFingerprints": {"primaryLocationLineHash": finding.fingerprint, "seawall/v1": finding.fingerprint},
        "properties": {
            "severity": finding.severity.label,
            "target": finding.target,
            "path": finding.path,
            "security-severity": SECURITY_SEVERITY[finding.severity],
            "evidence": dict(finding.evidence),
        },
    }
    if len(finding.locations) > 1:
        result["relatedLocations"] = [
            {"id": i, "message": {"text": loc.path},
             "physicalLocation": {"artifactLocation": {"uri": uri}, "region": {"startLine": 1}}}
            for i, loc in enumerate(finding.locations[1:1000], start=1)
        ]
    return result


def _is_archive_target(target: TargetSummary | None) -> bool:
    return target is not None and target.meta.get("kind") in ("file", "registry")


def _artifact_uri(finding: Finding, target: TargetSummary | None, outer: str) -> str:
    meta = target.meta if target else {}
    root = meta.get("path")
    if meta.get("kind") == "dir" and root:
        return _relative(Path(root) / outer)
    if meta.get("kind") == "file" and root:
        return _relative(Path(root))
    return outer or finding.target


def _relative(path: Path) -> str:
    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return path.as_posix()
    return Path(rel).as_posix() if not rel.startswith("..") else path.resolve().as_uri()


def _invocation(report: Report) -> dict[str, Any]:
    notes = [
        {"level": "error", "message": {"text": t.error}, "descriptor": {"id": "target-error"}}
        for t in report.targets if t.error
    ]
    return {"executionSuccessful": not report.has_errors, "toolExecutionNotifications": notes}
