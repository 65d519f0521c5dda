"""Resolve registry specs into scannable targets: ``npm:NAME[@VERSION]``, ``pypi:NAME[==VERSION]``.

Downloads land in a verified cache (see ``cache``) and are never extracted. Resolution never
raises: any failure becomes ``Target(name=spec, error=...)``, so one bad spec stops nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx

from seawall.engine import Target
from seawall.fetch import npm, pypi
from seawall.fetch.cache import Cache, cache_root
from seawall.fetch.http import FetchError, new_client

__all__ = ["SCHEMES", "is_registry_spec", "resolve"]

Resolver = Callable[..., Target]
SCHEMES: dict[str, Resolver] = {"npm": npm.resolve, "pypi": pypi.resolve}
USAGE = "expected npm:NAME[@VERSION|@TAG] or pypi:NAME[==VERSION]"


def is_registry_spec(spec: str) -> bool:
    scheme, sep, _ = spec.partition(":")
    return bool(sep) and scheme in SCHEMES


def resolve(spec: str, *, cache_dir: Path | None = None) -> Target:
    """Download and verify what ``spec`` names; the Target's name is the spec made exact."""
    scheme, sep, body = spec.partition(":")
    resolver = SCHEMES.get(scheme) if sep else None
    if resolver is None:
        return Target(name=spec, error=f"not a registry spec ({USAGE})")
    try:
        cache = Cache(cache_root(cache_dir))
        with new_client() as client:
            return resolver(body.strip(), client=client, cache=cache)
    except FetchError as exc:
        return Target(name=spec, error=str(exc))
    except httpx.HTTPError as exc:  # one that slipped past the translation in http.get
        return Target(name=spec, error=f"network error: {exc or type(exc).__name__}")
    except Exception as exc:
        return Target(name=spec, error=f"internal error: {type(exc).__name__}: {exc}")
