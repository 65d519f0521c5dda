"""The watcher's schema, one definition for SQLite and PostgreSQL, and its migrations.

Migrations are a short ordered list of functions, recorded in ``seawall_schema``; each runs in
its own transaction, so a crash mid-upgrade leaves the previous version intact. Alembic would
add a second configuration file and a script folder for what is, so far, a handful of tables.
Times are UNIX seconds (floats) so both backends compare them the same way.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

metadata = sa.MetaData()

schema = sa.Table(
    "seawall_schema", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
)

packages = sa.Table(
    "packages", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("ecosystem", sa.String(16), nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("origin", sa.String(16), nullable=False),  # config | scope | feed
    sa.Column("added_at", sa.Float, nullable=False),
    sa.Column("last_poll", sa.Float),
    sa.Column("last_ok", sa.Float),
    sa.Column("last_error", sa.Text),
    sa.Column("etag", sa.Text),
    sa.Column("failures", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_poll", sa.Float, nullable=False, server_default="0"),
    sa.Column("watch_until", sa.Float),  # feed packages: re-polled until then (PyPI's 14 days)
    sa.UniqueConstraint("ecosystem", "name", name="uq_packages_name"),
)

releases = sa.Table(
    "releases", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("ecosystem", sa.String(16), nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("version", sa.String(128), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),  # pending | done | skipped
    sa.Column("files", sa.Text, nullable=False),  # JSON [{filename, url, algorithm, digest}]
    sa.Column("files_sig", sa.String(64), nullable=False),
    sa.Column("previous", sa.String(128)),
    sa.Column("first_seen", sa.Float, nullable=False),
    sa.Column("processed_at", sa.Float),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt", sa.Float, nullable=False, server_default="0"),
    sa.Column("error", sa.Text),
    sa.Column("new_findings", sa.Integer, nullable=False, server_default="0"),
    sa.Column("scanned_files", sa.Integer, nullable=False, server_default="0"),
    sa.UniqueConstraint("ecosystem", "name", "version", name="uq_releases_version"),
)
sa.Index("ix_releases_state", releases.c.state, releases.c.next_attempt)

findings = sa.Table(
    "findings", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("release_id", sa.Integer, sa.ForeignKey("releases.id"), nullable=False),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("rule", sa.String(128), nullable=False),
    sa.Column("severity", sa.Integer, nullable=False),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("evidence", sa.Text, nullable=False),  # JSON, already redacted by the detectors
    sa.UniqueConstraint("release_id", "fingerprint", name="uq_findings_release"),
)

alerts = sa.Table(
    "alerts", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("release_id", sa.Integer, sa.ForeignKey("releases.id"), nullable=False),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("channel", sa.String(64), nullable=False),
    sa.Column("alert_key", sa.String(64), nullable=False),  # sent as X-Seawall-Alert-Id
    sa.Column("severity", sa.Integer, nullable=False),
    sa.Column("rule", sa.String(128), nullable=False),
    sa.Column("summary", sa.Text, nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),  # pending | sent | failed
    sa.Column("created", sa.Float, nullable=False),
    sa.Column("sent_at", sa.Float),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt", sa.Float, nullable=False, server_default="0"),
    sa.Column("last_error", sa.Text),
    sa.UniqueConstraint("release_id", "fingerprint", "channel", name="uq_alerts_once"),
)

cursors = sa.Table(
    "cursors", metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("updated", sa.Float, nullable=False),
)


watch_lease = sa.Table(
    "watch_lease", metadata,
    sa.Column("id", sa.Integer, primary_key=True),  # one row, id 1: one watcher per database
    sa.Column("token", sa.String(64), nullable=False),  # the holder's random token; '' when free
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("acquired", sa.Float, nullable=False),
    sa.Column("renewed", sa.Float, nullable=False),
    sa.Column("expires", sa.Float, nullable=False),  # 0 when released
)


def _v1(conn: Connection) -> None:
    for table in (packages, releases, findings, alerts, cursors):
        table.create(conn, checkfirst=True)


def _v2(conn: Connection) -> None:
    """The lease that keeps a second watcher off the database (``seawall.watch.lease``)."""
    watch_lease.create(conn, checkfirst=True)
    conn.execute(watch_lease.insert().values(id=1, token="", host="", pid=0, acquired=0.0,
                                             renewed=0.0, expires=0.0))


Migration = Callable[[Connection], None]
MIGRATIONS: list[Migration] = [_v1, _v2]
"""Index i upgrades version i to i + 1. Append; never edit a released step."""
LATEST = len(MIGRATIONS)


class SchemaError(RuntimeError):
    """The database belongs to a newer seawall, or cannot be upgraded."""


def connect(url: str) -> Engine:
    """An engine; SQLite files get WAL (readers never block the watcher) and a busy timeout."""
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")  # durable across a process crash in WAL
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    return sa.create_engine(url, pool_pre_ping=True)


def version(engine: Engine) -> int:
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table(schema.name):
            return 0
        return int(conn.execute(sa.select(schema.c.version)).scalar() or 0)


def migrate(engine: Engine) -> int:
    """Bring the schema to ``LATEST``; returns the version found before."""
    with engine.begin() as conn:
        schema.create(conn, checkfirst=True)
        if conn.dialect.name == "postgresql":  # two watchers starting at once upgrade once
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(727100)"))
        if conn.execute(sa.select(schema.c.version)).first() is None:
            conn.execute(schema.insert().values(id=1, version=0))
    found = version(engine)
    if found > LATEST:
        raise SchemaError(f"the database is at schema version {found}, newer than this seawall "
                          f"understands ({LATEST}); upgrade seawall")
    for step in range(found, LATEST):
        with engine.begin() as conn:
            MIGRATIONS[step](conn)
            conn.execute(schema.update().values(version=step + 1))
    return found
