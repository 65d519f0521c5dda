"""The watcher in process with a controlled clock: PyPI's 14-day window, hunting from the feed,
429 handling, and the alert outbox's retries. Both database backends."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import time
import zipfile
from pathlib import Path

import pytest
import sqlalchemy as sa
from pytest_httpserver import HTTPServer
from watchkit import (
    WEBHOOK_SECRET,
    FeedServer,
    Receiver,
    SimpleIndex,
    alert_rows,
    anthropic_key,
    release_states,
    sdist,
    write_config,
)

from seawall.watch import config as watch_config
from seawall.watch import db
from seawall.watch.service import DAY, Watcher

class Clock:
    """Days pass when a test says so; otherwise time creeps (10 ms a reading) so backoff ends."""

    def __init__(self) -> None:
        self.now = 1_790_000_000.0

    def __call__(self) -> float:
        self.now += 0.01
        return self.now


def wheel(name: str, version: str, extra: dict[str, bytes]) -> tuple[str, bytes]:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(f"{name}/__init__.py", "x = 1\n")
        for path, data in extra.items():
            zf.writestr(path, data)
    return f"{name}-{version}-py3-none-any.whl", buf.getvalue()


def make_watcher(tmp_path: Path, database: str, body: str, clock: Clock) -> Watcher:
    config = write_config(tmp_path / "watch.toml", database, body)
    watcher = Watcher(watch_config.load(config), out=io.StringIO(), clock=clock)
    watcher.tick = 0.001
    return watcher


def test_files_added_within_14_days_are_scanned_and_later_ones_are_not(
        tmp_path: Path, database: str, httpserver: HTTPServer, receiver: Receiver,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEAWALL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("SEAWALL_TEST_WEBHOOK_SECRET", WEBHOOK_SECRET)
    index = SimpleIndex(httpserver)
    index.files["demo"] = dict([sdist("demo", "1.0.0", {".env": b"DEBUG=1\n"})])
    clock = Clock()
    watcher = make_watcher(tmp_path, database, f"""
interval = 60
[pypi]
index = "{httpserver.url_for('/simple/')}"
projects = ["Demo"]
[[alerts.webhook]]
url = "{receiver.url}"
secret-env = "SEAWALL_TEST_WEBHOOK_SECRET"
""", clock)
    try:
        watcher.run(until_idle=True)
        assert release_states(watcher.engine) == {"demo@1.0.0": "done"}
        assert [(d["body"]["finding"]["rule"], d["body"]["finding"]["path"])
                for d in receiver.deliveries] == [("file.env", "demo-1.0.0.tar.gz!/demo-1.0.0/.env")]
        # Day 3: a wheel with a key joins the release. Scanned again; only what is new alerts.
        clock.now += 3 * DAY
        index.files["demo"].update([wheel("demo", "1.0.0", {".env": (
            f"ANTHROPIC_API_KEY={anthropic_key(3)}\n").encode()})])
        watcher.run(until_idle=True)
        assert sorted((d["body"]["finding"]["rule"], d["body"]["finding"]["path"])
                      for d in receiver.deliveries[1:]) == [
            ("file.env", "demo-1.0.0-py3-none-any.whl!/.env"),
            ("secret.anthropic-api-key", "demo-1.0.0-py3-none-any.whl!/.env")]
        # Day 15: PyPI no longer accepts files for it; a change is not re-scanned.
        clock.now += 12 * DAY
        index.files["demo"].update([wheel("demo", "1.0.0-1", {"id_rsa": b"x"})])
        watcher.run(until_idle=True)
        with watcher.engine.connect() as conn:
            files = json.loads(conn.execute(sa.select(db.releases.c.files)).scalar_one())
        assert len(files) == 2
        assert len(receiver.deliveries) == 3 and all(d["verified"] for d in receiver.deliveries)
        assert sorted((r["channel"], r["state"]) for r in alert_rows(watcher.engine)) == [
            ("log", "sent")] * 3 + [("webhook:webhook-1", "sent")] * 3
        log = watcher.out.getvalue()  # type: ignore[attr-defined]
        assert log.count("seawall-watch ALERT CRITICAL secret.anthropic-api-key") == 1
    finally:
        watcher.close()


def test_hunting_the_updates_feed_watches_foreign_projects_for_14_days(
        tmp_path: Path, database: str, httpserver: HTTPServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEAWALL_CACHE_DIR", str(tmp_path / "cache"))
    index = SimpleIndex(httpserver)
    index.files["stranger"] = dict([sdist("stranger", "0.1", {})])
    feed = FeedServer()
    clock = Clock()
    (tmp_path / "fingerprints.idx").write_bytes(b"")
    watcher = make_watcher(tmp_path, database, f"""
interval = 60
index = "fingerprints.idx"
[pypi]
index = "{httpserver.url_for('/simple/')}"
updates = "{feed.url}/rss/updates.xml"
hunt-all = true
""", clock)
    assert watcher.policy.detectors["codecopy"] == {"index": str(tmp_path / "fingerprints.idx")}
    # The index file here is a placeholder: scan without the codecopy detector.
    watcher.policy = dataclasses.replace(watcher.policy, detectors={})
    try:
        feed.rss_items = [("Stranger", "0.1", clock.now - 10)]
        watcher.run(until_idle=True)
        assert release_states(watcher.engine) == {"stranger@0.1": "done"}
        polls = len([r for r in httpserver.log if r[0].path == "/simple/stranger/"])
        clock.now += 2 * DAY  # still inside the window: polled every interval
        watcher.run(until_idle=True)
        clock.now += 13 * DAY  # past it: dropped from the rotation
        watcher.run(until_idle=True)
        after = len([r for r in httpserver.log if r[0].path == "/simple/stranger/"])
        assert after == polls + 1
    finally:
        watcher.close()
        feed.close()


def test_429_pauses_the_host_and_the_alert_outbox_retries(
        tmp_path: Path, database: str, httpserver: HTTPServer, receiver: Receiver,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEAWALL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("SEAWALL_TEST_WEBHOOK_SECRET", WEBHOOK_SECRET)
    index = SimpleIndex(httpserver)
    index.files["demo"] = dict([sdist("demo", "1.0.0", {".env": (
        f"ANTHROPIC_API_KEY={anthropic_key(9)}\n").encode()})])
    index.status = [429, 503]
    receiver.failing = 2
    clock = Clock()
    watcher = make_watcher(tmp_path, database, f"""
interval = 60
[pypi]
index = "{httpserver.url_for('/simple/')}"
projects = ["demo"]
[politeness]
backoff-base = 0.01
max-backoff = 0.05
[alerts]
stdout = false
min-severity = "critical"
[[alerts.webhook]]
url = "{receiver.url}"
secret-env = "SEAWALL_TEST_WEBHOOK_SECRET"
""", clock)
    try:
        for _ in range(4):
            watcher.cycle()
            clock.now += 0.1
            time.sleep(0.06)  # the host's own pause (max-backoff) runs on the real clock
        watcher.run(until_idle=True)
    finally:
        watcher.close()
    rows = alert_rows(watcher.engine)
    assert [(r["state"], r["attempts"]) for r in rows] == [("sent", 3)]
    assert len(receiver.deliveries) == 1 and receiver.deliveries[0]["verified"]
    with watcher.engine.connect() as conn:
        row = conn.execute(sa.select(db.packages.c.failures, db.packages.c.last_error)).one()
    assert tuple(row) == (0, None)
    statuses = [r[1].status_code for r in httpserver.log if r[0].path == "/simple/demo/"]
    assert statuses[:3] == [429, 503, 200]


def test_hunting_the_npm_feed_with_an_index_alerts_on_copied_private_code(
        tmp_path: Path, database: str, httpserver: HTTPServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("seawall.hunt")
    import base64
    import subprocess
    import sys

    try:
        from seawall.hunt import require

        require()
    except Exception as exc:  # noqa: BLE001 - the hunt extra is optional for the watcher
        pytest.skip(f"seawall[hunt] is not installed: {exc}")
    monkeypatch.setenv("SEAWALL_CACHE_DIR", str(tmp_path / "cache"))
    private = tmp_path / "private" / "src"
    private.mkdir(parents=True)
    source = "".join(
        f"export function riskScore{i}(input: number, weight: number): number {{\n"
        f"  const adjusted = input * {i * 37 % 1000} + weight / {i * 53 % 997 + 1};\n"
        f"  if (adjusted > {i * 91}) {{ return Math.floor(adjusted - {i}); }}\n"
        f"  return adjusted + {i};\n}}\n" for i in range(60))
    (private / "risk.ts").write_text(source)
    built = subprocess.run([sys.executable, "-m", "seawall", "index", "add", "--index",
                            str(tmp_path / "fp.idx"), "--label", "acme", str(private.parent)],
                           capture_output=True, text=True, timeout=120)
    assert built.returncode == 0, built.stderr
    # Someone else's package ships our code, transpiled (types stripped).
    tgz = _npm_tarball({"package/package.json": b'{"name":"stranger-pkg","version":"3.0.0"}',
                        "package/index.js": source.replace(": number", "").encode()})
    httpserver.expect_request("/stranger-pkg").respond_with_json({
        "name": "stranger-pkg", "dist-tags": {"latest": "3.0.0"}, "versions": {"3.0.0": {"dist": {
            "tarball": httpserver.url_for("/stranger-pkg/-/stranger-pkg-3.0.0.tgz"),
            "integrity": "sha512-" + base64.b64encode(hashlib.sha512(tgz).digest()).decode()}}}})
    httpserver.expect_request("/stranger-pkg/-/stranger-pkg-3.0.0.tgz").respond_with_data(tgz)
    feed = FeedServer()
    feed.changes = ["stranger-pkg"]
    watcher = make_watcher(tmp_path, database, f"""
interval = 60
index = "fp.idx"
[npm]
registry = "{httpserver.url_for('/')}"
changes = "{feed.url}/registry/_changes"
changes-since = "0"
hunt-all = true
""", Clock())
    try:
        watcher.run(until_idle=True)
        assert release_states(watcher.engine) == {"stranger-pkg@3.0.0": "done"}
        summaries = sorted(r["summary"] for r in alert_rows(watcher.engine))
    finally:
        watcher.close()
        feed.close()
    assert summaries == [
        "HIGH leak.code-copy in npm:stranger-pkg@3.0.0 at package/index.js: contains "
        "src/risk.ts (acme): transpiled, 100% of the original",
        "HIGH leak.code-copy-artifact in npm:stranger-pkg@3.0.0: artifact contains 1 "
        "private original file(s) in 1 file(s)",
    ]


def _npm_tarball(files: dict[str, bytes]) -> bytes:
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for path, data in files.items():
            info = tarfile.TarInfo(path)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()
