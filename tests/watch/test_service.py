"""The watcher in process with a controlled clock: PyPI's 14-day window, hunting from the feed,
429 handling, and the alert outbox's retries. Both database backends."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import time
import zipfile
from collections.abc import Callable, Iterator
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
    targz,
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


@pytest.fixture(autouse=True)
def _environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEAWALL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("SEAWALL_TEST_WEBHOOK_SECRET", WEBHOOK_SECRET)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def index(httpserver: HTTPServer) -> SimpleIndex:
    return SimpleIndex(httpserver)


@pytest.fixture
def make_watcher(tmp_path: Path, clock: Clock) -> Iterator[Callable[[str, str], Watcher]]:
    """``make_watcher(database, watch.toml body)``: in process, on ``clock``; closed after."""
    made: list[Watcher] = []

    def make(database: str, body: str) -> Watcher:
        config = write_config(tmp_path / "watch.toml", database, body)
        watcher = Watcher(watch_config.load(config), out=io.StringIO(), clock=clock)
        watcher.tick = 0.001
        made.append(watcher)
        return watcher

    yield make
    for watcher in made:
        watcher.close()


def test_files_added_within_14_days_are_scanned_and_later_ones_are_not(
        database: str, httpserver: HTTPServer, receiver: Receiver,
        make_watcher: Callable[[str, str], Watcher], clock: Clock, index: SimpleIndex) -> None:
    index.files["demo"] = dict([sdist("demo", "1.0.0", {".env": b"DEBUG=1\n"})])
    watcher = make_watcher(database, f"""
interval = 60
[pypi]
index = "{httpserver.url_for('/simple/')}"
projects = ["Demo"]
[[alerts.webhook]]
url = "{receiver.url}"
secret-env = "SEAWALL_TEST_WEBHOOK_SECRET"
""")
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


def test_hunting_the_updates_feed_watches_foreign_projects_for_14_days(
        tmp_path: Path, database: str, httpserver: HTTPServer,
        make_watcher: Callable[[str, str], Watcher], clock: Clock, index: SimpleIndex,
        feeds: FeedServer) -> None:
    index.files["stranger"] = dict([sdist("stranger", "0.1", {})])
    (tmp_path / "fingerprints.idx").write_bytes(b"")
    watcher = make_watcher(database, f"""
interval = 60
index = "fingerprints.idx"
[pypi]
index = "{httpserver.url_for('/simple/')}"
updates = "{feeds.url}/rss/updates.xml"
hunt-all = true
""")
    assert watcher.policy.detectors["codecopy"] == {"index": str(tmp_path / "fingerprints.idx")}
    # The index file here is a placeholder: scan without the codecopy detector.
    watcher.policy = dataclasses.replace(watcher.policy, detectors={})
    feeds.rss_items = [("Stranger", "0.1", clock.now - 10)]
    watcher.run(until_idle=True)
    assert release_states(watcher.engine) == {"stranger@0.1": "done"}
    polls = len([r for r in httpserver.log if r[0].path == "/simple/stranger/"])
    clock.now += 2 * DAY  # still inside the window: polled every interval
    watcher.run(until_idle=True)
    clock.now += 13 * DAY  # past it: dropped from the rotation
    watcher.run(until_idle=True)
    after = len([r for r in httpserver.log if r[0].path == "/simple/stranger/"])
    assert after == polls + 1


def test_429_pauses_the_host_and_the_alert_outbox_retries(
        database: str, httpserver: HTTPServer, receiver: Receiver,
        make_watcher: Callable[[str, str], Watcher], clock: Clock, index: SimpleIndex) -> None:
    index.files["demo"] = dict([sdist("demo", "1.0.0", {".env": (
        f"ANTHROPIC_API_KEY={anthropic_key(9)}\n").encode()})])
    index.status = [429, 503]
    receiver.failing = 2
    watcher = make_watcher(database, f"""
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
""")
    watcher.setup()
    for _ in range(200):  # the daemon's way (``--once`` would leave the alert for later)
        watcher.cycle()
        if watcher.idle():
            break
        clock.now += 0.1
        time.sleep(0.06)  # the host's own pause (max-backoff) runs on the real clock
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
        make_watcher: Callable[[str, str], Watcher], feeds: FeedServer) -> None:
    pytest.importorskip("seawall.hunt")
    import base64
    import subprocess
    import sys

    try:
        from seawall.hunt import require

        require()
    except Exception as exc:  # noqa: BLE001 - the hunt extra is optional for the watcher
        pytest.skip(f"seawall[hunt] is not installed: {exc}")
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
    tgz = targz({"package/package.json": b'{"name":"stranger-pkg","version":"3.0.0"}',
                        "package/index.js": source.replace(": number", "").encode()})
    httpserver.expect_request("/stranger-pkg").respond_with_json({
        "name": "stranger-pkg", "dist-tags": {"latest": "3.0.0"}, "versions": {"3.0.0": {"dist": {
            "tarball": httpserver.url_for("/stranger-pkg/-/stranger-pkg-3.0.0.tgz"),
            "integrity": "sha512-" + base64.b64encode(hashlib.sha512(tgz).digest()).decode()}}}})
    httpserver.expect_request("/stranger-pkg/-/stranger-pkg-3.0.0.tgz").respond_with_data(tgz)
    feeds.changes = ["stranger-pkg"]
    watcher = make_watcher(database, f"""
interval = 60
index = "fp.idx"
[npm]
registry = "{httpserver.url_for('/')}"
changes = "{feeds.url}/registry/_changes"
changes-since = "0"
hunt-all = true
""")
    watcher.run(until_idle=True)
    assert release_states(watcher.engine) == {"stranger-pkg@3.0.0": "done"}
    summaries = sorted(r["summary"] for r in alert_rows(watcher.engine))
    assert summaries == [
        "HIGH leak.code-copy in npm:stranger-pkg@3.0.0 at package/index.js: contains "
        "src/risk.ts (acme): transpiled, 100% of the original",
        "HIGH leak.code-copy-artifact in npm:stranger-pkg@3.0.0: artifact contains 1 "
        "private original file(s) in 1 file(s)",
    ]



def test_a_receiver_asking_for_an_hour_pause_does_not_stall_the_watcher(
        tmp_path: Path, httpserver: HTTPServer, receiver: Receiver,
        make_watcher: Callable[[str, str], Watcher], clock: Clock, index: SimpleIndex) -> None:
    """Its alerts wait (without spending attempts); the loop, polls and the log channel go on."""
    import threading

    index.files["demo"] = dict([sdist("demo", "1.0.0", {
        ".env": f"ANTHROPIC_API_KEY={anthropic_key(21)}\n".encode(),
        "conf/.env": f"ANTHROPIC_API_KEY={anthropic_key(22)}\n".encode()})])
    receiver.failing, receiver.retry_after = 5, "3600"
    watcher = make_watcher(str(tmp_path / "w.db"), f"""
interval = 60
[pypi]
index = "{httpserver.url_for('/simple/')}"
projects = ["demo"]
[alerts]
min-severity = "critical"
[[alerts.webhook]]
url = "{receiver.url}"
secret-env = "SEAWALL_TEST_WEBHOOK_SECRET"
""")
    worker = threading.Thread(target=lambda: [watcher.cycle() for _ in range(3)], daemon=True)
    try:
        watcher.setup()
        worker.start()
        worker.join(timeout=30)
        assert not worker.is_alive(), "the loop is blocked on the receiver's pause"
        rows = alert_rows(watcher.engine)
    finally:
        watcher.stopping.set()
    assert receiver.requests == 1, rows  # asked once, then left alone for its Retry-After
    hooks = [r for r in rows if r["channel"] == "webhook:webhook-1"]
    assert [(r["state"], r["attempts"], r["last_error"]) for r in hooks] == [
        ("pending", 1, "DeliveryError: HTTP 503 from webhook webhook-1"), ("pending", 0, None)]
    assert all(r["next_attempt"] > clock.now + 3000 for r in hooks)
    assert [r["state"] for r in rows if r["channel"] == "log"] == ["sent", "sent"]


def test_a_file_the_registry_no_longer_has_is_given_up_after_a_few_tries(
        tmp_path: Path, httpserver: HTTPServer, make_watcher: Callable[[str, str], Watcher]) -> None:
    from seawall.watch.service import GIVE_UP_ATTEMPTS

    page = {"meta": {"api-version": "1.1"}, "name": "gone", "files": [
        {"filename": "gone-1.0.tar.gz", "url": "/files/gone-1.0.tar.gz",
         "hashes": {"sha256": hashlib.sha256(b"x").hexdigest()}}]}
    httpserver.expect_request("/simple/gone/").respond_with_data(
        json.dumps(page), headers={"Content-Type": "application/vnd.pypi.simple.v1+json"})
    httpserver.expect_request("/files/gone-1.0.tar.gz").respond_with_data("no", status=404)
    watcher = make_watcher(str(tmp_path / "w.db"), f"""
interval = 60
[pypi]
index = "{httpserver.url_for('/simple/')}"
projects = ["gone"]
[politeness]
backoff-base = 0.001
max-backoff = 0.01
""")
    watcher.run(until_idle=True, max_seconds=60)  # --once must end
    row = watcher.store.release("pypi", "gone", "1.0")
    assert row is not None and row["state"] == "done"
    assert row["error"].startswith("not downloadable: pypi:gone==1.0 file gone-1.0.tar.gz not "
                                   "found (HTTP 404 from http://")
    tries = [r for r, _ in httpserver.log if r.path == "/files/gone-1.0.tar.gz"]
    assert len(tries) == GIVE_UP_ATTEMPTS


def test_an_internal_error_is_retried_a_bounded_number_of_times(
        tmp_path: Path, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch,
        make_watcher: Callable[[str, str], Watcher], index: SimpleIndex) -> None:
    from seawall.watch import service

    index.files["demo"] = dict([sdist("demo", "1.0.0", {})])
    calls: list[str] = []

    def broken(row, *_args):  # type: ignore[no-untyped-def]
        calls.append(row["version"])
        raise KeyError("a bug")

    monkeypatch.setattr(service, "process", broken)
    watcher = make_watcher(str(tmp_path / "w.db"), f"""
interval = 60
[pypi]
index = "{httpserver.url_for('/simple/')}"
projects = ["demo"]
[politeness]
max-backoff = 0.01
""")
    watcher.run(until_idle=True, max_seconds=60)
    row = watcher.store.release("pypi", "demo", "1.0.0")
    assert calls == ["1.0.0"] * service.GIVE_UP_ATTEMPTS
    assert row is not None and (row["state"], row["error"]) == (
        "done", "internal error: KeyError: 'a bug'")


def test_a_hanging_receiver_costs_one_timeout_per_pass_not_one_per_alert(
        tmp_path: Path, httpserver: HTTPServer, make_watcher: Callable[[str, str], Watcher],
        index: SimpleIndex) -> None:
    import socket
    import threading

    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen()
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                held.append(hole.accept()[0])  # read nothing, answer nothing
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    index.files["demo"] = dict([sdist("demo", "1.0.0", {
        f"k{n}/.env": f"ANTHROPIC_API_KEY={anthropic_key(30 + n)}\n".encode() for n in range(4)})])
    watcher = make_watcher(str(tmp_path / "w.db"), f"""
interval = 60
[pypi]
index = "{httpserver.url_for('/simple/')}"
projects = ["demo"]
[politeness]
timeout = 0.3
[alerts]
stdout = false
min-severity = "critical"
[[alerts.webhook]]
url = "http://127.0.0.1:{hole.getsockname()[1]}/hook"
""")
    try:
        watcher.setup()
        watcher.cycle()
        rows = alert_rows(watcher.engine)
    finally:
        hole.close()
        for conn in held:
            conn.close()
    assert len(held) == 1
    assert sorted((r["state"], r["attempts"], r["last_error"]) for r in rows) == [
        ("pending", 0, None)] * 3 + [
        ("pending", 1, "DeliveryError: ReadTimeout posting to webhook webhook-1: timed out")]
    assert len({r["next_attempt"] for r in rows}) == 1  # the channel waits as one


def test_a_database_outage_pauses_the_loop_instead_of_ending_it(
        tmp_path: Path, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture, make_watcher: Callable[[str, str], Watcher],
        index: SimpleIndex) -> None:
    index.files["demo"] = dict([sdist("demo", "1.0.0", {})])
    watcher = make_watcher(str(tmp_path / "w.db"), f"""
interval = 60
[pypi]
index = "{httpserver.url_for('/simple/')}"
projects = ["demo"]
[politeness]
backoff-base = 0.01
""")
    real, failures = watcher.store.due_packages, [2]

    def flaky(*args, **kwargs):  # type: ignore[no-untyped-def]
        if failures[0]:
            failures[0] -= 1
            raise sa.exc.OperationalError("SELECT 1", {}, Exception("server closed the connection"))
        return real(*args, **kwargs)

    monkeypatch.setattr(watcher.store, "due_packages", flaky)
    watcher.run(until_idle=True, max_seconds=60)
    states = release_states(watcher.engine)
    assert states == {"demo@1.0.0": "done"}
    assert [r.getMessage().split(";")[0] for r in caplog.records if r.levelname == "ERROR"] == [
        "the database is unavailable (Exception: server closed the connection)"] * 2


def test_a_feed_announced_npm_package_not_yet_served_is_asked_again(
        tmp_path: Path, httpserver: HTTPServer, make_watcher: Callable[[str, str], Watcher],
        clock: Clock, feeds: FeedServer) -> None:
    import base64

    tgz = targz({"package/package.json": b'{"name":"late","version":"1.0.0"}'})
    answers = iter([404])

    def packument(_request):  # type: ignore[no-untyped-def]
        from werkzeug import Response

        if next(answers, 200) == 404:  # the replica has not caught up with the feed yet
            return Response("{}", status=404)
        return Response(json.dumps({"name": "late", "versions": {"1.0.0": {"dist": {
            "tarball": httpserver.url_for("/late/-/late-1.0.0.tgz"),
            "integrity": "sha512-" + base64.b64encode(hashlib.sha512(tgz).digest()).decode()}}}}),
            content_type="application/json")

    httpserver.expect_request("/late").respond_with_handler(packument)
    httpserver.expect_request("/late/-/late-1.0.0.tgz").respond_with_data(tgz)
    feeds.changes = ["late"]
    (tmp_path / "fp.idx").write_bytes(b"")
    watcher = make_watcher(str(tmp_path / "w.db"), f"""
interval = 60
index = "fp.idx"
[npm]
registry = "{httpserver.url_for('/')}"
changes = "{feeds.url}/registry/_changes"
changes-since = "0"
hunt-all = true
""")
    watcher.policy = dataclasses.replace(watcher.policy, detectors={})  # placeholder index
    watcher.run(until_idle=True)
    assert release_states(watcher.engine) == {}
    clock.now += 61
    watcher.run(until_idle=True)
    states = release_states(watcher.engine)
    assert states == {"late@1.0.0": "done"}


def test_first_sight_of_a_scope_package_scans_what_was_just_published(
        tmp_path: Path, httpserver: HTTPServer, make_watcher: Callable[[str, str], Watcher],
        clock: Clock, feeds: FeedServer) -> None:
    """The feed names a package of the scope the watcher never saw; the release it announced
    is a fix to an older line, not ``latest``: it is scanned all the same."""
    import base64
    from datetime import datetime, timezone

    versions, times = {}, {}
    for version, age in (("1.0.0", 400 * DAY), ("2.0.0", 90 * DAY), ("1.0.1", 120.0)):
        extra = {"package/.env": f"ANTHROPIC_API_KEY={anthropic_key(40)}\n".encode()
                 } if version == "1.0.1" else {}
        tgz = targz({"package/package.json": b'{"name":"@acme/old"}', **extra})
        path = f"/@acme/old/-/old-{version}.tgz"
        httpserver.expect_request(path).respond_with_data(tgz)
        versions[version] = {"dist": {"tarball": httpserver.url_for(path), "integrity":
                                      "sha512-" + base64.b64encode(hashlib.sha512(tgz).digest())
                                      .decode()}}
        times[version] = datetime.fromtimestamp(clock.now - age, timezone.utc).isoformat()
    httpserver.expect_request("/@acme/old").respond_with_json(
        {"name": "@acme/old", "dist-tags": {"latest": "2.0.0"}, "versions": versions,
         "time": {**times, "created": times["1.0.0"]}})
    feeds.changes = ["@acme/old"]
    watcher = make_watcher(str(tmp_path / "w.db"), f"""
interval = 60
[npm]
registry = "{httpserver.url_for('/')}"
scopes = ["@acme"]
changes = "{feeds.url}/registry/_changes"
changes-since = "0"
[alerts]
min-severity = "critical"
""")
    watcher.run(until_idle=True)
    states = release_states(watcher.engine)
    summaries = [r["summary"] for r in alert_rows(watcher.engine)]
    assert states == {"@acme/old@1.0.0": "skipped", "@acme/old@2.0.0": "done",
                      "@acme/old@1.0.1": "done"}
    key = anthropic_key(40)
    assert summaries == ["CRITICAL secret.anthropic-api-key in npm:@acme/old@1.0.1 at "
                         f"package/.env: Anthropic API key {key[:4]}…{key[-4:]}"]
