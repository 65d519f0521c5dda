"""Review of the database lease (``watch/lease.py``): races, clocks, database blips, release.

Each defect it found is fixed; its test is a regression test now. The others pin down
what the review checked and found sound.
"""

from __future__ import annotations

import io
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from seawall.watch import config as watch_config
from seawall.watch import db
from seawall.watch.lease import Lease, LeaseHeld, current
from seawall.watch.status import lease_text


def _engine(tmp_path: Path) -> sa.engine.Engine:
    engine = db.connect(f"sqlite:///{tmp_path / 'watch.db'}")
    db.migrate(engine)
    return engine


def _row(engine: sa.engine.Engine) -> dict[str, object]:
    with engine.connect() as conn:
        return dict(conn.execute(sa.select(db.watch_lease)).mappings().one())


def _config(tmp_path: Path, body: str = "") -> Path:
    path = tmp_path / "watch.toml"
    path.write_text(f'database = "{tmp_path / "watch.db"}"\ninterval = 1\n{body}')
    return path


# -- defects -------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["inf", "nan", "1e12"])
def test_lease_seconds_must_be_finite_and_stampable(tmp_path: Path, value: str) -> None:
    with pytest.raises(ValueError, match="lease-seconds"):
        watch_config.load(_config(tmp_path, f"lease-seconds = {value}\n"))


def test_second_watcher_is_refused_cleanly_whatever_the_expiry(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    try:
        first = Lease(engine, 1e12)  # accepted by the config today ("never expires")
        assert first.acquire() is None
        with pytest.raises(LeaseHeld):
            Lease(engine, 60).acquire()
    finally:
        engine.dispose()


def test_status_text_survives_a_far_expiry(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    try:
        Lease(engine, 1e12).acquire()
        text = lease_text(current(engine), 1_790_000_000.0)
        assert text.startswith("lease: held by ")
    finally:
        engine.dispose()


# -- checked and sound ---------------------------------------------------------------------
@pytest.mark.parametrize("row_present", [True, False])
def test_watchers_starting_at_once_elect_exactly_one(tmp_path: Path, row_present: bool) -> None:
    """Six watchers read the free (or missing) row at the same moment: one wins, the
    others are refused naming it; never two holders, never an unexpected error."""
    engine = _engine(tmp_path)
    if not row_present:
        with engine.begin() as conn:
            conn.execute(db.watch_lease.delete())
    leases = [Lease(engine, 30) for _ in range(6)]
    for n, lease in enumerate(leases):
        lease.pid = 1000 + n
    gate = threading.Barrier(len(leases))
    outcome: dict[int, str] = {}

    def start(n: int) -> None:
        gate.wait()
        try:
            leases[n].acquire()
            outcome[n] = "won"
        except LeaseHeld as exc:
            outcome[n] = f"held:{exc.holder.pid}"
        except Exception as exc:  # noqa: BLE001 - the assertion names it
            outcome[n] = f"error:{type(exc).__name__}"

    threads = [threading.Thread(target=start, args=(n,)) for n in range(len(leases))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    try:
        winners = [n for n, what in outcome.items() if what == "won"]
        assert len(outcome) == 6 and len(winners) == 1, outcome
        assert sorted(what for n, what in outcome.items() if n not in winners) == \
            [f"held:{1000 + winners[0]}"] * 5
        assert _row(engine)["token"] == leases[winners[0]].token
    finally:
        engine.dispose()


def test_expiry_boundary_is_the_same_in_python_and_sql(tmp_path: Path) -> None:
    """At exactly the expiry instant the lease is still live (refused, not taken over); a
    moment later it is taken over; a clock that steps back never frees a live lease."""
    engine = _engine(tmp_path)
    now = [1_790_000_000.0]
    first, second = (Lease(engine, 10, clock=lambda: now[0]) for _ in range(2))
    try:
        first.acquire()
        now[0] += 10
        with pytest.raises(LeaseHeld):
            second.acquire()
        now[0] -= 1000  # the host's clock steps back
        with pytest.raises(LeaseHeld):
            second.acquire()
        now[0] += 1000.001
        assert second.acquire() is not None  # took over the expired holder
        assert first.renew() is False and first.lost is not None
    finally:
        engine.dispose()


def test_heartbeat_survives_a_database_blip(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Two renewals fail with OperationalError (the database restarting): the heartbeat
    logs and retries, the lease is never lost and the holder is not stopped."""
    engine = _engine(tmp_path)
    lease = Lease(engine, 0.8)
    lease.acquire()
    real = lease.renew
    calls = {"n": 0}

    def flaky() -> bool:
        calls["n"] += 1
        if calls["n"] <= 2:
            raise sa_exc.OperationalError("UPDATE watch_lease", {}, Exception("down"))
        return real()

    monkeypatch.setattr(lease, "renew", flaky)
    stopped = threading.Event()
    lease.start_heartbeat(stopped.set)
    try:
        for _ in range(100):
            if calls["n"] >= 4:
                break
            threading.Event().wait(0.05)
        assert calls["n"] >= 4 and not stopped.is_set() and lease.lost is None
        row = _row(engine)
        assert row["token"] == lease.token and float(row["renewed"]) > float(row["acquired"])
    finally:
        lease.release()
        engine.dispose()
    assert _row_after_release(tmp_path)["token"] == ""


def _row_after_release(tmp_path: Path) -> dict[str, object]:
    engine = db.connect(f"sqlite:///{tmp_path / 'watch.db'}")
    try:
        return _row(engine)
    finally:
        engine.dispose()


@pytest.mark.parametrize("error", [RuntimeError("a bug in a cycle"), KeyboardInterrupt()])
def test_run_gives_the_lease_back_when_the_loop_raises(tmp_path: Path, error: BaseException,
                                                       monkeypatch: pytest.MonkeyPatch
                                                       ) -> None:
    """``watch --once`` (``run(until_idle=True)``) frees the lease on an exception or a
    Ctrl-C that reaches Python, so the next run need not wait for it to expire."""
    from seawall.watch.service import Watcher

    watcher = Watcher(watch_config.load(_config(tmp_path)), out=io.StringIO())

    def boom(*_args: object) -> None:
        assert _row(watcher.engine)["token"] == watcher.lease.token  # held while looping
        raise error

    monkeypatch.setattr(watcher, "_loop", boom)
    try:
        with pytest.raises(type(error)):
            watcher.run(until_idle=True)
        row = _row(watcher.engine)
        assert row["token"] == "" and row["expires"] == 0.0
        assert watcher.lease._beat is None  # the heartbeat thread was stopped
    finally:
        watcher.close()
