"""Where new releases are learnt of: each package's registry document, and the two feeds.

- npm: the package document (packument) lists every version with its tarball and integrity.
- PyPI: the Simple API page (PEP 691 JSON, HTML accepted too) lists every file with its hash;
  an ETag makes an unchanged page cost a ``304``.
- npm ``_changes?since=&limit=`` (poll only; the sequence is opaque and stored as text) and
  PyPI's ``updates.xml`` RSS (newest 100, older pages through ``?before=<unix time>``) name
  packages that changed: ours get polled at once, others only when hunting everyone's releases.

The parsing of documents is ``seawall.fetch``'s, so the watcher and ``seawall scan`` agree on
versions, tarball URLs and digests.
"""

from __future__ import annotations

import email.utils
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import unquote, urlencode, urlsplit

import httpx
import msgspec
from packaging.utils import canonicalize_name

from seawall.fetch import npm as npm_fetch
from seawall.fetch import pypi as pypi_fetch
from seawall.fetch.http import FetchError, NotFound, json_object
from seawall.fetch.integrity import Expected
from seawall.watch.net import get_document

CHANGES_LIMIT = 1000
MAX_FEED_PAGES = 10


@dataclass(frozen=True)
class FileRef:
    filename: str
    url: str
    algorithm: str | None
    digest: str | None
    """Hex of the published digest; None when the registry published none."""

    @classmethod
    def of(cls, filename: str, url: str, expected: Expected | None) -> FileRef:
        if expected is None:
            return cls(filename, url, None, None)
        return cls(filename, url, expected.algorithm, expected.primary.hex())

    def expected(self) -> Expected | None:
        if not self.algorithm or not self.digest:
            return None
        return Expected.strongest([(self.algorithm, bytes.fromhex(self.digest))])

    def to_dict(self) -> dict[str, Any]:
        return {"filename": self.filename, "url": self.url, "algorithm": self.algorithm,
                "digest": self.digest}


@dataclass(frozen=True)
class Found:
    version: str
    files: tuple[FileRef, ...]
    previous: str | None
    published: float | None = None
    """When the registry says it was published (npm ``time``), as UNIX seconds."""


@dataclass(frozen=True)
class Poll:
    releases: tuple[Found, ...]
    etag: str | None
    unchanged: bool = False
    missing: bool = False
    """The registry does not know the package (yet): nothing to do, not an error."""


def package_url(ecosystem: str, base: str, name: str) -> str:
    base = base.rstrip("/") + "/"
    if ecosystem == "npm":
        return base + name.replace("/", "%2f")
    return f"{base}{name}/"


def poll_package(client: httpx.Client, ecosystem: str, base: str, name: str,
                 etag: str | None) -> Poll:
    url = package_url(ecosystem, base, name)
    accept = npm_fetch.ACCEPT if ecosystem == "npm" else pypi_fetch.ACCEPT
    try:
        doc = get_document(client, url, accept=accept, etag=etag, what=f"{ecosystem} package {name}")
    except NotFound:
        return Poll((), None, missing=True)
    if doc.status == 304:
        return Poll((), etag, unchanged=True)
    if ecosystem == "npm":
        found = _npm_releases(doc.body, url, base, name)
    else:
        found = _pypi_releases(doc.body, doc.content_type, doc.url, name)
    return Poll(tuple(found), doc.etag)


def _npm_releases(body: bytes, url: str, registry: str, name: str) -> list[Found]:
    doc = json_object(body, "a packument")
    versions = doc.get("versions")
    if not isinstance(versions, dict):
        return []
    times = doc.get("time") if isinstance(doc.get("time"), dict) else {}
    found = []
    for version, meta in versions.items():
        dist = meta.get("dist") if isinstance(meta, dict) else None
        if not isinstance(dist, dict):
            continue
        try:
            tarball = npm_fetch.tarball_url(dist, url, registry.rstrip("/") + "/", f"{name}@{version}")
        except FetchError:
            continue
        filename = unquote(urlsplit(tarball).path.rsplit("/", 1)[-1]) or "package.tgz"
        ref = FileRef.of(filename, tarball, npm_fetch.expected_digest(dist))
        found.append(Found(version, (ref,), npm_fetch.previous_version(versions, version),
                           _timestamp(times.get(version))))
    return found


def _timestamp(value: Any) -> float | None:
    """An ISO 8601 time (npm writes ``2026-11-25T10:00:00.000Z``) as UNIX seconds."""
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    return when.replace(tzinfo=when.tzinfo or timezone.utc).timestamp()


def _pypi_releases(body: bytes, content_type: str, url: str, name: str) -> list[Found]:
    if content_type.endswith("json"):
        files = pypi_fetch.parse_json_page(body, url)
    else:
        files = pypi_fetch.parse_html_page(body.decode("utf-8", errors="replace"), url)
    releases = pypi_fetch.group_releases(files, canonicalize_name(name))
    found = []
    for version, group in releases.items():
        previous = pypi_fetch.previous_version(releases, version)
        refs = tuple(FileRef.of(f.filename, f.url, f.expected) for f in group)
        found.append(Found(str(version), refs, str(previous) if previous else None))
    return found


# -- feeds ------------------------------------------------------------------------------------

def poll_npm_changes(client: httpx.Client, url: str, since: str | None,
                     limit: int = CHANGES_LIMIT, *, start: str = "now") -> tuple[list[str], str]:
    """Names changed after ``since`` and the cursor to store; ``since=None`` begins at ``start``."""
    names: list[str] = []
    cursor = since if since is not None else start
    for _ in range(MAX_FEED_PAGES):
        query = urlencode({"since": cursor, "limit": limit})
        doc = get_document(client, f"{url}?{query}", accept="application/json",
                           what="the npm changes feed")
        try:
            body = msgspec.json.decode(doc.body)
        except msgspec.DecodeError as exc:
            raise FetchError(f"the npm changes feed is not valid JSON: {exc}") from None
        if not isinstance(body, dict):
            raise FetchError("the npm changes feed is not a JSON object")
        results = [r for r in body.get("results") or [] if isinstance(r, dict)]
        for row in results:
            name = row.get("id")
            if isinstance(name, str) and not name.startswith("_design/"):
                names.append(name)
        last = body.get("last_seq")
        if last is None and results:
            last = results[-1].get("seq")
        if last is not None:  # opaque: kept as sent (JSON text when not a string)
            cursor = last if isinstance(last, str) else msgspec.json.encode(last).decode()
        if len(results) < limit:
            break
    return list(dict.fromkeys(names)), cursor


@dataclass(frozen=True)
class Update:
    name: str
    version: str
    when: float


def poll_pypi_updates(client: httpx.Client, url: str, cursor: float | None
                      ) -> tuple[list[Update], float | None]:
    """Releases newer than ``cursor`` (newest first), paging back with ``before=`` as needed."""
    updates: list[Update] = []
    page_url = url
    for _ in range(MAX_FEED_PAGES):
        doc = get_document(client, page_url, accept="application/rss+xml, application/xml",
                           what="the PyPI updates feed")
        items = parse_rss(doc.body)
        # ``>=``: pubDate has one-second resolution, so an item of the cursor's own second may
        # not have been listed yet; announcing the last one again costs one early poll.
        fresh = [u for u in items if cursor is None or u.when >= cursor]
        updates.extend(fresh)
        if cursor is None or not items or len(fresh) < len(items):
            break  # reached what we had seen (or a first run: one page is enough)
        oldest = int(min(u.when for u in items))
        sep = "&" if "?" in url else "?"
        page_url = f"{url}{sep}before={oldest}"
    newest = max((u.when for u in updates), default=cursor)
    return updates, newest


def parse_rss(body: bytes) -> list[Update]:
    head = body[:4096].lower()
    if b"<!doctype" in head or b"<!entity" in body.lower():
        raise FetchError("the PyPI updates feed declares a DTD or entities; refusing it")
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise FetchError(f"the PyPI updates feed is not valid XML: {exc}") from None
    found = []
    for item in root.iter("item"):
        name, version = _project_from_link(item.findtext("link") or "")
        if not name:
            parts = (item.findtext("title") or "").split()
            if len(parts) != 2:
                continue
            name, version = parts
        try:
            when = email.utils.parsedate_to_datetime(item.findtext("pubDate") or "").timestamp()
        except (TypeError, ValueError, IndexError):
            continue
        found.append(Update(str(canonicalize_name(name)), version, when))
    return found


def _project_from_link(link: str) -> tuple[str, str]:
    parts = [p for p in urlsplit(link).path.split("/") if p]
    if len(parts) >= 3 and parts[-3] == "project":
        return unquote(parts[-2]), unquote(parts[-1])
    return "", ""
