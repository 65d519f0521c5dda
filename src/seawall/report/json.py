"""``--format json``: one object, stable keys, secret values never included."""

from __future__ import annotations

from typing import Mapping

import msgspec

from seawall import __version__
from seawall.detectors.base import Rule
from seawall.results import Report


def render(report: Report, rules: Mapping[str, Rule] | None = None) -> str:
    doc = {
        "seawall_version": __version__,
        "targets": [
            {"target": t.target, "files": t.files, "bytes": t.bytes, "error": t.error}
            for t in report.targets
        ],
        "summary": {
            "fail_on": report.fail_on.label,
            "failing": len(report.failing),
            "suppressed": report.suppressed,
            "by_severity": report.counts(),
            "exit_code": report.exit_code,
        },
        "findings": [f.to_dict() for f in report.sorted_findings()],
    }
    # msgspec writes the same text as json.dumps(indent=2, ensure_ascii=False), 10x faster:
    # a report of a big release holds thousands of findings.
    return msgspec.json.format(msgspec.json.encode(doc, enc_hook=str), indent=2).decode() + "\n"
