"""Registry documents and feeds against stub servers shaped like the real APIs' documents."""

from __future__ import annotations

import email.utils
import hashlib
import json

import httpx
import pytest
from pytest_httpserver import HTTPServer
from watchkit import FeedServer
from werkzeug import Request, Response

from seawall.fetch.http import FetchError
from seawall.watch import sources

PEP691 = "application/vnd.pypi.simple.v1+json"


def simple_page(files: dict[str, bytes]) -> dict:
    return {"meta": {"api-version": "1.1", "_last-serial": 7}, "name": "demo",
            "versions": ["1.0.0"],
            "files": [{"filename": name, "url": f"../../files/{name}",
                       "hashes": {"sha256": hashlib.sha256(data).hexdigest()},
                       "upload-time": "2026-11-25T10:00:00.000000Z", "yanked": False}
                      for name, data in files.items()]}


def test_pep691_page_with_etag_costs_a_304_when_unchanged(httpserver: HTTPServer) -> None:
    page = json.dumps(simple_page({"demo-1.0.0.tar.gz": b"one", "demo-1.0.0-py3-none-any.whl": b"w",
                                   "demo-0.9.tar.gz": b"old", "other-1.0.tar.gz": b"x"}))
    seen: list[str | None] = []

    def handler(request: Request) -> Response:
        seen.append(request.headers.get("If-None-Match"))
        assert request.headers["Accept"].startswith(PEP691)
        if request.headers.get("If-None-Match") == '"v7"':
            return Response(status=304)
        return Response(page, headers={"Content-Type": PEP691, "ETag": '"v7"'})

    httpserver.expect_request("/simple/demo/").respond_with_handler(handler)
    base = httpserver.url_for("/simple/")
    with httpx.Client() as client:
        first = sources.poll_package(client, "pypi", base, "demo", None)
        second = sources.poll_package(client, "pypi", base, "demo", first.etag)
    assert seen == [None, '"v7"']
    assert first.etag == '"v7"' and not first.unchanged
    assert second.unchanged and second.releases == ()
    by_version = {r.version: r for r in first.releases}
    assert sorted(by_version) == ["0.9", "1.0.0"]  # other-1.0 belongs to another project
    release = by_version["1.0.0"]
    assert release.previous == "0.9"
    assert [f.filename for f in release.files] == ["demo-1.0.0.tar.gz",
                                                    "demo-1.0.0-py3-none-any.whl"]
    assert release.files[0].url == httpserver.url_for("/files/demo-1.0.0.tar.gz")
    assert release.files[0].algorithm == "sha256"
    assert release.files[0].digest == hashlib.sha256(b"one").hexdigest()


def test_npm_packument_versions_tarballs_and_a_missing_package(httpserver: HTTPServer) -> None:
    doc = {"name": "@acme/x", "dist-tags": {"latest": "1.1.0"}, "versions": {
        v: {"name": "@acme/x", "version": v, "dist": {
            "tarball": f"{httpserver.url_for('/')}@acme/x/-/x-{v}.tgz",
            "integrity": "sha512-" + "A" * 86 + "==", "shasum": "0" * 40}}
        for v in ("1.0.0", "1.1.0", "2.0.0-beta.1")}}
    httpserver.expect_request("/@acme/x").respond_with_json(doc)  # werkzeug decodes the %2f
    httpserver.expect_request("/@acme/gone").respond_with_data("{}", status=404)
    with httpx.Client() as client:
        poll = sources.poll_package(client, "npm", httpserver.url_for("/"), "@acme/x", None)
        gone = sources.poll_package(client, "npm", httpserver.url_for("/"), "@acme/gone", None)
    found = {r.version: r for r in poll.releases}
    assert sorted(found) == ["1.0.0", "1.1.0", "2.0.0-beta.1"]
    assert found["1.1.0"].previous == "1.0.0"
    assert found["2.0.0-beta.1"].previous == "1.1.0"
    assert found["1.0.0"].previous is None
    ref = found["1.1.0"].files[0]
    assert (ref.filename, ref.algorithm) == ("x-1.1.0.tgz", "sha512")
    assert gone.missing and gone.releases == ()


def test_npm_changes_feed_pages_with_an_opaque_cursor() -> None:
    feed = FeedServer()
    try:
        url = f"{feed.url}/registry/_changes"
        feed.changes += ["old-one"]
        with httpx.Client() as client:
            names, cursor = sources.poll_npm_changes(client, url, None)  # first run: from now
            assert (names, cursor) == ([], "1-g1AAAA")
            feed.changes += [f"pkg-{n}" for n in range(5)] + ["pkg-1", "_design/app"]
            names, cursor = sources.poll_npm_changes(client, url, cursor, limit=2)
            assert names == ["pkg-0", "pkg-1", "pkg-2", "pkg-3", "pkg-4"]
            assert cursor == "8-g1AAAA"
            assert sources.poll_npm_changes(client, url, cursor) == ([], "8-g1AAAA")
    finally:
        feed.close()
    assert [r for r in feed.requests if "limit=2" in r] == [
        "/registry/_changes?since=1-g1AAAA&limit=2", "/registry/_changes?since=3-g1AAAA&limit=2",
        "/registry/_changes?since=5-g1AAAA&limit=2", "/registry/_changes?since=7-g1AAAA&limit=2",
    ]


def test_pypi_updates_feed_pages_back_with_before_until_the_cursor() -> None:
    feed = FeedServer()
    try:
        url = f"{feed.url}/rss/updates.xml"
        t0 = 1_790_000_000.0
        feed.rss_items = [(f"Proj_{n}", "1.0", t0 + n) for n in range(250)]
        with httpx.Client() as client:
            first, cursor = sources.poll_pypi_updates(client, url, None)
            assert len(first) == 100 and cursor == t0 + 249  # a first run reads one page
            feed.rss_items += [(f"new-{n}", "2.0", t0 + 1000 + n) for n in range(230)]
            updates, cursor = sources.poll_pypi_updates(client, url, cursor)
    finally:
        feed.close()
    # Newest first, down to the cursor's own item (its second may have held more).
    assert [u.name for u in updates] == [f"new-{n}" for n in reversed(range(230))] + ["proj-249"]
    assert cursor == t0 + 1229
    assert first[0].name == "proj-249"  # canonical names
    pages = [r for r in feed.requests if "before=" in r]
    assert pages == [f"/rss/updates.xml?before={int(t0 + 1130)}",
                     f"/rss/updates.xml?before={int(t0 + 1030)}"]


def test_hostile_rss_is_refused(httpserver: HTTPServer) -> None:
    bomb = (b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa">'
            b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><rss><channel><item>'
            b"<title>&b;</title></item></channel></rss>")
    httpserver.expect_request("/rss").respond_with_data(bomb, content_type="application/rss+xml")
    with httpx.Client() as client, pytest.raises(FetchError, match="DTD or entities"):
        sources.poll_pypi_updates(client, httpserver.url_for("/rss"), None)
    assert sources.parse_rss(
        b"<rss><channel><item><title>x 1</title><pubDate>"
        + email.utils.formatdate(0, usegmt=True).encode()
        + b"</pubDate></item><item><title>no date</title></item></channel></rss>"
    ) == [sources.Update("x", "1", 0.0)]


def test_npm_changes_cursor_stays_opaque_and_never_becomes_null(httpserver: HTTPServer) -> None:
    pages = iter([
        {"results": [{"seq": 41, "id": "a"}], "last_seq": None},  # no last_seq: the row's
        {"results": [], "last_seq": None},  # nothing new: the cursor we had
        {"results": [{"seq": ["x", 7], "id": "b"}], "last_seq": ["x", 7]},  # JSON, not a string
    ])
    httpserver.expect_request("/_changes").respond_with_handler(
        lambda request: Response(json.dumps(next(pages)), content_type="application/json"))
    url = httpserver.url_for("/_changes")
    with httpx.Client() as client:
        assert sources.poll_npm_changes(client, url, "40") == (["a"], "41")
        assert sources.poll_npm_changes(client, url, "41") == ([], "41")
        assert sources.poll_npm_changes(client, url, "41") == (["b"], '["x",7]')
    assert [r.args["since"] for r, _ in httpserver.log] == ["40", "41", "41"]


def test_pypi_updates_in_the_cursor_second_are_not_skipped() -> None:
    """pubDate has one-second resolution: a release listed late in the same second counts."""
    feed = FeedServer()
    try:
        url = f"{feed.url}/rss/updates.xml"
        t0 = 1_790_000_000.0
        feed.rss_items = [("early", "1.0", t0)]
        with httpx.Client() as client:
            first, cursor = sources.poll_pypi_updates(client, url, None)
            feed.rss_items.append(("same-second", "1.0", t0))
            updates, after = sources.poll_pypi_updates(client, url, cursor)
    finally:
        feed.close()
    assert ([u.name for u in first], cursor) == (["early"], t0)
    assert sorted(u.name for u in updates) == ["early", "same-second"] and after == t0
