"""One watcher per database: a lease row that a second watcher finds and respects.

Two watchers on one database would poll, download and scan every release twice and race on
the feed cursors (alerts stay single, being keyed, but the work doubles). So the watcher holds
the single row of ``watch_lease``: its host, pid and a random token, and when the lease
expires. It is taken with one conditional UPDATE (``WHERE token = <the token seen> AND
(expires < now OR token = mine)``) whose row count says who won: an atomic compare-and-set on
SQLite (WAL) and PostgreSQL alike, where an advisory lock would exist on one only. A holder
renews it on a heartbeat thread, because the loop may legitimately block longer than a
lease (a slow registry document, a long scan) and a lease that lapses while its holder still
works lets a second watcher in; a holder that is killed stops renewing, and once the lease
expires the next watcher takes it over and says so. Times are the hosts' wall clocks: watchers
on different hosts need synchronised clocks (NTP), as any lease does.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine

from seawall.watch.db import watch_lease

log = logging.getLogger("seawall.watch")
MIN_SECONDS = 60.0
POLLS = 3
"""A lease lasts this many poll intervals (at least ``MIN_SECONDS``) unless configured."""
BEATS = 4
"""Renewals per lease period: three can fail (a database blip) before it lapses."""


def default_seconds(interval: float) -> float:
    return max(POLLS * interval, MIN_SECONDS)


def stamp(when: float) -> str:
    """A UTC time as people read it in logs (``2026-11-26 02:40:00 UTC``); a value no
    calendar holds (a row written by something else) is shown as it is."""
    try:
        return datetime.fromtimestamp(when, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, ValueError, OSError):
        return f"{when!r} (not a time)"


@dataclass(frozen=True)
class Holder:
    host: str
    pid: int
    acquired: float
    renewed: float
    expires: float

    def live(self, now: float) -> bool:
        return self.expires >= now

    def describe(self) -> str:
        return f"{self.host} pid {self.pid}"

    def to_dict(self, now: float) -> dict[str, Any]:
        return {"host": self.host, "pid": self.pid, "acquired": self.acquired,
                "renewed": self.renewed, "expires": self.expires, "live": self.live(now),
                "expires_in": round(self.expires - now, 1)}


class LeaseHeld(RuntimeError):
    """Another watcher holds a live lease on this database."""

    def __init__(self, holder: Holder, now: float) -> None:
        super().__init__(
            f"another watcher holds this database: {holder.describe()} (since "
            f"{stamp(holder.acquired)}, renewed {stamp(holder.renewed)}); its lease expires at "
            f"{stamp(holder.expires)} (in {max(holder.expires - now, 0):.0f} s). Run one watcher "
            "per database; if that one was killed, start again after its lease expires")
        self.holder = holder


class LeaseLost(RuntimeError):
    """The lease was taken over while this watcher still ran (it could not renew in time)."""


def read(engine: Engine) -> tuple[str, Holder] | None:
    """The lease row as (token, holder), or None when no watcher ever held it."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(watch_lease).where(watch_lease.c.id == 1)).mappings().first()
    if row is None or not (row["token"] or row["host"]):
        return None
    return row["token"], _holder(row)


def current(engine: Engine, now: float | None = None) -> dict[str, Any] | None:
    """What ``watch status`` shows: the holder (live or not), or None when never held."""
    found = read(engine)
    if found is None:
        return None
    token, holder = found
    now = time.time() if now is None else now
    return {**holder.to_dict(now), "live": bool(token) and holder.live(now),
            "released": not token}


def _holder(row: Any) -> Holder:
    return Holder(row["host"], int(row["pid"]), float(row["acquired"]), float(row["renewed"]),
                  float(row["expires"]))


class Lease:
    """This process's claim on the database; ``acquire`` once, then renew until ``release``."""

    def __init__(self, engine: Engine, seconds: float, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.seconds = seconds
        self.clock = clock
        self.token = secrets.token_hex(16)
        self.host = socket.gethostname()[:255]
        self.pid = os.getpid()
        self.lost: str | None = None
        """Set (to the reason) when another watcher took the lease over from this one."""
        self._beat: threading.Thread | None = None
        self._stop = threading.Event()

    def acquire(self) -> Holder | None:
        """Take the lease; returns the expired holder it took over from (None if it was free
        or already ours). Raises ``LeaseHeld`` when another watcher's lease is live."""
        for _ in range(5):  # another watcher may change the row between the read and the write
            now = self.clock()
            seen = read(self.engine)
            token = seen[0] if seen is not None else ""
            if seen is None:
                self._ensure_row()
            elif token and token != self.token and seen[1].live(now):
                raise LeaseHeld(seen[1], now)
            taken = sa.and_(watch_lease.c.id == 1, watch_lease.c.token == token,
                            sa.or_(watch_lease.c.expires < now, watch_lease.c.token == self.token,
                                   watch_lease.c.token == ""))
            with self.engine.begin() as conn:
                done = conn.execute(watch_lease.update().where(taken).values(
                    token=self.token, host=self.host, pid=self.pid, acquired=now, renewed=now,
                    expires=now + self.seconds)).rowcount
            if done == 1:
                self.lost = None
                if seen is not None and token and token != self.token:
                    return seen[1]
                return None
        seen = read(self.engine)  # it kept changing: someone else is taking it, and has
        if seen is not None and seen[0]:
            raise LeaseHeld(seen[1], self.clock())
        raise RuntimeError("could not take the watch lease: its row keeps changing")

    def _ensure_row(self) -> None:
        from seawall.watch.store import _insert_ignore

        with self.engine.begin() as conn:
            _insert_ignore(conn, watch_lease, [{"id": 1, "token": "", "host": "", "pid": 0,
                                                "acquired": 0.0, "renewed": 0.0,
                                                "expires": 0.0}])

    def renew(self) -> bool:
        """Extend the lease; False (and ``lost`` set) when another watcher has taken it."""
        now = self.clock()
        with self.engine.begin() as conn:
            done = conn.execute(watch_lease.update()
                                .where((watch_lease.c.id == 1) & (watch_lease.c.token == self.token))
                                .values(renewed=now, expires=now + self.seconds)).rowcount
        if done == 1:
            return True
        found = read(self.engine)
        holder = found[1].describe() if found is not None and found[0] else "nobody"
        self.lost = (f"this watcher's lease on the database was taken over (now held by "
                     f"{holder}): it could not renew it within {self.seconds:g} s")
        return False

    def release(self) -> None:
        """Free the lease (kept: who held it last), so a restart need not wait for it."""
        self.stop_heartbeat()
        with self.engine.begin() as conn:
            conn.execute(watch_lease.update()
                         .where((watch_lease.c.id == 1) & (watch_lease.c.token == self.token))
                         .values(token="", expires=0.0, renewed=self.clock()))

    # -- heartbeat -------------------------------------------------------------------------
    def start_heartbeat(self, on_lost: Callable[[], None]) -> None:
        self._stop.clear()
        self._beat = threading.Thread(target=self._heartbeat, args=(on_lost,), daemon=True,
                                      name="seawall-watch-lease")
        self._beat.start()

    def stop_heartbeat(self) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join(timeout=60)
            self._beat = None

    def _heartbeat(self, on_lost: Callable[[], None]) -> None:
        while not self._stop.wait(self.seconds / BEATS):
            try:
                if not self.renew():
                    log.error("%s; stopping", self.lost)
                    on_lost()
                    return
            except sa_exc.SQLAlchemyError as exc:  # a database blip: the next beat tries again
                log.warning("could not renew the watch lease (%s); retrying",
                            type(exc.orig if isinstance(exc, sa_exc.DBAPIError) else exc).__name__)
