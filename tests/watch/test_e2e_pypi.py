"""End to end on a real local PyPI (pypiserver): clean release, leaky release, one signed alert.

Runs on SQLite and on PostgreSQL. The watcher is the real ``seawall watch`` process.
"""

from __future__ import annotations

import time
from pathlib import Path

from watchkit import PyPIServer, Receiver, start_watcher, stop_watcher, wait_until
from watchkit import alert_rows, anthropic_key, engine_for, release_states, sdist, write_config

INTERVAL = 1.0
NAME = "leaky-demo"


def config_for(tmp_path: Path, database: str, server: PyPIServer, receiver: Receiver) -> Path:
    return write_config(tmp_path / "watch.toml", database, f"""
interval = {INTERVAL}
backfill = "latest"
[pypi]
index = "{server.url}/simple/"
projects = ["{NAME}"]
[politeness]
backoff-base = 0.2
max-backoff = 1.0
requests-per-second = 50
[alerts]
min-severity = "critical"
[[alerts.webhook]]
url = "{receiver.url}"
secret-env = "SEAWALL_TEST_WEBHOOK_SECRET"
""")


def test_clean_then_leaky_release_gives_one_signed_alert(
        tmp_path: Path, database: str, pypi_server: PyPIServer, receiver: Receiver) -> None:
    key = anthropic_key(6)
    pypi_server.upload(NAME, "1.0.0", *sdist(NAME, "1.0.0", {"README.md": b"# demo\n"}))
    config = config_for(tmp_path, database, pypi_server, receiver)
    proc = start_watcher(config, tmp_path)
    engine = engine_for(config)
    try:
        wait_until(lambda: release_states(engine).get(f"{NAME}@1.0.0") == "done", 60,
                   "the clean release to be scanned")
        assert receiver.deliveries == []

        pypi_server.upload(NAME, "1.0.1", *sdist(NAME, "1.0.1", {
            ".env": f"ANTHROPIC_API_KEY={key}\n".encode()}))
        published = time.monotonic()
        wait_until(lambda: receiver.deliveries, 30, "the alert")
        latency = receiver.deliveries[0]["at"] - published
        assert latency <= 2 * INTERVAL + 1.0, latency  # poll interval, then scan and send

        time.sleep(2 * INTERVAL)  # later polls must not repeat it
        assert release_states(engine) == {f"{NAME}@1.0.0": "done", f"{NAME}@1.0.1": "done"}
    finally:
        stop_watcher(proc)
    assert len(receiver.deliveries) == 1
    delivery = receiver.deliveries[0]
    assert delivery["verified"], "the HMAC signature did not verify"
    body = delivery["body"]
    assert body["type"] == "seawall.leak"
    assert body["release"]["spec"] == f"pypi:{NAME}==1.0.1"
    assert body["release"]["previous"] == "1.0.0"
    assert body["finding"]["rule"] == "secret.anthropic-api-key"
    assert body["finding"]["severity"] == "critical"
    assert body["finding"]["path"] == "leaky_demo-1.0.1.tar.gz!/leaky_demo-1.0.1/.env"
    assert body["finding"]["evidence"]["redacted"] == f"{key[:4]}…{key[-4:]}"
    assert body["id"] == delivery["id"]
    assert any(a.startswith("Rotate this credential now") for a in body["actions"])
    assert any(a.startswith(f"Yank {NAME} 1.0.1") for a in body["actions"])
    log = (tmp_path / "watcher.log").read_text()
    assert "seawall-watch ALERT CRITICAL secret.anthropic-api-key in pypi:leaky-demo==1.0.1" in log
    # The secret itself is nowhere: not in the alert, the log, or the stored state.
    assert key not in str(body) and key not in log
    rows = alert_rows(engine)
    assert sorted((r["channel"], r["state"]) for r in rows) == [("log", "sent"),
                                                                ("webhook:webhook-1", "sent")]
    assert all(key not in r["payload"] for r in rows)
    engine.dispose()
