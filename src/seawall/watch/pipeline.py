"""One release, start to end: download (verified cache), scan, diff against the previous one.

Downloads go through ``seawall.fetch.cache.Cache``: content-addressed by the digest the
registry published and re-verified before reuse, so the previous release's files usually come
from disk. The comparison is ``seawall.diff.diff``: a finding is new when the previous release
did not have it (same rule and secret, or same path with the version written out), which is
what an alert should be about. With a fingerprint index, the ``codecopy`` detector (from
``seawall.hunt``) gets it through the engine settings; without ``seawall.hunt`` installed the
setting is simply unused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import httpx

from seawall.diff import diff
from seawall.engine import Target
from seawall.fetch.cache import Cache
from seawall.fetch.http import FetchError
from seawall.findings import Finding
from seawall.policy import Policy
from seawall.scan import scan_targets
from seawall.watch.sources import FileRef


class Retry(Exception):
    """The release could not be fetched now (registry down, 429, bad download): try later."""


@dataclass(frozen=True)
class Outcome:
    findings: tuple[Finding, ...]
    """Findings this release newly exposes (all of them when there is no previous release)."""
    files: int
    error: str | None
    previous: str | None


def spec(ecosystem: str, name: str, version: str) -> str:
    return f"npm:{name}@{version}" if ecosystem == "npm" else f"pypi:{name}=={version}"


def refs(row: Mapping[str, Any]) -> list[FileRef]:
    return [FileRef(**item) for item in json.loads(row["files"])]


def materialize(row: Mapping[str, Any], client: httpx.Client, cache: Cache) -> Target:
    """The release's files on disk, verified; raises ``Retry`` when they cannot be had now."""
    label = spec(row["ecosystem"], row["name"], row["version"])
    paths: list[Path] = []
    for ref in refs(row):
        try:
            path, _ = cache.fetch(client, ref.url, ref.filename, ref.expected(),
                                  what=f"{label} file {ref.filename}")
        except FetchError as exc:
            raise Retry(str(exc)) from None
        except httpx.HTTPError as exc:
            raise Retry(f"network error fetching {label}: {exc or type(exc).__name__}") from None
        paths.append(path)
    meta = {"ecosystem": row["ecosystem"], "name": row["name"], "version": row["version"],
            "kind": "registry"}
    if row["ecosystem"] == "npm" and len(paths) == 1:
        return Target(name=label, path=paths[0], meta=meta)
    return Target(name=label, files=paths, meta=meta)


def process(row: Mapping[str, Any], previous: Mapping[str, Any] | None, policy: Policy,
            client: httpx.Client, cache: Cache) -> Outcome:
    target = materialize(row, client, cache)
    if not target.files and target.path is None:
        return Outcome((), 0, "the release has no files", None)
    old = materialize(previous, client, cache) if previous is not None else None
    if old is None or previous is None:
        report = scan_targets([target], policy)
        summary = report.targets[0]
        return Outcome(report.findings, summary.files, summary.error, None)
    result = diff(old, target, policy)
    error = result.new.error or (f"previous release: {result.old.error}" if result.old.error else None)
    return Outcome(result.report.findings, result.new.files, error, previous["version"])
