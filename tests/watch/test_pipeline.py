"""One release through the pipeline: concurrent scans, a vanished previous, foreign hosts."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from pytest_httpserver import HTTPServer
from builders import source_map, zip_bytes
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


def leaky_release(n: int) -> dict[str, bytes]:
    """Release ``n``: a key, a source map with its sources (one holds a key), an ``.npmrc`` in
    a nested zip, and enough padding (keyword-dense) that scans of several releases overlap in time."""
    padding = b"".join(b"password = secret_key + token  # api_key aws %d\n" % i
                       for i in range(3000 + 500 * n))
    return {
        ".env": f"ANTHROPIC_API_KEY={anthropic_key(60 + n)}\n".encode(),
        "dist/app.js.map": source_map({f"src/module{n}.ts": f"export const n = {n};\n",
                                       "src/config.ts": f"const key = '{anthropic_key(n)}';\n"}),
        "vendor/bundle.zip": zip_bytes({"inner/.npmrc": b"//npm.acme.example/:_authToken="
                                        + anthropic_key(90 + n)[13:49].encode() + b"\n",
                                        f"inner/lib{n}.js": b"module.exports = 1;\n"}),
        "pad.py": padding,
    }


@pytest.mark.parametrize("engine", ["hyperscan", "python"])
def test_concurrent_scans_and_diffs_give_exactly_the_serial_findings(
        engine: str, httpserver: HTTPServer, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Scans run at once (no lock: the first two meet at a barrier, which a serialising
    lock would break) and every release, diffed against the one before, yields what the
    same scans give one at a time: findings, evidence, lines, errors, file counts."""
    if engine not in pipeline_engines():
        pytest.skip(f"the {engine} engine is not installed")
    rows = []
    for n in range(6):
        name, data = sdist("demo", f"1.0.{n}", leaky_release(n))
        httpserver.expect_request(f"/files/{name}").respond_with_data(data)
        rows.append(row(f"1.0.{n}", [(name, httpserver.url_for(f"/files/{name}"), data)],
                        previous=f"1.0.{n - 1}" if n else None))
    policy = dataclasses.replace(Policy(), detectors={"secret": {"engine": engine}})
    cache = Cache(tmp_path / "cache")

    def one(client: httpx.Client, n: int) -> tuple[object, ...]:
        outcome = pipeline.process(rows[n], rows[n - 1] if n else None, policy, client, cache)
        return (outcome.error, outcome.files, outcome.previous, [
            (f.rule, f.severity, f.path, f.line, f.fingerprint, json.dumps(dict(f.evidence),
                                                                             sort_keys=True))
            for f in outcome.findings])

    with httpx.Client() as client:
        serial = [one(client, n) for n in range(6)]
        meeting = threading.Barrier(2, timeout=30)
        calls = {"scan": 0, "diff": 0}
        count = threading.Lock()

        def meet(real):  # type: ignore[no-untyped-def]
            def wrapped(*args, **kwargs):  # type: ignore[no-untyped-def]
                with count:
                    calls[real.__name__.replace("scan_targets", "scan")] += 1
                    first_two = sum(calls.values()) <= 2
                if first_two:
                    meeting.wait()  # BrokenBarrierError if scans were serialised
                return real(*args, **kwargs)
            return wrapped

        monkeypatch.setattr(pipeline, "scan_targets", meet(pipeline.scan_targets))
        monkeypatch.setattr(pipeline, "diff", meet(pipeline.diff))
        with ThreadPoolExecutor(4) as pool:
            concurrent = list(pool.map(lambda n: one(client, n), range(6)))
    assert calls == {"scan": 1, "diff": 5}
    assert concurrent == serial
    found = [sorted((f[0], f[2].split("!/", 1)[1].split("/", 1)[1]) for f in outcome[3])
             for outcome in serial]
    assert found[0] == [("file.env", ".env"), ("file.npmrc", "vendor/bundle.zip!/inner/.npmrc"),
                        ("secret.anthropic-api-key", ".env"),
                        ("secret.anthropic-api-key", "dist/app.js.map!/src/config.ts"),
                        ("sourcemap.embedded-source", "dist/app.js.map")]
    # Diffed against the release before, only each release's two new keys are new.
    assert all(f == [("secret.anthropic-api-key", ".env"),
                     ("secret.anthropic-api-key", "dist/app.js.map!/src/config.ts")]
               for f in found[1:]), found


def pipeline_engines() -> tuple[str, ...]:
    from seawall.secrets.matcher import available

    return available()


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
