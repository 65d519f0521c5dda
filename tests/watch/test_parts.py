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


def test_config_reads_every_section_and_names_bad_keys(tmp_path: Path) -> None:
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
        ("[[alerts.webhook]]\nurl = 'https://h/a'\n[[alerts.webhook]]\nurl = 'https://h/b'\n"
         "name = 'webhook-1'", "its own name"),
    ]:
        (tmp_path / "bad.toml").write_text(body)
        with pytest.raises(ConfigError, match=message):
            watch_config.load(tmp_path / "bad.toml")


def test_migrations_create_once_and_refuse_a_newer_schema(database: str) -> None:
    url = watch_config.database_url(database, Path("."))
    engine = db.connect(url)
    try:
        assert db.migrate(engine) == 0
        assert db.version(engine) == db.LATEST
        assert db.migrate(engine) == db.LATEST  # idempotent
        names = set(sa.inspect(engine).get_table_names())
        assert {"seawall_schema", "packages", "releases", "findings", "alerts", "cursors"} <= names
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
