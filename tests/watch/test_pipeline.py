"""One release through the pipeline: concurrent scans, a vanished previous, foreign hosts."""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from pytest_httpserver import HTTPServer
from watchkit import anthropic_key, sdist

from seawall.fetch.cache import Cache
from seawall.policy import Policy
from seawall.watch import pipeline


def row(version: str, files: list[tuple[str, str, bytes | None]],
        previous: str | None = None) -> dict[str, object]:
    """A ``releases`` row as the store hands it over (files: name, url, content for the digest)."""
    refs = [{"filename": name, "url": url, "algorithm": "sha256" if data is not None else None,
             "digest": hashlib.sha256(data).hexdigest() if data is not None else None}
            for name, url, data in files]
    return {"id": 1, "ecosystem": "pypi", "name": "demo", "version": version,
            "files": json.dumps(refs), "previous": previous, "attempts": 0}


def test_concurrent_scans_all_find_the_secret(httpserver: HTTPServer, tmp_path: Path) -> None:
    """The watcher scans ``concurrency`` releases at once: no scan may fail or miss for it."""
    rows = []
    padding = b"".join(b"token = 'sk-' + password + api_key  # aws secret\n" for _ in range(4000))
    for n in range(8):
        name, data = sdist("demo", f"1.0.{n}", {
            ".env": f"ANTHROPIC_API_KEY={anthropic_key(n)}\n".encode(), "big.py": padding})
        httpserver.expect_request(f"/files/{name}").respond_with_data(data)
        rows.append(row(f"1.0.{n}", [(name, httpserver.url_for(f"/files/{name}"), data)]))
    cache = Cache(tmp_path / "cache")
    with httpx.Client() as client, ThreadPoolExecutor(4) as pool:
        outcomes = list(pool.map(lambda r: pipeline.process(r, None, Policy(), client, cache),
                                 rows))
    assert [o.error for o in outcomes] == [None] * 8
    assert [sorted(f.rule for f in o.findings if f.rule.startswith("secret."))
            for o in outcomes] == [["secret.anthropic-api-key"]] * 8


def test_a_vanished_previous_release_means_a_full_scan(httpserver: HTTPServer,
                                                      tmp_path: Path) -> None:
    """A 404 for the previous release must not hold the new one back for ever."""
    key = f"ANTHROPIC_API_KEY={anthropic_key(2)}\n".encode()
    name, data = sdist("demo", "1.0.1", {".env": key})
    httpserver.expect_request(f"/files/{name}").respond_with_data(data)
    httpserver.expect_request("/files/demo-1.0.0.tar.gz").respond_with_data("gone", status=404)
    new = row("1.0.1", [(name, httpserver.url_for(f"/files/{name}"), data)], previous="1.0.0")
    old = row("1.0.0", [("demo-1.0.0.tar.gz", httpserver.url_for("/files/demo-1.0.0.tar.gz"),
                         b"old")])
    with httpx.Client() as client:
        outcome = pipeline.process(new, old, Policy(), client, Cache(tmp_path / "cache"))
        httpserver.expect_request("/files/down.tar.gz").respond_with_data("busy", status=500)
        flaky = row("1.0.0", [("down.tar.gz", httpserver.url_for("/files/down.tar.gz"), b"x")])
        with pytest.raises(pipeline.Retry) as retry:  # an outage is waited out, not scanned past
            pipeline.process(new, flaky, Policy(), client, Cache(tmp_path / "cache"))
    assert not retry.value.gone
    assert outcome.previous is None
    assert outcome.error is not None and outcome.error.startswith(
        "previous release 1.0.0 unavailable (pypi:demo==1.0.0 file demo-1.0.0.tar.gz not found "
        "(HTTP 404")
    assert outcome.error.endswith("; scanned in full")
    assert [(f.rule, f.path) for f in outcome.findings if f.rule.startswith("secret.")] == [
        ("secret.anthropic-api-key", "demo-1.0.1.tar.gz!/demo-1.0.1/.env")]


def test_files_on_unexpected_hosts_are_refused_with_a_reason(httpserver: HTTPServer,
                                                            tmp_path: Path) -> None:
    name, data = sdist("demo", "1.0.0", {})
    httpserver.expect_request(f"/files/{name}").respond_with_data(data)
    release = row("1.0.0", [(name, httpserver.url_for(f"/files/{name}"), data)])
    here = f"{httpserver.host}:{httpserver.port}"
    with httpx.Client() as client:
        refused = pipeline.process(release, None, Policy(), client, Cache(tmp_path / "c"),
                                   hosts={"pypi.org", "files.pythonhosted.org"})
        allowed = pipeline.process(release, None, Policy(), client, Cache(tmp_path / "c"),
                                   hosts={here})
    assert (refused.findings, refused.files) == ((), 0)
    assert refused.error == (
        f"pypi:demo==1.0.0 file {name} is served from {here}, not the registry's host; not "
        f"downloaded (http://{here}/files/{name}). Add the host to download-hosts in watch.toml "
        "if it is expected.")
    assert allowed.error is None and allowed.files == 2
    assert len(httpserver.log) == 1  # the refused file was never requested
