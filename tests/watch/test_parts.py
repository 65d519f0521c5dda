"""The parts on their own: budgets and backoff, signatures, payloads, config, migrations."""

from __future__ import annotations

import email.utils
import hashlib
import hmac
import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from watchkit import write_config

from seawall.findings import Finding, Severity
from seawall.policy import ConfigError
from seawall.watch import alerts, db, net
from seawall.watch import config as watch_config
from seawall.watch.config import Politeness


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_budget_spaces_requests_per_host_and_honours_pauses() -> None:
    t = FakeTime()
    budget = net.Budget(Politeness(requests_per_second=4, burst=2), t.clock, t.sleep)
    for _ in range(6):
        budget.acquire("a.example")
    assert t.now == pytest.approx(101.0)  # 2 from the burst, then 4 at 4/s
    budget.acquire("b.example")  # another host has its own bucket
    assert t.now == pytest.approx(101.0)
    budget.pause("b.example", 30)
    assert budget.paused("b.example") == pytest.approx(30)
    budget.acquire("b.example")
    assert t.now == pytest.approx(131.0)
    assert sum(1 for s in t.slept if s == 1.0) == 30  # waits in short steps, so stops are quick


def test_backoff_grows_with_jitter_up_to_the_cap() -> None:
    for attempt, ceiling in [(0, 1.0), (1, 2.0), (3, 8.0), (10, 60.0)]:
        values = {net.backoff(attempt, 1.0, 60.0) for _ in range(50)}
        assert all(ceiling / 2 <= v <= ceiling for v in values)
        assert len(values) > 1  # jittered
    t = FakeTime()
    budget = net.Budget(Politeness(backoff_base=1.0, max_backoff=4.0), t.clock, t.sleep)
    delays = [budget.failed("h") for _ in range(5)]
    assert [d <= c for d, c in zip(delays, [1, 2, 4, 4, 4])] == [True] * 5
    budget.succeeded("h")
    assert budget.failed("h") <= 1.0


def test_retry_after_seconds_and_http_dates() -> None:
    assert net.retry_after("120") == 120.0
    assert net.retry_after(" 7 ") == 7.0
    assert net.retry_after("999999") == net.MAX_PAUSE
    assert net.retry_after(email.utils.formatdate(1030, usegmt=True), now=1000) == 30.0
    assert net.retry_after("soon") is None and net.retry_after(None) is None


def test_signature_matches_the_documented_recipe() -> None:
    body = b'{"a": 1}'
    header = alerts.sign(b"key", body, timestamp=1_800_000_000)
    t, v1 = (part.split("=", 1)[1] for part in header.split(","))
    assert t == "1800000000"
    assert v1 == hmac.new(b"key", b"1800000000." + body, hashlib.sha256).hexdigest()
    assert alerts.verify(b"key", header, body, now=1_800_000_100)
    assert not alerts.verify(b"key", header, body + b" ", now=1_800_000_100)
    assert not alerts.verify(b"other", header, body, now=1_800_000_100)
    assert not alerts.verify(b"key", header, body, now=1_800_001_000)  # replayed too late
    assert not alerts.verify(b"key", "v1=abc", body)


def test_payload_says_what_where_evidence_and_what_to_do() -> None:
    finding = Finding("secret.anthropic-api-key", Severity.CRITICAL, "package/.env",
                      "Anthropic API key sk-a…AAAA",
                      evidence={"redacted": "sk-a…AAAA", "hash": "sha256:0123456789abcdef"},
                      key="sha256:0123456789abcdef")
    release = {"ecosystem": "npm", "name": "@acme/x", "version": "2.0.1", "previous": "2.0.0"}
    doc = alerts.payload(release, finding, "https://user:pw@npm.acme.example/")
    assert doc["summary"] == ("CRITICAL secret.anthropic-api-key in npm:@acme/x@2.0.1 at "
                              "package/.env: Anthropic API key sk-a…AAAA")
    assert doc["release"]["registry"] == "https://***@npm.acme.example/"
    assert doc["finding"]["fingerprint"] == finding.fingerprint
    assert doc["actions"][0].startswith("Rotate this credential now (secret.anthropic-api-key, "
                                        "shown as sk-a…AAAA, sha256:0123456789abcdef)")
    assert doc["actions"][1].startswith("Deprecate @acme/x@2.0.1 (npm deprecate @acme/x@2.0.1")
    slack = alerts.slack(doc)
    assert slack["text"].startswith(":rotating_light: CRITICAL secret.anthropic-api-key")
    assert "Rotate this credential" in json.dumps(slack)


def test_config_reads_every_section_and_names_bad_keys(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = write_config(tmp_path / "watch.toml", "state/watch.db", """
interval = 30
index = "fp.idx"
contact = "security@acme.example"
[npm]
packages = ["@acme/cli"]
scopes = ["acme"]
[pypi]
projects = ["Acme_SDK"]
[policy]
fail-on = "high"
disable = ["file.editor-debris"]
[alerts]
min-severity = "critical"
[[alerts.webhook]]
url = "https://hooks.example/x"
secret-env = "HOOK_SECRET"
format = "slack"
""")
    cfg = watch_config.load(config)
    assert cfg.database == f"sqlite:///{(tmp_path / 'state/watch.db').resolve()}"
    assert cfg.watched() == [("npm", "@acme/cli"), ("pypi", "acme-sdk")]
    assert cfg.npm_scopes == ("@acme",)
    assert cfg.policy.fail_on == Severity.HIGH and cfg.policy.is_disabled("file.editor-debris")
    assert cfg.engine_settings().detectors["codecopy"] == {"index": str(tmp_path / "fp.idx")}
    assert cfg.min_severity == Severity.CRITICAL
    assert cfg.webhooks[0].format == "slack" and cfg.webhooks[0].name == "webhook-1"
    assert "security@acme.example" in cfg.user_agent and cfg.user_agent.startswith("seawall-watch/")
    assert watch_config.load(config, database="postgresql://u@h/db").database == (
        "postgresql+psycopg://u@h/db")
    assert cfg.hosts("pypi") == {"pypi.org", "files.pythonhosted.org"}
    assert cfg.hosts("npm") == {"registry.npmjs.org"}
    assert cfg.lease == 90.0  # three polls (at least 60 s)
    assert watch_config.from_dict({"interval": 5}, config).lease == 60.0
    assert watch_config.from_dict({"lease-seconds": 2.5}, config).lease == 2.5
    (tmp_path / "hosts.toml").write_text(
        "download-hosts = ['CDN.acme.example']\n[npm]\nregistry = 'https://u:p@npm.acme.example/'\n"
        "[[alerts.webhook]]\nurl-env = 'SLACK_HOOK_URL'\nformat = 'slack'\n")
    with pytest.raises(ConfigError, match=r"\$SLACK_HOOK_URL is not set"):
        watch_config.load(tmp_path / "hosts.toml")
    monkeypatch.setenv("SLACK_HOOK_URL", "https://hooks.slack.example/services/T/B/x")
    hosted = watch_config.load(tmp_path / "hosts.toml")
    assert hosted.hosts("npm") == {"npm.acme.example", "cdn.acme.example"}
    assert hosted.webhooks[0].url == "https://hooks.slack.example/services/T/B/x"
    for body, message in [
        ("intervall = 3", "unknown key"),
        ("[npm]\npackages = 'x'", "must be a list of strings"),
        ("[npm]\npackages = ['@acme/cli@1.0.0']", "without versions"),
        ("[npm]\npackages = ['<script>']", "not a valid npm package name"),
        ("[pypi]\nprojects = ['a b']", "not a valid PyPI project name"),
        ("[[alerts.webhook]]\nurl = 'https://h/x'\nsecret = 'x'", "environment variable"),
        ("[policy]\nfail-on = 'urgent'", "unknown severity"),
        ("backfill = 'some'", "backfill must be one of"),
        ("database = 'mysql://x'", "database must be"),
        ("lease-seconds = 0", "lease-seconds must be a number of seconds from 0.1 to 86,400"),
        ("lease-seconds = '60'", "lease-seconds must be a number of seconds from 0.1 to 86,400"),
        ("lease-seconds = inf", "lease-seconds must be a number of seconds from 0.1 to 86,400"),
        ("[[alerts.webhook]]\nurl = 'https://h/a'\n[[alerts.webhook]]\nurl = 'https://h/b'\n"
         "name = 'webhook-1'", "its own name"),
    ]:
        (tmp_path / "bad.toml").write_text(body)
        with pytest.raises(ConfigError, match=message):
            watch_config.load(tmp_path / "bad.toml")


def test_a_version_1_database_is_upgraded_with_a_free_lease(database: str) -> None:
    engine = db.connect(watch_config.database_url(database, Path(".")))
    try:
        with engine.begin() as conn:  # what seawall wrote before the lease existed
            db.schema.create(conn)
            conn.execute(db.schema.insert().values(id=1, version=1))
            db.MIGRATIONS[0](conn)
        assert db.migrate(engine) == 1
        with engine.connect() as conn:
            rows = [dict(r) for r in conn.execute(sa.select(db.watch_lease)).mappings()]
        assert rows == [{"id": 1, "token": "", "host": "", "pid": 0, "acquired": 0.0,
                         "renewed": 0.0, "expires": 0.0}]
    finally:
        engine.dispose()


def test_migrations_create_once_and_refuse_a_newer_schema(database: str) -> None:
    url = watch_config.database_url(database, Path("."))
    engine = db.connect(url)
    try:
        assert db.migrate(engine) == 0
        assert db.version(engine) == db.LATEST
        assert db.migrate(engine) == db.LATEST  # idempotent
        names = set(sa.inspect(engine).get_table_names())
        assert {"seawall_schema", "packages", "releases", "findings", "alerts", "cursors",
                "watch_lease"} <= names
        if engine.dialect.name == "sqlite":
            with engine.connect() as conn:
                assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        with engine.begin() as conn:
            conn.execute(db.schema.update().values(version=db.LATEST + 1))
        with pytest.raises(db.SchemaError, match="newer than this seawall"):
            db.migrate(engine)
    finally:
        engine.dispose()


def test_a_429_pauses_its_host_for_retry_after_and_names_the_client(httpserver) -> None:  # type: ignore[no-untyped-def]
    import time

    from seawall.fetch.http import FetchError

    httpserver.expect_ordered_request("/doc").respond_with_data(
        "slow down", status=429, headers={"Retry-After": "1"})
    httpserver.expect_ordered_request("/doc").respond_with_json({"ok": True})
    budget = net.Budget(Politeness())
    agent = "seawall-watch/test (+https://example.invalid; +sec@acme.example)"
    with net.new_client(Politeness(), agent, budget) as client:
        with pytest.raises(FetchError, match="HTTP 429"):
            net.get_document(client, httpserver.url_for("/doc"), accept="*/*", what="doc")
        host = net.host_of(httpserver.url_for("/doc"))
        assert 0.5 < budget.paused(host) <= 1.0
        started = time.monotonic()
        doc = net.get_document(client, httpserver.url_for("/doc"), accept="*/*", what="doc")
        assert time.monotonic() - started >= 0.5  # waited out the pause before asking again
    assert json.loads(doc.body) == {"ok": True}
    assert [r.headers["User-Agent"] for r, _ in httpserver.log] == [agent, agent]


def test_a_long_pause_or_a_stop_fails_the_request_instead_of_blocking() -> None:
    import threading

    t = FakeTime()
    stop = threading.Event()
    budget = net.Budget(Politeness(), t.clock, t.sleep, stop=stop)
    budget.pause("h", net.MAX_PAUSE)
    with pytest.raises(net.HostPaused, match="h is paused for another 3600 s"):
        budget.acquire("h")
    assert t.slept == []  # failed at once: the caller reschedules the work
    budget.acquire("other")
    stop.set()
    with pytest.raises(net.HostPaused, match="stopping"):
        budget.acquire("other")


def test_webhook_errors_never_show_its_url(httpserver) -> None:  # type: ignore[no-untyped-def]
    """A Slack incoming-webhook URL is the credential: errors are logged, stored and served."""
    import httpx

    httpserver.expect_request("/services/T0/B0/s3cr3tPathToken").respond_with_data("", status=500)
    finding = Finding("file.env", Severity.HIGH, "x/.env", "an env file")
    doc = alerts.payload({"ecosystem": "pypi", "name": "x", "version": "1"}, finding, "https://r/")
    hooks = [watch_config.Webhook(url=httpserver.url_for("/services/T0/B0/s3cr3tPathToken"),
                                  name="soc"),
             watch_config.Webhook(url=f"http://127.0.0.1:{_closed_port()}/services/s3cr3tPathToken",
                                  name="down"),
             watch_config.Webhook(url="http://[::1/services/s3cr3tPathToken", name="bad")]
    errors = []
    with httpx.Client(timeout=5) as client:
        for hook in hooks:
            with pytest.raises(alerts.DeliveryError) as caught:
                alerts.deliver(client, hook, doc, "id-1")
            errors.append(str(caught.value))
    assert errors[0] == "HTTP 500 from webhook soc"
    assert errors[1].startswith("ConnectError posting to webhook down: ")
    assert errors[2].startswith("InvalidURL posting to webhook bad: ")
    assert not any("s3cr3t" in e for e in errors), errors


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_document_dripping_in_is_cut_off_by_a_total_deadline() -> None:
    """httpx's timeouts are per read: a server sending a byte at a time would never trip them."""
    import socket
    import threading
    import time

    from seawall.fetch.http import FetchError

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    done = threading.Event()

    def drip() -> None:
        conn, _ = server.accept()
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
        while not done.is_set():
            try:
                conn.sendall(b"1\r\n \r\n")
            except OSError:
                break
            time.sleep(0.02)
        conn.close()

    threading.Thread(target=drip, daemon=True).start()
    polite = Politeness(timeout=0.1)
    outcome: list[BaseException] = []

    def fetch() -> None:
        with net.new_client(polite, "ua", net.Budget(polite)) as client:
            try:
                net.get_document(client, f"http://127.0.0.1:{server.getsockname()[1]}/d",
                                 accept="*/*", what="the doc")
            except FetchError as exc:
                outcome.append(exc)

    worker = threading.Thread(target=fetch, daemon=True)
    started = time.monotonic()
    worker.start()
    worker.join(timeout=10)
    done.set()
    server.close()
    assert not worker.is_alive(), "still reading after 10 s"
    assert time.monotonic() - started < 3
    assert len(outcome) == 1 and str(outcome[0]).startswith("the doc took longer than 1 s")


def test_serve_on_loopback_answers_only_loopback_host_names(tmp_path: Path) -> None:
    """DNS rebinding: a site the operator visits could otherwise read the status page."""
    import threading

    import httpx

    from seawall.watch.web import make_server

    engine = db.connect(f"sqlite:///{tmp_path / 'w.db'}")
    db.migrate(engine)
    server = make_server(engine, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    url = f"http://127.0.0.1:{port}/status.json"
    try:
        codes = [httpx.get(url, headers={"Host": host}, timeout=5).status_code
                 for host in (f"127.0.0.1:{port}", f"localhost:{port}",
                              f"attacker.example:{port}", "127.0.0.1")]
    finally:
        server.shutdown()
        server.server_close()
        engine.dispose()
    assert codes == [200, 200, 421, 421]
