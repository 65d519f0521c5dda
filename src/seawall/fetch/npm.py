"""``npm:NAME[@VERSION|@TAG]``: read the packument, pick a version, fetch and verify its tarball.

The registry is chosen the way npm chooses it: ``@scope:registry`` or ``registry`` from the
environment, the project ``.npmrc`` or the user ``.npmrc``. Mirrors may serve reduced packuments
(only the ``latest`` dist-tag, keys missing), so everything read from one is optional.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

import httpx

from seawall.engine import Target
from seawall.fetch.cache import Cache
from seawall.fetch.http import FetchError, NotFound, get, json_object, read_capped, redact
from seawall.fetch.integrity import Expected, from_hex, parse_sri

DEFAULT_REGISTRY = "https://registry.npmjs.org/"
ACCEPT = "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*"
"""npm's own header: the abbreviated packument when the registry offers it (far smaller)."""

# validate-npm-package-name, plus upper case for packages published before it was forbidden.
_NAME = re.compile(r"^(?:@[a-z0-9~-][a-z0-9._~-]*/)?[a-z0-9~-][a-z0-9._~-]*$", re.IGNORECASE)
_ENV_REF = re.compile(r"\$\{([^}]+)\}")
_SEMVER = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$")


def resolve(body: str, *, client: httpx.Client, cache: Cache) -> Target:
    name, wanted = parse_spec(body)
    registry = registry_for(name)
    url = registry + name.replace("/", "%2f")
    try:
        doc = get(client, url, lambda r: json_object(read_capped(r, what=f"{name} packument"), "a packument"),
                  what=f"npm package {name}", headers={"Accept": ACCEPT})
    except NotFound:
        raise FetchError(f"npm package {name} not found on {redact(registry)}") from None
    version = pick_version(doc, name, wanted, registry)
    label = f"{name}@{version}"
    dist = _dict(_dict(_dict(doc.get("versions")).get(version)).get("dist"))
    tarball = tarball_url(dist, url, registry, label)
    expected = expected_digest(dist)
    filename = unquote(urlsplit(tarball).path.rsplit("/", 1)[-1])
    try:
        path, cached = cache.fetch(client, tarball, filename, expected,
                                   what=f"{label} tarball {filename}")
    except FetchError as exc:
        raise FetchError(f"{label}: {exc}") from None
    meta: dict[str, Any] = {
        "ecosystem": "npm", "registry": redact(registry), "name": name, "version": version,
        "tarball": redact(tarball), "integrity": expected.sri() if expected else None,
        "cached": cached,
    }
    if wanted is not None and wanted != version:
        meta["requested"] = wanted
    previous = previous_version(_dict(doc.get("versions")), version)
    meta["previous"] = f"npm:{name}@{previous}" if previous else None
    return Target(name=f"npm:{label}", path=path, meta=meta)


def parse_spec(body: str) -> tuple[str, str | None]:
    """``@scope/name@1.2.3`` -> (``@scope/name``, ``1.2.3``); no version -> None."""
    at = body.rfind("@")
    name, wanted = (body[:at], body[at + 1:].strip()) if at > 0 else (body, "")
    name = name.strip()
    if not name or len(name) > 214 or not _NAME.match(name):
        raise FetchError(f"not a valid npm package name: {name!r} (expected npm:NAME[@VERSION], "
                         "e.g. npm:@scope/name@1.2.3)")
    return name, wanted or None


def pick_version(doc: Mapping[str, Any], name: str, wanted: str | None, registry: str) -> str:
    versions = _dict(doc.get("versions"))
    tags = {k: v for k, v in _dict(doc.get("dist-tags")).items() if isinstance(v, str)}
    if not versions:
        raise FetchError(f"npm package {name} has no published versions on {redact(registry)}")
    if wanted is not None:
        if wanted in versions:
            return wanted
        if tags.get(wanted) in versions:
            return tags[wanted]
        cleaned = wanted.lstrip("=v")
        if cleaned in versions:
            return cleaned
        latest = tags.get("latest") or _highest(versions)
        known_tags = ", ".join(sorted(tags)) or "none"
        raise FetchError(f"npm package {name} has no version or dist-tag {wanted!r} on "
                         f"{redact(registry)} (latest is {latest}; dist-tags: {known_tags})")
    if tags.get("latest") in versions:
        return tags["latest"]
    # A reduced packument without dist-tags: the highest release is what `latest` almost always is.
    best = _highest(versions)
    if best is None:
        raise FetchError(f"npm package {name} has no 'latest' dist-tag and no semver versions")
    return best


def expected_digest(dist: Mapping[str, Any]) -> Expected | None:
    """``dist.integrity`` (SRI), else ``dist.shasum`` (sha1 hex)."""
    integrity = dist.get("integrity")
    if isinstance(integrity, str) and (expected := parse_sri(integrity)) is not None:
        return expected
    shasum = dist.get("shasum")
    if isinstance(shasum, str):
        hexed = from_hex([("sha1", shasum.strip())])
        if hexed is not None:
            return Expected(hexed.algorithm, hexed.digests)  # shown as SRI, like npm does
    return None


def tarball_url(dist: Mapping[str, Any], packument_url: str, registry: str, label: str) -> str:
    tarball = dist.get("tarball")
    if not isinstance(tarball, str) or not tarball.strip():
        raise FetchError(f"{label}: the registry lists no tarball for this version")
    url = replace_registry_host(urljoin(packument_url, tarball.strip()), registry)
    if urlsplit(url).scheme not in ("http", "https"):
        raise FetchError(f"{label}: tarball URL is not http(s): {redact(url)}")
    return url


def replace_registry_host(tarball: str, registry: str) -> str:
    """npm's default ``replace-registry-host=npmjs``: mirrors keep upstream tarball URLs."""
    upstream = DEFAULT_REGISTRY
    if tarball.startswith(upstream) and registry.rstrip("/") + "/" != upstream:
        return registry.rstrip("/") + "/" + tarball[len(upstream):]
    return tarball


# -- configuration --------------------------------------------------------------------------

def registry_for(name: str, *, env: Mapping[str, str] | None = None, cwd: Path | None = None,
                 home: Path | None = None) -> str:
    """The registry npm would use for ``name``, with a trailing slash."""
    env = os.environ if env is None else env
    home = Path.home() if home is None else home
    cwd = Path.cwd() if cwd is None else cwd
    user = _env(env, "userconfig") or str(home / ".npmrc")
    settings: dict[str, str] = {}
    for path in (Path(user).expanduser(), cwd / ".npmrc"):  # later wins, as in npm
        settings.update(read_npmrc(path, env))
    if from_env := _env(env, "registry"):
        settings["registry"] = from_env
    scope = name.split("/", 1)[0] if name.startswith("@") else None
    registry = ((scope and settings.get(f"{scope}:registry")) or settings.get("registry")
                or DEFAULT_REGISTRY)
    if urlsplit(registry).scheme not in ("http", "https"):
        raise FetchError(f"npm registry {redact(registry)!r} is not an http(s) URL")
    return registry.rstrip("/") + "/"


def read_npmrc(path: Path, env: Mapping[str, str]) -> dict[str, str]:
    """``key=value`` lines of an .npmrc, with ``${VAR}`` expanded. Only registry keys are kept:
    credentials in the same file are never read into memory we keep."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {}
    settings: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        key = key.strip()
        wanted = key == "registry" or key.endswith(":registry")
        if not sep or not wanted or key.startswith(("#", ";")):
            continue
        value = value.strip().strip("\"'")
        settings[key] = _ENV_REF.sub(lambda m: env.get(m.group(1), m.group(0)), value)
    return settings


def _env(env: Mapping[str, str], key: str) -> str | None:
    return env.get(f"npm_config_{key}") or env.get(f"NPM_CONFIG_{key.upper()}") or None


# -- helpers --------------------------------------------------------------------------------

def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def previous_version(versions: Mapping[str, Any], version: str) -> str | None:
    """The highest release below ``version`` (pre-releases only when ``version`` is one)."""
    current = _SEMVER.match(version)
    if current is None:
        return None
    key = _semver_key(current)
    candidates = [(k, m) for k in versions if (m := _SEMVER.match(k)) and _semver_key(m) < key]
    if current.group(4) is None:
        candidates = [(k, m) for k, m in candidates if m.group(4) is None]
    return max(candidates, key=lambda item: _semver_key(item[1]))[0] if candidates else None


def _highest(versions: Mapping[str, Any]) -> str | None:
    parsed = [(key, m) for key in versions if (m := _SEMVER.match(key))]
    stable = [(key, m) for key, m in parsed if m.group(4) is None] or parsed
    if not stable:
        return None
    return max(stable, key=lambda item: _semver_key(item[1]))[0]


def _semver_key(m: re.Match[str]) -> tuple[Any, ...]:
    core = (int(m.group(1)), int(m.group(2)), int(m.group(3)))
    if m.group(4) is None:
        return (*core, 1, ())
    ids = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in m.group(4).split("."))
    return (*core, 0, ids)
