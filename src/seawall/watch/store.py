"""Every read and write of the watcher's state, as short transactions.

The crash-safety argument lives here. A release is inserted ``pending`` when first seen (with
the feed cursor or poll that found it, in one transaction), and only one transaction turns it
``done``: the one that also stores its findings and queues its alerts. A crash before that
commit leaves it ``pending``, so it is processed again; alert rows are unique on (release,
finding fingerprint, channel) and inserted with ``ON CONFLICT DO NOTHING``, so processing a
release twice can never queue an alert twice. Delivery marks an alert ``sent`` right after
the receiver's 2xx; the alert id travels in ``X-Seawall-Alert-Id`` so a receiver can drop the
one duplicate a crash in that last instant could cause.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, RowMapping

from seawall.findings import Finding
from seawall.watch.db import alerts, cursors, findings, packages, releases
from seawall.watch.sources import FileRef, Found


def files_signature(files: Sequence[FileRef]) -> str:
    text = "\n".join(sorted(f"{f.filename}\0{f.algorithm}\0{f.digest}" for f in files))
    return hashlib.sha256(text.encode()).hexdigest()


def alert_key(ecosystem: str, name: str, version: str, fingerprint: str, channel: str) -> str:
    raw = "\0".join((ecosystem, name, version, fingerprint, channel))
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class NewAlert:
    fingerprint: str
    channel: str
    severity: int
    rule: str
    summary: str
    payload: dict[str, Any]


def _insert_ignore(conn: Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    conn.execute(insert(table).on_conflict_do_nothing(), rows)


class Store:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- packages -------------------------------------------------------------------------
    def ensure_package(self, ecosystem: str, name: str, origin: str, now: float, *,
                       poll_now: bool = False, watch_until: float | None = None) -> None:
        with self.engine.begin() as conn:
            self._ensure(conn, ecosystem, name, origin, now, poll_now, watch_until)

    def _ensure(self, conn: Connection, ecosystem: str, name: str, origin: str, now: float,
                poll_now: bool, watch_until: float | None) -> None:
        _insert_ignore(conn, packages, [{"ecosystem": ecosystem, "name": name, "origin": origin,
                                         "added_at": now, "next_poll": now,
                                         "watch_until": watch_until}])
        where = (packages.c.ecosystem == ecosystem) & (packages.c.name == name)
        if poll_now:
            conn.execute(packages.update().where(where & (packages.c.next_poll > now))
                         .values(next_poll=now))
        if origin != "feed":  # configured or scope packages are watched for good
            conn.execute(packages.update().where(where & (packages.c.origin == "feed"))
                         .values(origin=origin, watch_until=None))
        elif watch_until is not None:  # a feed package seen again: watch it a while longer
            conn.execute(packages.update().where(where & (packages.c.origin == "feed"))
                         .values(watch_until=watch_until))

    def signal_packages(self, rows: Iterable[tuple[str, str, str, float | None]], cursor: str,
                        value: str, now: float) -> None:
        """Feed results and the feed's new cursor, in one transaction (at-least-once)."""
        with self.engine.begin() as conn:
            for ecosystem, name, origin, watch_until in rows:
                self._ensure(conn, ecosystem, name, origin, now, True, watch_until)
            self._set_cursor(conn, cursor, value, now)

    def due_packages(self, now: float, limit: int) -> list[RowMapping]:
        query = (sa.select(packages)
                 .where(packages.c.next_poll <= now)
                 .where(sa.or_(packages.c.watch_until.is_(None), packages.c.watch_until > now))
                 .order_by(packages.c.next_poll, packages.c.id).limit(limit))
        with self.engine.connect() as conn:
            return list(conn.execute(query).mappings())

    def poll_failed(self, package_id: int, now: float, error: str, next_poll: float) -> None:
        with self.engine.begin() as conn:
            conn.execute(packages.update().where(packages.c.id == package_id).values(
                last_poll=now, last_error=error, failures=packages.c.failures + 1,
                next_poll=next_poll))

    def poll_succeeded(self, package: RowMapping, found: Sequence[Found], etag: str | None,
                       now: float, next_poll: float, *, backfill: str, latest: str | None,
                       recheck_seconds: float, recent: float = 0.0) -> int:
        """Record what a poll saw; returns how many releases became pending.

        On first sight, ``backfill`` decides, except that a version published within
        ``recent`` seconds before the package was added is always scanned: a package first
        heard of through the feed was announced for a release that need not be ``latest``
        (a pre-release, a patch to an older line)."""
        with self.engine.begin() as conn:
            known = {r.version: r for r in conn.execute(
                sa.select(releases.c.id, releases.c.version, releases.c.files_sig,
                          releases.c.first_seen)
                .where(releases.c.ecosystem == package["ecosystem"])
                .where(releases.c.name == package["name"]))}
            first_sight = not known
            pending, rows = 0, []
            for item in found:
                sig = files_signature(item.files)
                files = json.dumps([f.to_dict() for f in item.files])
                old = known.get(item.version)
                if old is None:
                    wanted = (not first_sight or backfill == "all"
                              or (backfill == "latest" and item.version == latest)
                              or (item.published is not None
                                  and item.published >= package["added_at"] - recent))
                    pending += wanted
                    rows.append({"ecosystem": package["ecosystem"], "name": package["name"],
                                 "version": item.version, "state": "pending" if wanted else "skipped",
                                 "files": files, "files_sig": sig, "previous": item.previous,
                                 "first_seen": now, "next_attempt": now})
                elif old.files_sig != sig and now - old.first_seen <= recheck_seconds:
                    # New files on a recent release (PyPI accepts them for 14 days): scan again;
                    # alerts already sent stay sent, since they are unique per fingerprint.
                    pending += 1
                    conn.execute(releases.update().where(releases.c.id == old.id).values(
                        files=files, files_sig=sig, state="pending", attempts=0, next_attempt=now))
            _insert_ignore(conn, releases, rows)
            conn.execute(packages.update().where(packages.c.id == package["id"]).values(
                last_poll=now, last_ok=now, last_error=None, failures=0, etag=etag,
                next_poll=next_poll))
        return pending

    # -- releases -------------------------------------------------------------------------
    def claim(self, now: float, limit: int, exclude: Iterable[int] = ()) -> list[RowMapping]:
        query = (sa.select(releases).where(releases.c.state == "pending")
                 .where(releases.c.next_attempt <= now))
        skip = list(exclude)
        if skip:
            query = query.where(releases.c.id.not_in(skip))
        query = query.order_by(releases.c.first_seen, releases.c.id).limit(limit)
        with self.engine.connect() as conn:
            return list(conn.execute(query).mappings())

    def release(self, ecosystem: str, name: str, version: str) -> RowMapping | None:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(releases).where(
                (releases.c.ecosystem == ecosystem) & (releases.c.name == name)
                & (releases.c.version == version))).mappings().first()

    def complete(self, release_id: int, found: Sequence[Finding], queued: Sequence[NewAlert],
                 now: float, *, error: str | None, files: int) -> None:
        """Findings, alerts and ``done`` in one transaction: all of it happens, or none."""
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(releases).where(releases.c.id == release_id)).mappings().one()
            conn.execute(findings.delete().where(findings.c.release_id == release_id))
            _insert_ignore(conn, findings, [{
                "release_id": release_id, "fingerprint": f.fingerprint, "rule": f.rule,
                "severity": int(f.severity), "path": f.path, "message": f.message,
                "evidence": json.dumps(dict(f.evidence), default=str, sort_keys=True),
            } for f in found])
            _insert_ignore(conn, alerts, [{
                "release_id": release_id, "fingerprint": a.fingerprint, "channel": a.channel,
                "alert_key": alert_key(row["ecosystem"], row["name"], row["version"],
                                       a.fingerprint, a.channel),
                "severity": a.severity, "rule": a.rule, "summary": a.summary,
                "payload": json.dumps(a.payload, sort_keys=True), "state": "pending",
                "created": now, "next_attempt": now,
            } for a in queued])
            conn.execute(releases.update().where(releases.c.id == release_id).values(
                state="done", processed_at=now, error=error, new_findings=len(found),
                scanned_files=files, attempts=releases.c.attempts + 1))

    def give_up(self, release_id: int, error: str, now: float) -> None:
        """``done`` with the error, keeping what an earlier scan of it found and queued."""
        with self.engine.begin() as conn:
            conn.execute(releases.update().where(releases.c.id == release_id).values(
                state="done", processed_at=now, error=error, attempts=releases.c.attempts + 1))

    def retry_later(self, release_id: int, error: str, next_attempt: float) -> None:
        with self.engine.begin() as conn:
            conn.execute(releases.update().where(releases.c.id == release_id).values(
                error=error, attempts=releases.c.attempts + 1, next_attempt=next_attempt))

    # -- alerts ---------------------------------------------------------------------------
    def due_alerts(self, now: float, limit: int, skip: Iterable[str] = ()) -> list[RowMapping]:
        """Pending alerts due by ``now``, oldest first, but those of the ``skip`` channels."""
        query = (sa.select(alerts).where(alerts.c.state == "pending")
                 .where(alerts.c.next_attempt <= now))
        channels = list(skip)
        if channels:
            query = query.where(alerts.c.channel.not_in(channels))
        with self.engine.connect() as conn:
            return list(conn.execute(query.order_by(alerts.c.id).limit(limit)).mappings())

    def alerts_due(self, now: float) -> None:
        """Make every pending alert due now (``--once`` catches up rather than wait)."""
        with self.engine.begin() as conn:
            conn.execute(alerts.update().where((alerts.c.state == "pending")
                                               & (alerts.c.next_attempt > now))
                         .values(next_attempt=now))

    def pending_alerts(self) -> dict[str, int]:
        """Pending alerts by channel."""
        query = (sa.select(alerts.c.channel, sa.func.count()).where(alerts.c.state == "pending")
                 .group_by(alerts.c.channel))
        with self.engine.connect() as conn:
            return {channel: int(n) for channel, n in conn.execute(query)}

    def alert_sent(self, alert_id: int, now: float) -> None:
        with self.engine.begin() as conn:
            conn.execute(alerts.update().where(alerts.c.id == alert_id).values(
                state="sent", sent_at=now, attempts=alerts.c.attempts + 1, last_error=None))

    def postpone_alert(self, alert_id: int, next_attempt: float) -> None:
        """Not tried (its receiver asked for a pause): later, without spending an attempt."""
        with self.engine.begin() as conn:
            conn.execute(alerts.update().where(alerts.c.id == alert_id)
                         .values(next_attempt=next_attempt))

    def alert_failed(self, alert_id: int, error: str, next_attempt: float, give_up: bool) -> None:
        with self.engine.begin() as conn:
            conn.execute(alerts.update().where(alerts.c.id == alert_id).values(
                state="failed" if give_up else "pending", last_error=error,
                attempts=alerts.c.attempts + 1, next_attempt=next_attempt))

    # -- cursors --------------------------------------------------------------------------
    def cursor(self, name: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(cursors.c.value).where(cursors.c.name == name)).scalar()

    def _set_cursor(self, conn: Connection, name: str, value: str, now: float) -> None:
        updated = conn.execute(cursors.update().where(cursors.c.name == name)
                               .values(value=value, updated=now))
        if updated.rowcount == 0:
            conn.execute(cursors.insert().values(name=name, value=value, updated=now))
