"""Openers: any target becomes one stream of entries. One module per format."""

from __future__ import annotations

import importlib
import pkgutil

from seawall.artifacts.base import Entry, Opener

__all__ = ["Entry", "Opener", "openers"]

_loaded = False


def openers() -> list[type[Opener]]:
    """Every registered opener, in sniffing order. Modules register on import."""
    global _loaded
    if not _loaded:
        for module in pkgutil.iter_modules(__path__):
            importlib.import_module(f"{__name__}.{module.name}")
        _loaded = True
    return Opener.registry
