"""End to end on a real local npm registry (verdaccio), packages found through the changes feed.

The scope ``@acme`` is watched; no package is named in the config. Each publish is announced
on a stub ``_changes`` feed (verdaccio has none), the watcher reads the packument from
verdaccio and downloads the tarball npm published.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from maps import FIRST_PARTY
from watchkit import (
    FeedServer,
    Receiver,
    alert_rows,
    anthropic_key,
    engine_for,
    npm_publish,
    release_states,
    start_watcher,
    stop_watcher,
    wait_until,
    write_config,
)

pytestmark = pytest.mark.network  # installs verdaccio from the npm registry once

INTERVAL = 1.0
NAME = "@acme/widget"


def test_scope_from_changes_feed_clean_then_leaky(
        tmp_path: Path, database: str, verdaccio: Any, feeds: FeedServer,
        receiver: Receiver) -> None:
    name = f"{NAME}-{uuid.uuid4().hex[:8]}"  # verdaccio is shared by the session
    key = anthropic_key(7)
    config = write_config(tmp_path / "watch.toml", database, f"""
interval = {INTERVAL}
[npm]
registry = "{verdaccio.url}"
scopes = ["@acme"]
changes = "{feeds.url}/registry/_changes"
[politeness]
requests-per-second = 50
[alerts]
min-severity = "critical"
[[alerts.webhook]]
url = "{receiver.url}"
secret-env = "SEAWALL_TEST_WEBHOOK_SECRET"
[[alerts.webhook]]
url = "{receiver.url}"
format = "slack"
name = "slack"
secret-env = "SEAWALL_TEST_WEBHOOK_SECRET"
""")
    feeds.changes.append("unrelated-package")  # before the watcher starts: not replayed
    engine = engine_for(config)
    proc = start_watcher(config, tmp_path)
    try:
        wait_until(lambda: any("since=now" in r for r in feeds.requests), 30, "the first feed read")
        npm_publish(verdaccio, name, "1.0.0", {"index.js": b"module.exports = 1;\n"}, tmp_path)
        feeds.changes += ["someone-else", name]
        wait_until(lambda: release_states(engine).get(f"{name}@1.0.0") == "done", 30,
                   "the clean release")
        assert receiver.deliveries == []

        npm_publish(verdaccio, name, "1.0.1", {
            "index.js": b"module.exports = 1;\n", "index.js.map": FIRST_PARTY,
            "config/.env": f"ANTHROPIC_API_KEY={key}\n".encode()}, tmp_path)
        published = time.monotonic()
        feeds.changes.append(name)
        wait_until(lambda: len(receiver.deliveries) >= 4, 30, "the alerts")
        latency = max(d["at"] for d in receiver.deliveries) - published
        assert latency <= 2 * INTERVAL, latency
        time.sleep(2 * INTERVAL)  # two more polls: nothing may be repeated
    finally:
        stop_watcher(proc)
    assert set(release_states(engine)) == {f"{name}@1.0.0", f"{name}@1.0.1"}  # not the others
    # Two critical findings x two webhooks: one alert each, all signed.
    assert len(receiver.deliveries) == 4
    assert all(d["verified"] for d in receiver.deliveries)
    native = sorted((d["body"] for d in receiver.deliveries if "type" in d["body"]),
                    key=lambda b: b["finding"]["rule"])
    assert [(b["finding"]["rule"], b["finding"]["path"]) for b in native] == [
        ("secret.anthropic-api-key", "package/config/.env"),
        ("sourcemap.embedded-source", "package/index.js.map"),
    ]
    assert {b["release"]["spec"] for b in native} == {f"npm:{name}@1.0.1"}
    assert all(any(a.startswith(f"Deprecate {name}@1.0.1") for a in b["actions"]) for b in native)
    slack = [d["body"] for d in receiver.deliveries if "blocks" in d["body"]]
    assert len(slack) == 2 and all(s["text"].startswith(":rotating_light: CRITICAL") for s in slack)
    assert key not in str([d["body"] for d in receiver.deliveries])
    assert len(alert_rows(engine)) == 6  # + one log line each
    engine.dispose()
