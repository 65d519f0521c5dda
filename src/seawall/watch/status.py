"""What the watcher is doing, read straight from its database (for ``watch status`` and ``serve``).

Only stored, already-redacted data is shown: names, versions, rules, paths, messages and
evidence (redacted values and hashes). Database URLs and webhook secrets never appear.
"""

from __future__ import annotations

import json
import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from seawall.findings import Severity
from seawall.watch.db import alerts, findings, packages, releases
from seawall.watch.lease import current, stamp
from seawall.watch.pipeline import spec


def gather(engine: Engine, *, limit: int = 20, now: float | None = None) -> dict[str, Any]:
    now = time.time() if now is None else now
    with engine.connect() as conn:
        pkgs = [dict(r) for r in conn.execute(
            sa.select(packages.c.ecosystem, packages.c.name, packages.c.origin,
                      packages.c.last_poll, packages.c.last_ok, packages.c.last_error,
                      packages.c.failures)
            .order_by(packages.c.ecosystem, packages.c.name)).mappings()]
        pending = conn.execute(sa.select(sa.func.count()).select_from(releases)
                               .where(releases.c.state == "pending")).scalar() or 0
        retrying = conn.execute(sa.select(sa.func.count()).select_from(releases)
                                .where((releases.c.state == "pending") & (releases.c.attempts > 0))
                                ).scalar() or 0
        done = conn.execute(sa.select(sa.func.count()).select_from(releases)
                            .where(releases.c.state == "done")).scalar() or 0
        unsent = conn.execute(sa.select(sa.func.count()).select_from(alerts)
                              .where(alerts.c.state == "pending")).scalar() or 0
        failed = conn.execute(sa.select(sa.func.count()).select_from(alerts)
                              .where(alerts.c.state == "failed")).scalar() or 0
        recent = [dict(r) for r in conn.execute(
            sa.select(releases.c.id, releases.c.ecosystem, releases.c.name, releases.c.version,
                      releases.c.state, releases.c.processed_at, releases.c.new_findings,
                      releases.c.error, releases.c.first_seen)
            .where(releases.c.state != "skipped")
            .order_by(releases.c.first_seen.desc(), releases.c.id.desc()).limit(limit)).mappings()]
        sent = [dict(r) for r in conn.execute(
            sa.select(alerts.c.id, alerts.c.channel, alerts.c.state, alerts.c.severity,
                      alerts.c.rule, alerts.c.summary, alerts.c.created, alerts.c.sent_at,
                      alerts.c.last_error, alerts.c.release_id)
            .order_by(alerts.c.id.desc()).limit(limit)).mappings()]
    for row in recent:
        row["spec"] = spec(row["ecosystem"], row["name"], row["version"])
    for row in sent:
        row["severity"] = Severity(row["severity"]).label
    return {"now": now, "lease": current(engine, now), "packages": pkgs,
            "recent_releases": recent, "recent_alerts": sent,
            "backlog": {"pending_releases": pending, "retrying_releases": retrying,
                        "scanned_releases": done, "unsent_alerts": unsent,
                        "failed_alerts": failed}}


def release_findings(engine: Engine, release_id: int) -> tuple[dict[str, Any] | None,
                                                                 list[dict[str, Any]]]:
    with engine.connect() as conn:
        row = conn.execute(sa.select(releases).where(releases.c.id == release_id)).mappings().first()
        if row is None:
            return None, []
        found = [dict(r) for r in conn.execute(
            sa.select(findings).where(findings.c.release_id == release_id)
            .order_by(findings.c.severity.desc(), findings.c.path)).mappings()]
    for item in found:
        item["severity"] = Severity(item["severity"]).label
        item["evidence"] = json.loads(item["evidence"])
    release = dict(row)
    release["spec"] = spec(row["ecosystem"], row["name"], row["version"])
    release.pop("files", None)  # download URLs may embed credentials of private registries
    return release, found


def ago(when: float | None, now: float) -> str:
    if when is None:
        return "never"
    seconds = max(0.0, now - when)
    if seconds < 120:
        return f"{seconds:.0f}s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m ago"
    return f"{seconds / 3600:.1f}h ago"


def lease_text(lease: dict[str, Any] | None, now: float) -> str:
    """Who holds the database (one watcher per database), and until when."""
    if lease is None:
        return "lease: free (no watcher has run on this database)"
    who = f"{lease['host']} pid {lease['pid']}"
    if lease["live"]:
        return (f"lease: held by {who} since {stamp(lease['acquired'])}, renewed "
                f"{ago(lease['renewed'], now)}, expires at {stamp(lease['expires'])} "
                f"(in {max(lease['expires'] - now, 0):.0f} s)")
    if lease["released"]:
        return f"lease: free (last held by {who}, released {ago(lease['renewed'], now)})"
    return (f"lease: expired at {stamp(lease['expires'])} (held by {who}, which stopped "
            "renewing it); the next watcher takes it over")


def render_text(status: dict[str, Any]) -> str:
    now = status["now"]
    lines = [lease_text(status.get("lease"), now),
             f"watching {len(status['packages'])} package(s)"]
    for p in status["packages"]:
        error = f"  error: {p['last_error']}" if p["last_error"] else ""
        lines.append(f"  {p['ecosystem']}:{p['name']}  [{p['origin']}]  last poll "
                     f"{ago(p['last_poll'], now)}{error}")
    b = status["backlog"]
    lines.append(f"backlog: {b['pending_releases']} release(s) pending "
                 f"({b['retrying_releases']} retrying), {b['unsent_alerts']} alert(s) unsent, "
                 f"{b['failed_alerts']} failed; {b['scanned_releases']} release(s) scanned")
    lines.append(f"recent alerts ({len(status['recent_alerts'])}):")
    for a in status["recent_alerts"]:
        lines.append(f"  [{a['state']}] {a['channel']}: {a['summary']}")
    return "\n".join(lines) + "\n"
