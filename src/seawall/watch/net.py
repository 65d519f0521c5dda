"""Polite HTTP for a long-running client: per-host budgets, 429/Retry-After, backoff with jitter.

Every request (documents, feeds, downloads through ``seawall.fetch``) goes through one
``httpx.Client`` whose request hook takes a token from its host's bucket and waits out any
pause the host asked for. A ``429`` pauses the whole host for its ``Retry-After``; an error
pauses it for an exponentially growing, jittered delay. The watcher never drops work because a
host is unwell: it comes back to it later.
"""

from __future__ import annotations

import email.utils
import random
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx

from seawall.fetch.http import FetchError, NotFound, read_capped, redact
from seawall.limits import MiB
from seawall.watch.config import Politeness

MAX_FEED_BYTES = 64 * MiB
MAX_PAUSE = 3600.0
DEADLINE_FACTOR = 10
"""A document must arrive within this many read timeouts in all (httpx's are per read)."""
MAX_WAIT = 60.0
"""Longest a request waits for its host's pause; longer pauses fail it (``HostPaused``)."""


class HostPaused(FetchError):
    """The host asked for a long pause (or the watcher is stopping): reschedule, do not wait."""


def backoff(attempt: int, base: float, cap: float) -> float:
    """Full-jitter exponential backoff (AWS architecture blog): uniform in [d/2, d]."""
    delay = min(cap, base * 2.0 ** max(0, attempt))
    return random.uniform(delay / 2, delay)


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_PAUSE)
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, min(when - (now if now is not None else time.time()), MAX_PAUSE))


@dataclass
class _Host:
    tokens: float
    stamp: float
    paused_until: float = 0.0
    errors: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class Budget:
    """A token bucket and a pause per host; ``acquire`` blocks until a request may go out."""

    def __init__(self, polite: Politeness, clock=time.monotonic, sleep=time.sleep,  # type: ignore[no-untyped-def]
                 stop: threading.Event | None = None) -> None:
        self.polite = polite
        self.clock, self.sleep, self.stop = clock, sleep, stop
        self._hosts: dict[str, _Host] = {}
        self._lock = threading.Lock()

    def host(self, name: str) -> _Host:
        with self._lock:
            if name not in self._hosts:
                self._hosts[name] = _Host(tokens=float(self.polite.burst), stamp=self.clock())
            return self._hosts[name]

    def acquire(self, name: str) -> None:
        """Wait for a token; a pause longer than ``MAX_WAIT`` (or a stop) fails the request at
        once with ``HostPaused``, so no thread (the loop's, or a shutdown) blocks for an hour on
        a ``Retry-After`` and the caller reschedules the work instead."""
        state = self.host(name)
        while True:
            if self.stop is not None and self.stop.is_set():
                raise HostPaused(f"not asking {name}: the watcher is stopping")
            with state.lock:
                now = self.clock()
                rate = self.polite.requests_per_second
                state.tokens = min(float(self.polite.burst), state.tokens + (now - state.stamp) * rate)
                state.stamp = now
                wait = max(state.paused_until - now, 0.0)
                if wait > MAX_WAIT:
                    raise HostPaused(f"{name} is paused for another {wait:.0f} s (429/503 or "
                                     "errors); trying later")
                if wait == 0.0 and state.tokens >= 1.0:
                    state.tokens -= 1.0
                    return
                if wait == 0.0:
                    wait = (1.0 - state.tokens) / rate
            self.sleep(min(wait, 1.0))

    def paused(self, name: str) -> float:
        """Seconds until ``name`` may be asked again (0 when it may now)."""
        return max(self.host(name).paused_until - self.clock(), 0.0)

    def pause(self, name: str, seconds: float) -> None:
        state = self.host(name)
        with state.lock:
            state.paused_until = max(state.paused_until, self.clock() + min(seconds, MAX_PAUSE))

    def failed(self, name: str) -> float:
        """Record an error for ``name``; pause it with backoff and return the delay."""
        state = self.host(name)
        with state.lock:
            state.errors += 1
            attempt = state.errors - 1
        delay = backoff(attempt, self.polite.backoff_base, self.polite.max_backoff)
        self.pause(name, delay)
        return delay

    def succeeded(self, name: str) -> None:
        self.host(name).errors = 0


def host_of(url: str) -> str:
    return urlsplit(url).netloc.rsplit("@", 1)[-1].lower()


def new_client(polite: Politeness, user_agent: str, budget: Budget) -> httpx.Client:
    def on_request(request: httpx.Request) -> None:
        budget.acquire(host_of(str(request.url)))

    def on_response(response: httpx.Response) -> None:
        if response.status_code in (429, 503):
            delay = retry_after(response.headers.get("retry-after"))
            host = host_of(str(response.request.url))
            if delay is not None:
                budget.pause(host, delay)
            else:
                budget.failed(host)

    return httpx.Client(
        headers={"User-Agent": user_agent},
        timeout=httpx.Timeout(polite.timeout, connect=min(polite.timeout, 10.0)),
        follow_redirects=True,
        event_hooks={"request": [on_request], "response": [on_response]},
    )


@dataclass(frozen=True)
class Document:
    status: int  # 200 or 304
    body: bytes
    etag: str | None
    content_type: str
    url: str


def get_document(client: httpx.Client, url: str, *, accept: str, etag: str | None = None,
                 what: str, limit: int = MAX_FEED_BYTES) -> Document:
    """One conditional GET, bounded in size and total time; every failure is a ``FetchError``
    (the caller backs off)."""
    headers = {"Accept": accept}
    budget = DEADLINE_FACTOR * (client.timeout.read or 30.0)
    if etag:
        headers["If-None-Match"] = etag
    try:
        with client.stream("GET", url, headers=headers) as response:
            code = response.status_code
            if code == 304:
                return Document(304, b"", etag, "", str(response.url))
            if code in (404, 410):
                raise NotFound(f"{what} not found (HTTP {code} from {redact(url)})")
            if code != 200:
                raise FetchError(f"HTTP {code} fetching {what} from {redact(url)}")
            body = read_capped(response, what=what, limit=limit, budget=budget)
            kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
            return Document(200, body, response.headers.get("etag"), kind, str(response.url))
    except httpx.HTTPError as exc:  # refused, reset, timed out: the caller backs off
        raise FetchError(f"network error fetching {what} from {redact(url)}: "
                         f"{exc or type(exc).__name__}") from None
