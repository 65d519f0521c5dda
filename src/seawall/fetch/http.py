"""One way to talk to registries: a named User-Agent, timeouts, capped reads, retries, plain errors.

Every failure leaves this module as a ``FetchError`` whose message can be shown to a user as is.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import httpx
import msgspec

from seawall import __version__
from seawall.limits import GiB, MiB

USER_AGENT = f"seawall/{__version__}"
TIMEOUT = httpx.Timeout(30.0, connect=10.0)
"""Read timeout is per chunk, so a slow multi-GB download is fine as long as bytes keep coming."""
MAX_DOCUMENT_BYTES = 256 * MiB
"""Packuments of very busy npm packages reach tens of MB; anything far past that is hostile."""
MAX_ARTIFACT_BYTES = 4 * GiB
RETRIES = 2
RETRY_STATUS = frozenset({429, 502, 503, 504})
MAX_RETRY_AFTER = 10.0

T = TypeVar("T")


class FetchError(Exception):
    """Resolution failed; the message is meant for the user."""


class NotFound(FetchError):
    """The registry answered 404/410."""


def new_client() -> httpx.Client:
    # No custom transport: that would make httpx ignore HTTP(S)_PROXY / NO_PROXY.
    return httpx.Client(headers={"User-Agent": USER_AGENT}, timeout=TIMEOUT, follow_redirects=True)


def redact(url: str) -> str:
    """The URL without any ``user:password@`` part, safe for reports and logs."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]))


def get(client: httpx.Client, url: str, consume: Callable[[httpx.Response], T], *, what: str,
        headers: dict[str, str] | None = None) -> T:
    """GET ``url`` and hand the 200 response to ``consume``.

    Overloaded servers (429, 502-504) and connections dropped mid-transfer are retried, with
    ``consume`` run afresh each time; refused connections and timeouts are not, so a
    registry that is down fails fast.
    """
    for attempt in range(RETRIES + 1):
        last = attempt == RETRIES
        try:
            with client.stream("GET", url, headers=headers) as response:
                if response.status_code in RETRY_STATUS and not last:
                    delay = _retry_after(response, attempt)
                else:
                    _check_status(response, url, what)
                    return consume(response)
        except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
            if last:
                raise FetchError(_describe(exc, url, what)) from None
            delay = _backoff(attempt)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise FetchError(_describe(exc, url, what)) from None
        time.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


def read_capped(response: httpx.Response, *, what: str, limit: int = MAX_DOCUMENT_BYTES,
                budget: float | None = None) -> bytes:
    """The body, refused past ``limit`` bytes or, with ``budget``, past that many seconds
    (a server dripping bytes never trips the per-read timeout)."""
    check_length(response, what=what, limit=limit)
    deadline = time.monotonic() + budget if budget is not None else None
    body = bytearray()
    for chunk in response.iter_bytes():
        body += chunk
        if len(body) > limit:
            raise FetchError(f"{what} is larger than {limit:,} bytes; refusing it")
        if deadline is not None and time.monotonic() > deadline:
            raise FetchError(f"{what} took longer than {budget:.0f} s to arrive from "
                             f"{redact(str(response.url))}; refusing it")
    return bytes(body)


def json_object(body: bytes, what: str) -> dict[str, Any]:
    """Decode a registry document that must be a JSON object; ``what`` names it in errors."""
    try:
        doc = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise FetchError(f"the registry sent {what} that is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise FetchError(f"the registry sent {what} that is not a JSON object")
    return doc


def check_length(response: httpx.Response, *, what: str, limit: int) -> None:
    """Refuse early when the server announces more than ``limit`` bytes."""
    length = response.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise FetchError(f"{what} is {int(length):,} bytes, over the {limit:,}-byte limit")


def _check_status(response: httpx.Response, url: str, what: str) -> None:
    code = response.status_code
    if code == 200:
        return
    where = redact(url)
    if code in (404, 410):
        raise NotFound(f"{what} not found (HTTP {code} from {where})")
    if code in (401, 403):
        raise FetchError(f"access denied (HTTP {code}) fetching {what} from {where}; "
                         "seawall sends no registry credentials")
    reason = f" {response.reason_phrase}" if response.reason_phrase else ""
    raise FetchError(f"HTTP {code}{reason} fetching {what} from {where}")


def _retry_after(response: httpx.Response, attempt: int) -> float:
    value = response.headers.get("retry-after", "")
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    return _backoff(attempt)


def _backoff(attempt: int) -> float:
    return 0.5 * 2.0**attempt


def _describe(exc: Exception, url: str, what: str) -> str:
    where = redact(url)
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out fetching {what} from {where}"
    if isinstance(exc, httpx.ConnectError):
        host = urlsplit(url).hostname or where
        return f"could not connect to {host} for {what}: {exc or 'connection failed'}"
    if isinstance(exc, httpx.TooManyRedirects):
        return f"too many redirects fetching {what} from {where}"
    if isinstance(exc, (httpx.UnsupportedProtocol, httpx.InvalidURL)):
        return f"cannot fetch {what}: unsupported or invalid URL {where}"
    return f"network error fetching {what} from {where}: {exc or type(exc).__name__}"
