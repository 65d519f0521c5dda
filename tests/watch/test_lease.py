"""One watcher per database: the lease refuses a second watcher, is taken over once its holder
is killed and it expires, and ``--once`` takes and gives it back. Both database backends."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from watchkit import engine_for, start_watcher, stop_watcher, wait_until, watcher_env, write_config

from seawall.watch import db
from seawall.watch.lease import Lease, LeaseHeld, current, stamp
from seawall.watch.status import gather, lease_text
from seawall.watch.web import index_html

HOST = socket.gethostname()


class Clock:
    def __init__(self) -> None:
        self.now = 1_790_000_000.0

    def __call__(self) -> float:
        return self.now


def lease_row(engine: sa.engine.Engine) -> dict[str, object]:
    with engine.connect() as conn:
        return dict(conn.execute(sa.select(db.watch_lease)).mappings().one())


def run_watch(config: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "seawall", "watch", "--config", str(config),
                           *args], capture_output=True, text=True, timeout=120,
                          env=watcher_env(tmp_path))


def test_a_live_lease_is_refused_and_an_expired_one_taken_over(database: str,
                                                               tmp_path: Path) -> None:
    config = write_config(tmp_path / "watch.toml", database, "interval = 1\n")
    engine = engine_for(config)
    clock = Clock()
    first, second = Lease(engine, 30, clock=clock), Lease(engine, 30, clock=clock)
    first.pid, second.pid = 1111, 2222
    try:
        assert current(engine, clock.now) is None
        assert first.acquire() is None  # free: taken, not taken over
        assert first.acquire() is None  # already ours: taken again
        clock.now += 10
        with pytest.raises(LeaseHeld) as refused:
            second.acquire()
        assert str(refused.value) == (
            f"another watcher holds this database: {HOST} pid 1111 (since "
            f"{stamp(1_790_000_000.0)}, renewed {stamp(1_790_000_000.0)}); its lease expires at "
            f"{stamp(1_790_000_030.0)} (in 20 s). Run one watcher per database; if that one was "
            "killed, start again after its lease expires")
        assert first.renew()  # renewed: 30 s from now
        clock.now += 29.5
        with pytest.raises(LeaseHeld):
            second.acquire()
        clock.now += 1  # the first stopped renewing (killed): its lease lapses
        taken = second.acquire()
        assert taken is not None and (taken.pid, taken.expires) == (1111, 1_790_000_040.0)
        assert not first.renew()
        assert first.lost is not None and f"now held by {HOST} pid 2222" in first.lost
        first.release()  # not its lease any more: nothing changes
        assert (lease_row(engine)["pid"], current(engine, clock.now)["live"]) == (2222, True)
        second.release()
        row = lease_row(engine)
        assert (row["token"], row["expires"], row["pid"]) == ("", 0.0, 2222)
        assert lease_text(current(engine, clock.now), clock.now) == (
            f"lease: free (last held by {HOST} pid 2222, released 0s ago)")
        assert first.acquire() is None  # released, so free: no takeover to report
    finally:
        engine.dispose()


def test_a_second_watcher_is_refused_then_takes_over_after_a_sigkill(database: str,
                                                                      tmp_path: Path) -> None:
    config = write_config(tmp_path / "watch.toml", database, "interval = 0.5\nlease-seconds = 3\n")
    engine = engine_for(config)
    first = start_watcher(config, tmp_path, log="first.log")
    second = None
    try:
        wait_until(lambda: lease_row(engine)["pid"] == first.pid, 60, "the first watcher's lease")
        refused = run_watch(config, tmp_path)
        assert refused.returncode == 2, refused.stderr
        assert (f"error: another watcher holds this database: {HOST} pid {first.pid} (since "
                in refused.stderr)
        assert "its lease expires at " in refused.stderr and "Traceback" not in refused.stderr
        once = run_watch(config, tmp_path, "--once")  # --once needs the lease too
        assert once.returncode == 2 and f"pid {first.pid}" in once.stderr

        status = json.loads(run_watch(config, tmp_path, "status", "--format", "json").stdout)
        assert (status["lease"]["pid"], status["lease"]["live"]) == (first.pid, True)
        assert 0 < status["lease"]["expires_in"] <= 3
        text = run_watch(config, tmp_path, "status").stdout.splitlines()[0]
        assert text.startswith(f"lease: held by {HOST} pid {first.pid} since ")
        assert f"<p id=lease>lease: held by {HOST} pid {first.pid} since " in index_html(
            gather(engine))

        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
        expires = float(lease_row(engine)["expires"])  # type: ignore[arg-type]
        wait_until(lambda: time.time() > expires + 0.2, 10, "the lease to lapse")
        second = start_watcher(config, tmp_path, log="second.log")
        wait_until(lambda: lease_row(engine)["pid"] == second.pid, 60, "the takeover")
        log = (tmp_path / "second.log").read_text()
        assert f"took over the database lease of {HOST} pid {first.pid}, which expired at " in log
        stop_watcher(second)
        assert second.returncode == 0
        row = lease_row(engine)
        assert (row["token"], row["pid"]) == ("", second.pid)  # a clean stop gives it back
    finally:
        stop_watcher(first)
        if second is not None:
            stop_watcher(second)
        engine.dispose()


def test_once_takes_the_lease_and_gives_it_back(database: str, tmp_path: Path) -> None:
    config = write_config(tmp_path / "watch.toml", database, "interval = 0.5\n")
    engine = engine_for(config)
    try:
        done = subprocess.Popen([sys.executable, "-m", "seawall", "watch", "--config",
                                 str(config), "--once"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=watcher_env(tmp_path))
        _, err = done.communicate(timeout=120)
        assert done.returncode == 0, err
        row = lease_row(engine)
        assert (row["token"], row["host"], row["pid"], row["expires"]) == ("", HOST, done.pid, 0.0)
        assert float(row["acquired"]) > 0  # type: ignore[arg-type]
        again = run_watch(config, tmp_path, "--once", "-v")  # free at once: no takeover
        assert again.returncode == 0 and "took over" not in again.stderr
    finally:
        engine.dispose()


def test_a_watcher_whose_lease_was_taken_over_stops(database: str, tmp_path: Path) -> None:
    """It could not renew in time (a stall longer than the lease): it must not go on working
    beside the watcher that took over."""
    import io
    import threading

    from seawall.watch import config as watch_config
    from seawall.watch.lease import LeaseLost
    from seawall.watch.service import Watcher

    config = write_config(tmp_path / "watch.toml", database, "interval = 1\nlease-seconds = 0.4\n")
    clock = Clock()
    watcher = Watcher(watch_config.load(config), out=io.StringIO(), clock=clock)
    raised: list[BaseException] = []

    def run() -> None:
        try:
            watcher.run()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            raised.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    try:
        worker.start()
        wait_until(lambda: lease_row(watcher.engine)["token"] == watcher.lease.token, 20,
                   "the watcher's lease")
        watcher.lease.stop_heartbeat()  # a stall: no renewal while another watcher takes over
        clock.now += 1.0
        assert Lease(watcher.engine, 30, clock=clock).acquire() is not None
        watcher.lease.start_heartbeat(watcher.stopping.set)
        worker.join(timeout=20)
        assert not worker.is_alive(), "the watcher did not stop"
    finally:
        watcher.stopping.set()
        worker.join(timeout=20)
        watcher.close()
    assert len(raised) == 1 and isinstance(raised[0], LeaseLost)
    assert str(raised[0]).startswith("this watcher's lease on the database was taken over (now "
                                     f"held by {HOST} pid {os.getpid()})")
