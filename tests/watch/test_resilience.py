"""Crashes and outages: SIGKILL at every step loses no release and repeats no alert; a registry
that goes away delays work (with backoff) but drops none of it. Both database backends."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import sqlalchemy as sa
from watchkit import (
    PyPIServer,
    Receiver,
    alert_rows,
    anthropic_key,
    engine_for,
    release_states,
    sdist,
    start_watcher,
    stop_watcher,
    wait_until,
    write_config,
)

from seawall.watch import db

NAME = "leaky-demo"


def config_for(tmp_path: Path, database: str, server: PyPIServer, receiver: Receiver, *,
               interval: float = 0.5, backfill: str = "all", base: float = 0.2,
               cap: float = 1.0) -> Path:
    return write_config(tmp_path / "watch.toml", database, f"""
interval = {interval}
backfill = "{backfill}"
lease-seconds = 1
[pypi]
index = "{server.url}/simple/"
projects = ["{NAME}"]
[politeness]
backoff-base = {base}
max-backoff = {cap}
requests-per-second = 50
[alerts]
min-severity = "critical"
[[alerts.webhook]]
url = "{receiver.url}"
secret-env = "SEAWALL_TEST_WEBHOOK_SECRET"
""")


def leaky(version: str, seed: int) -> tuple[str, bytes]:
    return sdist(NAME, version, {".env": f"ANTHROPIC_API_KEY={anthropic_key(seed)}\n".encode()})


def test_sigkill_at_each_step_loses_nothing_and_alerts_once(
        tmp_path: Path, database: str, pypi_server: PyPIServer, receiver: Receiver) -> None:
    """Killed at each failpoint in turn (one restart after another, as a crash-looping host
    would), then run clean: both releases are processed, each alert is queued once, and only
    the kill between a receiver's 2xx and recording it sends one again, with the same id."""
    pypi_server.upload(NAME, "1.0.0", *sdist(NAME, "1.0.0", {}))
    pypi_server.upload(NAME, "1.0.1", *leaky("1.0.1", 1))
    config = config_for(tmp_path, database, pypi_server, receiver)
    engine = engine_for(config)
    pending = {f"{NAME}@1.0.0": "pending", f"{NAME}@1.0.1": "pending"}

    for point in ("claimed", "scanned", "stored", "sent"):
        lease_lapsed(engine)  # the killed watcher's lease: the next one takes it over
        crashed = start_watcher(config, tmp_path, SEAWALL_WATCH_FAILPOINT=point)
        assert crashed.wait(timeout=60) == -signal.SIGKILL, point
        states = release_states(engine)
        if point in ("claimed", "scanned"):  # killed before the first result was committed
            assert states == pending, point
            assert alert_rows(engine) == [] and receiver.deliveries == []
        elif point == "stored":  # one release committed (whichever finished first), not the other
            assert sorted(states.values()) == ["done", "pending"]
            assert receiver.deliveries == []
        else:  # delivered the first alert (the webhook's), killed before recording it
            assert set(states.values()) == {"done"}
            assert len(receiver.deliveries) == 1
            assert [r["state"] for r in alert_rows(engine)] == ["pending", "pending"]

    lease_lapsed(engine)
    proc = start_watcher(config, tmp_path)
    try:
        wait_until(lambda: alert_rows(engine)
                   and all(r["state"] == "sent" for r in alert_rows(engine)), 30,
                   "the alerts to be sent")
        time.sleep(1.0)  # two more polls: nothing may be sent again
    finally:
        stop_watcher(proc)
    rows = alert_rows(engine)
    assert sorted(r["channel"] for r in rows) == ["log", "webhook:webhook-1"]
    key = next(r["alert_key"] for r in rows if r["channel"] != "log")
    assert [d["id"] for d in receiver.deliveries] == [key, key]  # the one repeat, same id
    assert all(d["verified"] for d in receiver.deliveries)
    assert receiver.deliveries[0]["body"]["release"]["spec"] == f"pypi:{NAME}==1.0.1"
    log = (tmp_path / "watcher.log").read_text()
    assert log.count("seawall-watch ALERT CRITICAL secret.anthropic-api-key") == 1
    assert log.count("took over the database lease of ") == 4  # after each of the 4 kills
    engine.dispose()


def lease_lapsed(engine: sa.engine.Engine) -> None:
    """Wait out the lease of a watcher that was killed (``lease-seconds = 1``)."""
    with engine.connect() as conn:
        expires = conn.execute(sa.select(db.watch_lease.c.expires)).scalar() or 0.0
    wait_until(lambda: time.time() > expires + 0.05, 10, "the killed watcher's lease to lapse")


def test_registry_outage_backs_off_then_catches_up(
        tmp_path: Path, database: str, pypi_server: PyPIServer, receiver: Receiver) -> None:
    pypi_server.upload(NAME, "1.0.0", *sdist(NAME, "1.0.0", {}))
    config = config_for(tmp_path, database, pypi_server, receiver, interval=0.3,
                        backfill="latest", base=0.5, cap=2.0)
    engine = engine_for(config)
    proc = start_watcher(config, tmp_path)
    try:
        wait_until(lambda: release_states(engine) == {f"{NAME}@1.0.0": "done"}, 60,
                   "the first release")
        pypi_server.stop()
        down = time.monotonic()
        # Published while the registry is unreachable (pypiserver serves its folder as is).
        for filename, data in (leaky("1.0.1", 2), sdist(NAME, "1.0.2", {})):
            (pypi_server.packages / filename).write_bytes(data)
        time.sleep(4.0)
        failures, error = _package_state(engine)
        # At the 0.3 s interval 4 s would be ~13 polls; backoff (0.25-0.5, 0.5-1, 1-2, 1-2 s
        # ...) allows at most 6, and a poll in flight when the registry stopped makes 7.
        assert 2 <= failures <= 7, failures
        assert error is not None and "127.0.0.1" in error
        pypi_server.start()
        wait_until(lambda: release_states(engine) == {f"{NAME}@1.0.0": "done",
                                                      f"{NAME}@1.0.1": "done",
                                                      f"{NAME}@1.0.2": "done"}, 30,
                   "the releases published during the outage")
        wait_until(lambda: len(receiver.deliveries) == 1, 15, "the alert")
        assert time.monotonic() - down < 30
        time.sleep(1.0)
    finally:
        stop_watcher(proc)
    assert len(receiver.deliveries) == 1
    assert receiver.deliveries[0]["body"]["release"]["spec"] == f"pypi:{NAME}==1.0.1"
    assert _package_state(engine) == (0, None)
    engine.dispose()


def _package_state(engine: sa.engine.Engine) -> tuple[int, str | None]:
    with engine.connect() as conn:
        row = conn.execute(sa.select(db.packages.c.failures, db.packages.c.last_error)).one()
    return row.failures, row.last_error
