"""Reporters turn a finished scan into text. They never detect; detectors never format.

Each reporter is a pure function ``render(report, rules) -> str`` where ``report`` is a
``seawall.results.Report`` and ``rules`` the rule catalogue (id -> Rule).
"""

from __future__ import annotations

from typing import Callable

from seawall.report import json as json_report
from seawall.report import junit, markdown, sarif, text

Renderer = Callable[..., str]

REPORTERS: dict[str, Renderer] = {
    "text": text.render,
    "json": json_report.render,
    "sarif": sarif.render,
    "markdown": markdown.render,
    "junit": junit.render,
}

__all__ = ["REPORTERS"]
