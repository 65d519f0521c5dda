"""``seawall watch --once`` does not wait on a dead webhook: one quick retry, then the alert
stays pending for the next run, which delivers it exactly once. Both database backends."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from pytest_httpserver import HTTPServer
from watchkit import (
    Receiver,
    SimpleIndex,
    alert_rows,
    anthropic_key,
    engine_for,
    sdist,
    watcher_env,
    write_config,
)


def once(config: Path, tmp_path: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    run = subprocess.run([sys.executable, "-m", "seawall", "watch", "--config", str(config),
                          "--once"], capture_output=True, text=True, timeout=300,
                         env=watcher_env(tmp_path))
    return run, time.monotonic() - started


def test_once_leaves_alerts_for_a_failing_webhook_pending_for_the_next_run(
        tmp_path: Path, database: str, httpserver: HTTPServer, receiver: Receiver) -> None:
    index = SimpleIndex(httpserver)
    index.files["demo"] = dict([sdist("demo", "1.0.0", {
        ".env": f"ANTHROPIC_API_KEY={anthropic_key(50)}\n".encode()})])
    receiver.failing, receiver.fail_status = 1_000_000, 500  # always 500
    config = write_config(tmp_path / "watch.toml", database, f"""
interval = 60
[pypi]
index = "{httpserver.url_for('/simple/')}"
projects = ["demo"]
[alerts]
min-severity = "critical"
max-attempts = 30
[[alerts.webhook]]
url = "{receiver.url}"
secret-env = "SEAWALL_TEST_WEBHOOK_SECRET"
name = "soc"
""")
    engine = engine_for(config)
    try:
        run, seconds = once(config, tmp_path)
        assert run.returncode == 0, run.stderr
        # Start-up and the scan take a second or two; 30 attempts with backoff would take hours.
        assert seconds < 15, seconds
        assert receiver.requests == 2 and receiver.deliveries == []  # tried, one quick retry
        assert ("seawall watch: 1 alert(s) via webhook:soc left pending (HTTP 500 from webhook "
                "soc); the next run delivers them") in run.stderr
        assert run.stdout.count("seawall-watch ALERT CRITICAL secret.anthropic-api-key") == 1
        rows = {r["channel"]: r for r in alert_rows(engine)}
        assert (rows["webhook:soc"]["state"], rows["webhook:soc"]["attempts"],
                rows["webhook:soc"]["last_error"]) == (
            "pending", 2, "DeliveryError: HTTP 500 from webhook soc")
        assert rows["log"]["state"] == "sent"

        receiver.failing = 0  # the receiver is back: the next run delivers, exactly once
        for _ in range(2):
            run, _ = once(config, tmp_path)
            assert run.returncode == 0, run.stderr
            assert "left pending" not in run.stderr
        assert receiver.requests == 3
        assert [(d["id"], d["verified"]) for d in receiver.deliveries] == [
            (rows["webhook:soc"]["alert_key"], True)]
        assert [(r["channel"], r["state"], r["attempts"]) for r in alert_rows(engine)] == [
            ("webhook:soc", "sent", 3), ("log", "sent", 1)]
    finally:
        engine.dispose()
