"""``watch.toml``: what to watch, how often, how politely, and where alerts go.

The gate policy is the ``[policy]`` table, read by ``seawall.policy.from_mapping`` with exactly
the keys ``seawall.toml`` accepts, so a team's scan gate and its watcher agree. Secrets (a
webhook's signing key, a database password) are named by environment variable, never written
into the file, so the file can be committed and shown.
"""

from __future__ import annotations

import math

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlsplit

from seawall import __version__
from seawall.findings import Severity
from seawall.policy import ConfigError, Policy, from_mapping

DEFAULT_NPM = "https://registry.npmjs.org/"
DEFAULT_PYPI = "https://pypi.org/simple/"
BACKFILL = ("latest", "all", "none")
FORMATS = ("seawall", "slack")
TOP_KEYS = {"interval", "database", "cache-dir", "concurrency", "contact", "recheck-days",
            "backfill", "index", "download-hosts", "lease-seconds", "npm", "pypi", "policy",
            "alerts", "politeness"}
PYPI_FILES = {"pypi.org": "files.pythonhosted.org"}
"""Where a public index keeps its files (on another host than its pages)."""


MAX_LEASE = 86_400
"""A lease longer than a day only delays the takeover after a crash (and an unbounded one
breaks the heartbeat's wait and the times shown)."""

@dataclass(frozen=True)
class Webhook:
    url: str
    secret_env: str | None = None
    format: str = "seawall"
    name: str = "webhook"

    @property
    def secret(self) -> bytes | None:
        value = os.environ.get(self.secret_env, "") if self.secret_env else ""
        return value.encode() if value else None


@dataclass(frozen=True)
class Politeness:
    requests_per_second: float = 5.0
    """Per host: a token bucket refilled at this rate..."""
    burst: int = 10
    """...holding at most this many requests."""
    backoff_base: float = 1.0
    """First delay after an error; doubled per consecutive error, with jitter."""
    max_backoff: float = 600.0
    timeout: float = 30.0


@dataclass(frozen=True)
class WatchConfig:
    source: Path
    database: str
    """A SQLAlchemy URL (``sqlite:///…`` or ``postgresql+psycopg://…``)."""
    interval: float = 300.0
    concurrency: int = 4
    contact: str = ""
    recheck_days: float = 14.0
    backfill: str = "latest"
    index: Path | None = None
    cache_dir: Path | None = None
    download_hosts: tuple[str, ...] = ()
    """Hosts files may come from besides the registry's own (a CDN, a blob store)."""
    npm_registry: str = DEFAULT_NPM
    npm_packages: tuple[str, ...] = ()
    npm_scopes: tuple[str, ...] = ()
    npm_changes: str | None = None
    npm_changes_since: str = "now"
    """Where a first read of the changes feed starts: ``now``, or a sequence (``0`` replays all)."""
    pypi_index: str = DEFAULT_PYPI
    pypi_projects: tuple[str, ...] = ()
    pypi_updates: str | None = None
    hunt_all: bool = False
    """With an index: scan every release the feeds announce, not only our own packages."""
    policy: Policy = field(default_factory=Policy)
    min_severity: Severity = Severity.HIGH
    stdout: bool = True
    webhooks: tuple[Webhook, ...] = ()
    max_alert_attempts: int = 30
    politeness: Politeness = field(default_factory=Politeness)
    lease_seconds: float | None = None
    """How long the database lease outlives its last renewal (None: 3 polls, at least 60 s):
    how soon another watcher may take over from one that was killed."""

    @property
    def lease(self) -> float:
        from seawall.watch.lease import default_seconds

        return self.lease_seconds if self.lease_seconds is not None else default_seconds(
            self.interval)

    @property
    def user_agent(self) -> str:
        """Unique per deployment, as PyPI and npm ask of automated clients."""
        contact = f"; +{self.contact}" if self.contact else ""
        return f"seawall-watch/{__version__} (+https://github.com/seawall/seawall{contact})"

    def engine_settings(self) -> Policy:
        """The policy, with the fingerprint index handed to the ``codecopy`` detector."""
        if self.index is None:
            return self.policy
        import dataclasses

        detectors = dict(self.policy.detectors)
        detectors["codecopy"] = {**detectors.get("codecopy", {}), "index": str(self.index)}
        return dataclasses.replace(self.policy, detectors=detectors)

    def hosts(self, ecosystem: str) -> frozenset[str]:
        """Hosts the watcher downloads files from: a registry document pointing elsewhere is
        refused (and the release recorded with that error), so a hostile or compromised
        registry cannot send the watcher to internal addresses."""
        from seawall.watch.net import host_of

        own = host_of(self.npm_registry if ecosystem == "npm" else self.pypi_index)
        extra = {PYPI_FILES[own]} if ecosystem == "pypi" and own in PYPI_FILES else set()
        return frozenset({own, *extra, *(h.lower() for h in self.download_hosts)})

    def watched(self) -> list[tuple[str, str]]:
        return [("npm", n) for n in self.npm_packages] + [("pypi", p) for p in self.pypi_projects]


def load(path: Path, *, database: str | None = None) -> WatchConfig:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    try:
        return from_dict(data, path, database=database)
    except (TypeError, ValueError, KeyError) as exc:
        raise ConfigError(f"{path}: {exc}") from None


def from_dict(data: Mapping[str, Any], path: Path, *, database: str | None = None) -> WatchConfig:
    _known(data, TOP_KEYS, "top level")
    base = path.parent
    npm, pypi = _table(data, "npm"), _table(data, "pypi")
    alerts, polite = _table(data, "alerts"), _table(data, "politeness")
    _known(npm, {"registry", "packages", "scopes", "changes", "changes-since", "hunt-all"},
           "[npm]")
    _known(pypi, {"index", "projects", "updates", "hunt-all"}, "[pypi]")
    _known(alerts, {"min-severity", "stdout", "webhook", "max-attempts"}, "[alerts]")
    _known(polite, {"requests-per-second", "burst", "backoff-base", "max-backoff", "timeout"},
           "[politeness]")
    backfill = str(data.get("backfill", "latest"))
    if backfill not in BACKFILL:
        raise ValueError(f"backfill must be one of {', '.join(BACKFILL)}")
    interval = float(data.get("interval", 300))
    concurrency = int(data.get("concurrency", 4))
    if interval <= 0 or concurrency < 1:
        raise ValueError("interval must be > 0 and concurrency >= 1")
    lease = data.get("lease-seconds")
    if lease is not None and (isinstance(lease, bool) or not isinstance(lease, (int, float))
                              or not math.isfinite(lease) or not 0.1 <= lease <= MAX_LEASE):
        raise ValueError(f"lease-seconds must be a number of seconds from 0.1 to {MAX_LEASE:,}"
                         " (a day)")
    scopes = tuple(s if s.startswith("@") else "@" + s for s in _strings(npm, "scopes"))
    hooks = tuple(_webhook(item, n) for n, item in enumerate(alerts.get("webhook", [])))
    if len({h.name for h in hooks}) != len(hooks):
        raise ValueError("each [[alerts.webhook]] needs its own name")
    index = data.get("index")
    cache = data.get("cache-dir")
    return WatchConfig(
        source=path,
        database=database_url(database or os.environ.get("SEAWALL_WATCH_DATABASE")
                              or str(data.get("database", "watch.db")), base),
        interval=interval,
        concurrency=concurrency,
        contact=str(data.get("contact", "")),
        recheck_days=float(data.get("recheck-days", 14)),
        backfill=backfill,
        index=(base / str(index)) if index else None,
        cache_dir=(base / str(cache)) if cache else None,
        download_hosts=tuple(_strings(data, "download-hosts")),
        npm_registry=_http(str(npm.get("registry", DEFAULT_NPM)), "[npm] registry"),
        npm_packages=tuple(_npm_name(n) for n in _strings(npm, "packages")),
        npm_scopes=scopes,
        npm_changes=_http(str(npm["changes"]), "[npm] changes") if npm.get("changes") else None,
        npm_changes_since=str(npm.get("changes-since", "now")),
        pypi_index=_http(str(pypi.get("index", DEFAULT_PYPI)), "[pypi] index"),
        pypi_projects=tuple(_pypi_name(n) for n in _strings(pypi, "projects")),
        pypi_updates=_http(str(pypi["updates"]), "[pypi] updates") if pypi.get("updates") else None,
        hunt_all=bool(npm.get("hunt-all", False) or pypi.get("hunt-all", False)),
        policy=from_mapping(_table(data, "policy"), source=f"{path} [policy]"),
        min_severity=Severity.parse(str(alerts.get("min-severity", "high"))),
        stdout=bool(alerts.get("stdout", True)),
        webhooks=hooks,
        max_alert_attempts=int(alerts.get("max-attempts", 30)),
        lease_seconds=float(lease) if lease is not None else None,
        politeness=Politeness(
            requests_per_second=float(polite.get("requests-per-second", 5.0)),
            burst=int(polite.get("burst", 10)),
            backoff_base=float(polite.get("backoff-base", 1.0)),
            max_backoff=float(polite.get("max-backoff", 600.0)),
            timeout=float(polite.get("timeout", 30.0)),
        ),
    )


def database_url(value: str, base: Path) -> str:
    """A path means SQLite; ``postgresql://`` URLs are driven by psycopg 3."""
    if "://" not in value:
        return f"sqlite:///{(base / value).resolve()}"
    scheme = value.split("://", 1)[0]
    if scheme in ("postgres", "postgresql"):
        return "postgresql+psycopg://" + value.split("://", 1)[1]
    if scheme in ("postgresql+psycopg", "sqlite"):
        return value
    raise ValueError(f"database must be a file path, sqlite:/// or postgresql:// URL, not {scheme}://")


def _npm_name(name: str) -> str:
    from seawall.fetch import npm
    from seawall.fetch.http import FetchError

    try:
        parsed = npm.parse_spec(name)
    except FetchError as exc:
        raise ValueError(str(exc)) from None
    if parsed != (name, None):
        raise ValueError(f"[npm] packages takes names without versions, not {name!r}")
    return name


def _pypi_name(name: str) -> str:
    from seawall.fetch import pypi
    from seawall.fetch.http import FetchError

    try:
        parsed, version = pypi.parse_spec(name)
    except FetchError as exc:
        raise ValueError(str(exc)) from None
    if version is not None:
        raise ValueError(f"[pypi] projects takes names without versions, not {name!r}")
    return str(parsed)


def _webhook(item: Any, n: int) -> Webhook:
    """``url``, or ``url-env`` naming a variable that holds it: a Slack incoming-webhook URL
    is itself a credential, so it may stay out of the file like the signing secret."""
    if not isinstance(item, dict):
        raise ValueError("each [[alerts.webhook]] must be a table")
    if "secret" in item:
        raise ValueError("put the webhook secret in an environment variable (secret-env)")
    _known(item, {"url", "url-env", "secret-env", "format", "name"}, "[[alerts.webhook]]")
    url = item.get("url")
    if "url-env" in item:
        url = os.environ.get(str(item["url-env"]))
        if not url:
            raise ValueError(f"webhook url-env: ${item['url-env']} is not set")
    if not isinstance(url, str):
        raise ValueError("each [[alerts.webhook]] needs a url (or url-env)")
    fmt = str(item.get("format", "seawall"))
    if fmt not in FORMATS:
        raise ValueError(f"webhook format must be one of {', '.join(FORMATS)}")
    return Webhook(url=_http(url, "webhook url"), secret_env=item.get("secret-env"),
                   format=fmt, name=str(item.get("name", f"webhook-{n + 1}")))


def _http(url: str, what: str) -> str:
    if urlsplit(url).scheme not in ("http", "https"):
        raise ValueError(f"{what} must be an http(s) URL")
    return url


def _table(data: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ValueError(f"[{key}] must be a table")
    return value


def _strings(data: Mapping[str, Any], key: str) -> list[str]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{key!r} must be a list of strings")
    return value


def _known(data: Mapping[str, Any], known: set[str], where: str) -> None:
    unknown = set(data) - known
    if unknown:
        raise ValueError(f"unknown key(s) in {where}: {', '.join(sorted(unknown))}")
