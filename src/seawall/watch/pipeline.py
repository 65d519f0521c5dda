"""One release, start to end: download (verified cache), scan, diff against the previous one.

Downloads go through ``seawall.fetch.cache.Cache``: content-addressed by the digest the
registry published and re-verified before reuse, so the previous release's files usually come
from disk. The comparison is ``seawall.diff.diff``: a finding is new when the previous release
did not have it (same rule and secret, or same path with the version written out), which is
what an alert should be about. With a fingerprint index, the ``codecopy`` detector (from
``seawall.hunt``) gets it through the engine settings; without ``seawall.hunt`` installed the
setting is simply unused.

Releases are downloaded and scanned on several threads at once (the watcher's pool). What
their scans share is safe to share: detectors are made fresh per target; the Hyperscan matcher
gives each thread its own scratch space; the other shared pieces (compiled rules, caches of
pure functions, registries filled at import, a loaded fingerprint index) are read-only once
built, and ``warm`` builds them before the threads start, so no thread builds a second copy
(a big fingerprint index is hundreds of MB). One thing is not safe: a scan that fans out over
processes forks, and ``fork`` in a process whose other threads are scanning copies the locks
they hold (``functools.cached_property`` takes one in Python 3.11); a child that then needs one
waits forever, and the watcher with it. So the watcher scans each release in one process
(``jobs = 1``): its parallelism is across releases. Files are only fetched from the hosts
the configuration expects (the registry's own, plus ``download-hosts``); a registry document
pointing elsewhere gets the release recorded with an error saying so, never a silent fetch.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import httpx

from seawall.diff import diff
from seawall.engine import Engine, Target
from seawall.fetch.cache import Cache
from seawall.fetch.http import FetchError, NotFound, redact
from seawall.findings import Finding
from seawall.policy import Policy
from seawall.scan import scan_targets
from seawall.watch.net import host_of
from seawall.watch.sources import FileRef


class Retry(Exception):
    """The release could not be fetched now (registry down, 429, bad download): try later.

    ``gone`` when the registry answered 404/410: retried a few times (a CDN may lag behind the
    document that announced the file), then given up by the caller.
    """

    def __init__(self, message: str, *, gone: bool = False) -> None:
        super().__init__(message)
        self.gone = gone


class Refused(Exception):
    """A file is served from a host the configuration does not expect: not fetched."""


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


def materialize(row: Mapping[str, Any], client: httpx.Client, cache: Cache,
                hosts: Collection[str] | None = None) -> Target:
    """The release's files on disk, verified; raises ``Retry`` when they cannot be had now,
    ``Refused`` when one is on a host outside ``hosts`` (None: any host)."""
    label = spec(row["ecosystem"], row["name"], row["version"])
    files = refs(row)
    for ref in files:
        if hosts is not None and host_of(ref.url) not in hosts:
            raise Refused(f"{label} file {ref.filename} is served from {host_of(ref.url)}, not "
                          f"the registry's host; not downloaded ({redact(ref.url)}). Add the host "
                          "to download-hosts in watch.toml if it is expected.")
    paths: list[Path] = []
    for ref in files:
        try:
            path, _ = cache.fetch(client, ref.url, ref.filename, ref.expected(),
                                  what=f"{label} file {ref.filename}")
        except NotFound as exc:
            raise Retry(str(exc), gone=True) from None
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


def warm(policy: Policy) -> None:
    """Build what concurrent scans share before they start: the openers and detectors (their
    compiled rules and keyword matcher) and, with ``codecopy``, the fingerprint index, which
    threads racing on a cold cache would each load. A failure here is left to the scans,
    which report it per release."""
    from seawall.artifacts import openers

    openers()
    for detector in Engine(limits=policy.limits, settings=policy.detectors).detectors():
        load = getattr(detector, "index", None)
        if detector.name == "codecopy" and getattr(detector, "index_path", None) and load:
            try:
                load()
            except Exception:  # noqa: BLE001, S110 - a missing extra or bad index: per release
                pass


def process(row: Mapping[str, Any], previous: Mapping[str, Any] | None, policy: Policy,
            client: httpx.Client, cache: Cache, hosts: Collection[str] | None = None) -> Outcome:
    """Runs on the watcher's threads, so in one process (see the module's docstring)."""
    if policy.jobs != 1:
        policy = dataclasses.replace(policy, jobs=1)
    try:
        target = materialize(row, client, cache, hosts)
    except Refused as exc:
        return Outcome((), 0, str(exc), None)
    if not target.files and target.path is None:
        return Outcome((), 0, "the release has no files", None)
    old, note = None, None
    if previous is not None:
        try:
            old = materialize(previous, client, cache, hosts)
        except (Refused, Retry) as exc:
            if isinstance(exc, Retry) and not exc.gone:
                raise  # a transient failure: compare later rather than alert on everything
            # Unpublished or unreachable for good: every finding counts as new (never fewer).
            note = f"previous release {previous['version']} unavailable ({exc}); scanned in full"
    if old is None or previous is None:
        report = scan_targets([target], policy)
        summary = report.targets[0]
        error = "; ".join(e for e in (summary.error, note) if e) or None
        return Outcome(report.findings, summary.files, error, None)
    result = diff(old, target, policy)
    error = result.new.error or (f"previous release: {result.old.error}" if result.old.error else None)
    return Outcome(result.report.findings, result.new.files, error, previous["version"])
