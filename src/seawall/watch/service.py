"""The watch loop: read feeds, poll due packages, process pending releases, deliver alerts.

One process owns one database: ``run`` takes the database's lease (``lease``) first and
renews it on a heartbeat thread, so a second watcher is refused instead of doubling the work.
Work that touches the network or scans runs on a bounded thread pool (``concurrency``), so at
most that many releases are in memory at once; every database write but the lease's happens
on the loop's thread, in the short transactions of ``store``. Each step reads its work from
the database, never from memory, so a restart resumes exactly where the last committed
transaction left off. ``--once`` (``run(until_idle=True)``) does not wait on a webhook that
keeps failing: one quick retry, then its alerts stay pending for the next run.

``SEAWALL_WATCH_FAILPOINT`` (``claimed``, ``scanned``, ``stored``, ``sent``) makes the
process SIGKILL itself at that point of the first release or alert that reaches it: the crash
tests use it to prove that no point loses a release or duplicates an alert.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any, Callable, TextIO

from packaging.version import InvalidVersion, Version
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import RowMapping

from seawall.fetch import npm as npm_fetch
from seawall.fetch.cache import Cache, cache_root
from seawall.fetch.http import FetchError
from seawall.findings import Finding
from seawall.watch import alerts, db, net, sources
from seawall.watch.config import WatchConfig, Webhook
from seawall.watch.lease import Lease, LeaseLost, stamp
from seawall.watch.pipeline import Outcome, Retry, process, spec, warm
from seawall.watch.store import NewAlert, Store

log = logging.getLogger("seawall.watch")
FEED_NPM, FEED_PYPI = "npm-changes", "pypi-updates"
DAY = 86400.0
NEVER = 10 * 365 * DAY
GIVE_UP_ATTEMPTS = 8
"""A release whose file the registry answers 404/410 for (a CDN may lag the document by
minutes), or whose processing fails inside seawall, is tried this often, then recorded ``done``
with the error (shown by ``watch status``). Outages are retried for as long as they last."""
QUICK_RETRY = 1.0
"""``--once``: a failed webhook delivery is retried once after at most this long; if that fails
too (or the receiver asks for a longer pause) the channel's alerts stay pending for the next
run instead of holding this one for the whole retry schedule."""


def failpoint(name: str) -> None:
    if os.environ.get("SEAWALL_WATCH_FAILPOINT") == name:
        os.kill(os.getpid(), signal.SIGKILL)


def latest(ecosystem: str, versions: list[str]) -> str | None:
    if not versions:
        return None
    if ecosystem == "npm":
        try:
            return npm_fetch.pick_version({"versions": dict.fromkeys(versions, {})}, "", None, "")
        except FetchError:
            return None
    parsed = []
    for v in versions:
        try:
            parsed.append((Version(v), v))
        except InvalidVersion:
            continue
    final = [p for p in parsed if not p[0].is_prerelease] or parsed
    return max(final)[1] if final else None


class Watcher:
    def __init__(self, cfg: WatchConfig, *, out: TextIO | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.cfg = cfg
        self.out = out or sys.stdout
        self.clock = clock
        self.engine = db.connect(cfg.database)
        db.migrate(self.engine)
        self.store = Store(self.engine)
        self.stopping = threading.Event()
        self.budget = net.Budget(cfg.politeness, stop=self.stopping)
        self.client = net.new_client(cfg.politeness, cfg.user_agent, self.budget)
        self.cache = Cache(cache_root(cfg.cache_dir))
        self.policy = cfg.engine_settings()
        warm(self.policy)
        self.pool = ThreadPoolExecutor(cfg.concurrency, thread_name_prefix="seawall-watch")
        self.hooks: dict[str, Webhook] = {f"webhook:{h.name}": h for h in cfg.webhooks}
        self.channels = list(self.hooks) + (["log"] if cfg.stdout else [])
        self.feed_due: dict[str, float] = {}
        self.feed_failures: dict[str, int] = {}
        self.tick = min(cfg.interval / 4, 1.0)
        self.lease = Lease(self.engine, cfg.lease, clock=clock)
        self.once = False
        self.deferred: dict[str, str] = {}
        """``--once``: channels left for the next run, with their last error."""
        self.channel_failures: dict[str, int] = {}

    # -- the loop -----------------------------------------------------------------------------
    def run(self, *, until_idle: bool = False, max_seconds: float | None = None) -> None:
        """Take the lease (``LeaseHeld`` if another watcher has it), loop, give it back.
        Raises ``LeaseLost`` when another watcher took the lease over meanwhile."""
        took = self.lease.acquire()
        if took is not None:
            log.warning("took over the database lease of %s, which expired at %s (%.0f s ago): "
                        "that watcher stopped renewing it (killed, or its host is down)",
                        took.describe(), stamp(took.expires), self.clock() - took.expires)
        self.lease.start_heartbeat(self.stopping.set)
        try:
            self._loop(until_idle, max_seconds)
        finally:
            self.lease.stop_heartbeat()
            if self.lease.lost is None:
                try:
                    self.lease.release()
                except sa_exc.SQLAlchemyError as exc:  # it expires by itself
                    log.warning("could not release the database lease (%s)", type(exc).__name__)
        if self.lease.lost is not None:
            raise LeaseLost(self.lease.lost)

    def _loop(self, until_idle: bool, max_seconds: float | None) -> None:
        started = self.clock()
        self.once = until_idle
        self.deferred.clear()
        self.channel_failures.clear()
        if until_idle:  # catch up now: alerts a daemon scheduled for later are due this run
            self.store.alerts_due(self.clock())
        self.setup()
        outages = 0
        while not self.stopping.is_set():
            try:
                self.cycle()
                outages = 0
                if until_idle and self.idle():
                    break
            except sa_exc.OperationalError as exc:  # the database restarts, fills up, locks
                outages += 1  # nothing is lost: every step resumes from committed state
                delay = net.backoff(outages - 1, self.cfg.politeness.backoff_base,
                                    self.cfg.politeness.max_backoff)
                reason = str(exc.orig or exc).splitlines()[0] if str(exc.orig or exc) else ""
                log.error("the database is unavailable (%s: %s); retrying in %.1f s",
                          type(exc.orig or exc).__name__, reason, delay)
                self.stopping.wait(delay)
                continue
            if max_seconds is not None and self.clock() - started > max_seconds:
                break
            self.stopping.wait(self.tick)

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.client.close()
        self.engine.dispose()

    def setup(self) -> None:
        now = self.clock()
        for ecosystem, name in self.cfg.watched():
            self.store.ensure_package(ecosystem, name, "config", now, poll_now=True)

    def cycle(self) -> None:
        self.poll_feeds()
        self.poll_packages()
        self.process_releases()
        self.deliver_alerts()

    def idle(self) -> bool:
        now = self.clock()
        return (not self.store.due_packages(now, 1) and not self.store.claim(now + NEVER, 1)
                and not self.store.due_alerts(now + NEVER, 1, skip=self.deferred))

    def left_pending(self) -> dict[str, tuple[int, str]]:
        """``--once``: alerts left pending for the next run, by channel: (count, last error)."""
        counts = self.store.pending_alerts()
        return {c: (counts[c], error) for c, error in self.deferred.items() if counts.get(c)}

    def base(self, ecosystem: str) -> str:
        return self.cfg.npm_registry if ecosystem == "npm" else self.cfg.pypi_index

    # -- feeds --------------------------------------------------------------------------------
    def poll_feeds(self) -> None:
        if self.cfg.npm_changes:
            self._feed(FEED_NPM, self.cfg.npm_changes, self._npm_changes)
        if self.cfg.pypi_updates:
            self._feed(FEED_PYPI, self.cfg.pypi_updates, self._pypi_updates)

    def _feed(self, name: str, url: str, step: Callable[[str], None]) -> None:
        now = self.clock()
        if self.feed_due.get(name, 0.0) > now:
            return
        try:
            step(url)
            self.feed_failures[name] = 0
            self.feed_due[name] = now + self.cfg.interval
        except FetchError as exc:
            failures = self.feed_failures.get(name, 0) + 1
            self.feed_failures[name] = failures
            delay = net.backoff(failures - 1, self.cfg.politeness.backoff_base,
                                self.cfg.politeness.max_backoff)
            self.feed_due[name] = now + delay
            log.warning("%s: %s; retrying in %.1f s", name, exc, delay)

    def _npm_changes(self, url: str) -> None:
        names, cursor = sources.poll_npm_changes(self.client, url, self.store.cursor(FEED_NPM),
                                                 start=self.cfg.npm_changes_since)
        own = set(self.cfg.npm_packages)
        rows = []
        for name in names:
            if name in own:
                rows.append(("npm", name, "config", None))
            elif any(name.startswith(scope + "/") for scope in self.cfg.npm_scopes):
                rows.append(("npm", name, "scope", None))
            elif self.cfg.hunt_all and self.cfg.index is not None:
                rows.append(("npm", name, "feed", self.clock() + DAY))
        self.store.signal_packages(rows, FEED_NPM, cursor, self.clock())

    def _pypi_updates(self, url: str) -> None:
        stored = self.store.cursor(FEED_PYPI)
        updates, cursor = sources.poll_pypi_updates(self.client, url,
                                                    float(stored) if stored else None)
        own = {name for eco, name in self.cfg.watched() if eco == "pypi"}
        rows, seen = [], set()
        for update in updates:  # newest first: a project's newest release sets its window
            if update.name in seen:
                continue
            seen.add(update.name)
            if update.name in own:
                rows.append(("pypi", update.name, "config", None))
            elif self.cfg.hunt_all and self.cfg.index is not None:
                # PyPI's 14 days run from the upload, so an item announced again (the feed is
                # read from the cursor's second on) does not stretch the window.
                rows.append(("pypi", update.name, "feed",
                             update.when + self.cfg.recheck_days * DAY))
        if cursor is not None:
            self.store.signal_packages(rows, FEED_PYPI, repr(cursor), self.clock())

    # -- packages -----------------------------------------------------------------------------
    def poll_packages(self) -> None:
        due = self.store.due_packages(self.clock(), limit=max(64, self.cfg.concurrency * 8))
        ready = [p for p in due  # a paused host (429, errors) is left due, not asked
                 if self.budget.paused(net.host_of(self.base(p["ecosystem"]))) == 0]
        step = self.cfg.concurrency  # at most this many documents in memory at once
        for start in range(0, len(ready), step):
            futures = {self.pool.submit(sources.poll_package, self.client, p["ecosystem"],
                                        self.base(p["ecosystem"]), p["name"], p["etag"]): p
                       for p in ready[start:start + step]}
            for future, package in futures.items():
                self._polled(package, future)

    def _polled(self, package: RowMapping, future: Future[Any]) -> None:
        now = self.clock()
        label = f"{package['ecosystem']}:{package['name']}"
        host = net.host_of(self.base(package["ecosystem"]))
        try:
            poll: sources.Poll = future.result()
        except FetchError as exc:
            # A host already paused is not an error of its own: do not lengthen its pause.
            pause = (self.budget.paused(host) if isinstance(exc, net.HostPaused)
                     else self.budget.failed(host))
            delay = max(pause, net.backoff(package["failures"], self.cfg.politeness.backoff_base,
                                           self.cfg.politeness.max_backoff))
            self.store.poll_failed(package["id"], now, str(exc), now + delay)
            log.warning("%s: %s; next poll in %.1f s", label, exc, delay)
            return
        self.budget.succeeded(host)
        # An npm package announced by the feed is read once; if its document is not there yet
        # (a replica behind the feed), it is asked again until its watch window closes.
        once = package["origin"] == "feed" and package["ecosystem"] == "npm" and not poll.missing
        next_poll = now + (NEVER if once else self.cfg.interval)
        newest = latest(package["ecosystem"], [f.version for f in poll.releases])
        added = self.store.poll_succeeded(
            package, poll.releases, poll.etag, now, next_poll, backfill=self.cfg.backfill,
            latest=newest, recheck_seconds=self.cfg.recheck_days * DAY, recent=DAY)
        if added:
            log.info("%s: %d release(s) to scan", label, added)

    # -- releases -----------------------------------------------------------------------------
    def process_releases(self) -> None:
        """Scan pending releases, ``concurrency`` at a time, for at most one interval."""
        deadline = self.clock() + max(self.cfg.interval, 1.0)
        running: dict[Future[Outcome], RowMapping] = {}
        while not self.stopping.is_set():
            if self.clock() < deadline:
                free = self.cfg.concurrency - len(running)
                busy = [r["id"] for r in running.values()]
                for row in self.store.claim(self.clock(), free, busy) if free else []:
                    failpoint("claimed")
                    running[self.pool.submit(self._process, row)] = row
            if not running:
                return
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for future in done:
                self._processed(running.pop(future), future)

    def _process(self, row: RowMapping) -> Outcome:
        previous = (self.store.release(row["ecosystem"], row["name"], row["previous"])
                    if row["previous"] else None)
        return process(row, previous, self.policy, self.client, self.cache,
                       self.cfg.hosts(row["ecosystem"]))

    def _processed(self, row: RowMapping, future: Future[Outcome]) -> None:
        now = self.clock()
        label = spec(row["ecosystem"], row["name"], row["version"])
        try:
            outcome = future.result()
        except Retry as exc:
            if exc.gone and row["attempts"] + 1 >= GIVE_UP_ATTEMPTS:
                self.store.give_up(row["id"], f"not downloadable: {exc}", now)
                log.warning("%s: %s; gave up after %d attempts", label, exc, GIVE_UP_ATTEMPTS)
                return
            delay = net.backoff(row["attempts"], self.cfg.politeness.backoff_base,
                                self.cfg.politeness.max_backoff)
            self.store.retry_later(row["id"], str(exc), now + delay)
            log.warning("%s: %s; retrying in %.1f s", label, exc, delay)
            return
        except Exception as exc:  # noqa: BLE001 - one release never stops the watcher
            error = f"internal error: {type(exc).__name__}: {exc}"
            log.exception("%s: internal error", label)
            if row["attempts"] + 1 >= GIVE_UP_ATTEMPTS:  # a bug, not an outage: bounded
                self.store.give_up(row["id"], error, now)
                return
            self.store.retry_later(row["id"], error, now + self.cfg.politeness.max_backoff)
            return
        failpoint("scanned")
        queued = self._alerts_for(row, outcome.findings)
        self.store.complete(row["id"], outcome.findings, queued, now, error=outcome.error,
                            files=outcome.files)
        failpoint("stored")
        worst = max((f.severity for f in outcome.findings), default=None)
        log.log(logging.WARNING if outcome.error else logging.INFO,
                "%s: scanned %d file(s), %d new finding(s)%s%s", label, outcome.files,
                len(outcome.findings), f" (worst: {worst.label})" if worst is not None else "",
                f"; error: {outcome.error}" if outcome.error else "")

    def _alerts_for(self, row: RowMapping, found: tuple[Finding, ...]) -> list[NewAlert]:
        queued = []
        registry = self.base(row["ecosystem"])
        for finding in found:
            if not alerts.wanted(finding, self.cfg.min_severity):
                continue
            doc = alerts.payload(row, finding, registry)
            for channel in self.channels:
                queued.append(NewAlert(finding.fingerprint, channel, int(finding.severity),
                                       finding.rule, doc["summary"], doc))
        return queued

    # -- alerts -------------------------------------------------------------------------------
    def deliver_alerts(self) -> None:
        """Send due alerts. A channel that fails (or asked for a pause) is not tried again in
        this pass: its other alerts wait as long as it does, without spending attempts, so a
        receiver that hangs costs one timeout per backoff, not one per queued alert."""
        resume: dict[str, float] = {}  # channel -> when it may be tried again
        for alert in self.store.due_alerts(self.clock(), limit=200, skip=self.deferred):
            channel = alert["channel"]
            hook = self.hooks.get(channel)
            if channel not in resume and channel not in self.deferred and hook is not None:
                paused = self.budget.paused(net.host_of(hook.url))
                if self.once and paused > QUICK_RETRY:
                    self._defer(channel, f"its receiver asked for a pause of {paused:.0f} s")
                elif paused > 0:  # the receiver asked for a pause: wait it out, not blocking
                    resume[channel] = self.clock() + paused
            if channel in self.deferred:  # --once: left pending for the next run, untouched
                continue
            if channel in resume:
                self.store.postpone_alert(alert["id"], resume[channel])
                continue
            try:
                if channel == "log":
                    self._log_line(json.loads(alert["payload"]))
                elif hook is None:
                    raise RuntimeError("this channel is no longer configured")
                else:
                    alerts.deliver(self.client, hook, json.loads(alert["payload"]),
                                   alert["alert_key"])
            except Exception as exc:  # noqa: BLE001 - an unreachable receiver is retried
                resume[channel] = self._alert_failed(alert, hook, exc)
                continue
            failpoint("sent")
            self.store.alert_sent(alert["id"], self.clock())

    def _alert_failed(self, alert: RowMapping, hook: Webhook | None, exc: Exception) -> float:
        """Record a failed attempt; returns when the channel may be tried again."""
        attempts = alert["attempts"] + 1
        give_up = attempts >= self.cfg.max_alert_attempts
        paused = self.budget.paused(net.host_of(hook.url)) if hook else 0.0
        delay = max(net.backoff(attempts - 1, self.cfg.politeness.backoff_base,
                                self.cfg.politeness.max_backoff), paused)
        channel, error = alert["channel"], f"{type(exc).__name__}: {exc}"
        tries = self.channel_failures[channel] = self.channel_failures.get(channel, 0) + 1
        if self.once and not give_up:
            if tries > 1 or paused > QUICK_RETRY:  # the quick retry failed too: next run
                self.store.alert_failed(alert["id"], error, self.clock(), False)
                self._defer(channel, str(exc))
                return self.clock()
            delay = max(min(delay, QUICK_RETRY), paused)
        retry_at = self.clock() + delay
        self.store.alert_failed(alert["id"], error, retry_at, give_up)
        log.warning("alert %s via %s failed (%s); %s", alert["alert_key"], channel,
                    exc, "giving up" if give_up else f"retrying in {delay:.1f} s")
        return retry_at

    def _defer(self, channel: str, reason: str) -> None:
        """``--once``: leave the channel's alerts pending (due) for the next run."""
        self.deferred[channel] = reason
        log.warning("alerts via %s left pending for the next run (%s)", channel, reason)

    def _log_line(self, doc: dict[str, Any]) -> None:
        todo = " | ".join(doc["actions"])
        evidence = ", ".join(f"{k}={v}" for k, v in doc["finding"]["evidence"].items())
        self.out.write(f"seawall-watch ALERT {doc['summary']} [{evidence}] -> {todo}\n")
        self.out.flush()


def install_signal_handlers(watcher: Watcher) -> None:
    def stop(_signum: int, _frame: object) -> None:
        watcher.stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)


