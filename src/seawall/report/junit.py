"""``--format junit``: for CI systems that only read JUnit XML.

One test suite per target. Each finding is a test case, failed when it is at or above
``--fail-on``. A target that could not be read has an errored case, and a clean target
has one passing case, so every target shows up in the CI's test view.
"""

from __future__ import annotations

from typing import Mapping
from xml.etree import ElementTree as ET

from seawall.detectors.base import Rule
from seawall.results import Report


def render(report: Report, rules: Mapping[str, Rule] | None = None) -> str:
    root = ET.Element("testsuites", name="seawall")
    findings = report.sorted_findings()
    for target in report.targets:
        mine = [f for f in findings if f.target == target.target]
        suite = ET.SubElement(root, "testsuite", name=target.target)
        failures = errors = 0
        if target.error:
            errors += 1
            case = ET.SubElement(suite, "testcase", classname="seawall.read", name=target.target)
            ET.SubElement(case, "error", message=target.error, type="unreadable").text = target.error
        for finding in mine:
            where = finding.path + (f":{finding.line}" if finding.line else "")
            case = ET.SubElement(suite, "testcase", classname=finding.rule, name=where)
            if finding.severity >= report.fail_on:
                failures += 1
                failure = ET.SubElement(case, "failure", message=finding.message,
                                        type=finding.severity.label)
                rule = (rules or {}).get(finding.rule)
                failure.text = f"{finding.message}\n{rule.fix or rule.summary}" if rule else finding.message
            else:
                ET.SubElement(case, "system-out").text = f"{finding.severity.label}: {finding.message}"
        if not mine and not target.error:
            ET.SubElement(suite, "testcase", classname="seawall.scan", name="nothing to report")
        suite.set("tests", str(max(len(mine) + (1 if target.error else 0), 1)))
        suite.set("failures", str(failures))
        suite.set("errors", str(errors))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
