"""Reporters turn a finished scan into text. They never detect; detectors never format.

Each reporter is a pure function ``render(report, rules) -> str`` where ``report`` is a
``seawall.results.Report`` and ``rules`` the rule catalogue (id -> Rule).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from importlib import import_module
from typing import Callable

Renderer = Callable[..., str]


class _Reporters(Mapping[str, Renderer]):
    """Format name -> ``render``; each reporter module is imported when first asked for
    (the text reporter's terminal library is not needed to write JSON)."""

    _modules = {"text": "text", "json": "json", "sarif": "sarif", "markdown": "markdown",
                "junit": "junit"}

    def __getitem__(self, name: str) -> Renderer:
        module = self._modules[name]
        render: Renderer = import_module(f"seawall.report.{module}").render
        return render

    def __iter__(self) -> Iterator[str]:
        return iter(self._modules)

    def __len__(self) -> int:
        return len(self._modules)


REPORTERS: Mapping[str, Renderer] = _Reporters()

__all__ = ["REPORTERS"]
