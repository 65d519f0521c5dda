"""``pypi:NAME[==VERSION]``: read the project's Simple API page, then fetch every file of a release.

The page is asked for as PEP 691 JSON and parsed as HTML when that is what comes back
(pypiserver, older mirrors). Versions come from wheel and sdist file names, as pip reads them;
other files are ignored. A release is scanned whole: the sdist and every wheel.
"""

from __future__ import annotations

import configparser
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urldefrag, urljoin, urlsplit

import httpx
import platformdirs
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from seawall.engine import Target
from seawall.fetch.cache import Cache
from seawall.fetch.http import FetchError, NotFound, get, json_object, read_capped, redact
from seawall.fetch.integrity import Expected, from_hex

DEFAULT_INDEX = "https://pypi.org/simple/"
ACCEPT = "application/vnd.pypi.simple.v1+json, text/html;q=0.1"
_NAME = re.compile(r"^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$", re.IGNORECASE)  # PEP 508
_HASH_FRAGMENT = re.compile(r"(sha512|sha384|sha256|sha224|sha1|md5)=([0-9a-fA-F]+)")


@dataclass(frozen=True)
class File:
    filename: str
    url: str
    expected: Expected | None
    yanked: str | None
    """None when not yanked; otherwise the reason, possibly empty."""


def resolve(body: str, *, client: httpx.Client, cache: Cache) -> Target:
    name, wanted = parse_spec(body)
    index = index_url()
    page = f"{index}{name}/"
    try:
        files = get(client, page, _parse_page, what=f"PyPI project {name}",
                    headers={"Accept": ACCEPT})
    except NotFound:
        raise FetchError(f"PyPI project {name} not found on {redact(index)}") from None
    releases = group_releases(files, name)
    version = pick_version(releases, name, wanted, index)
    label = f"{name}=={version}"
    paths: list[Path] = []
    cached_all = True
    for file in releases[version]:
        try:
            path, cached = cache.fetch(client, file.url, file.filename, file.expected,
                                       what=f"{label} file {file.filename}")
        except FetchError as exc:
            raise FetchError(f"{label}: {exc}") from None
        paths.append(path)
        cached_all = cached_all and cached
    meta: dict[str, Any] = {
        "ecosystem": "pypi", "index": redact(index), "name": name, "version": str(version),
        "files": [{"filename": f.filename, "url": redact(f.url),
                   "hash": f.expected.hex() if f.expected else None, "yanked": f.yanked}
                  for f in releases[version]],
        "cached": cached_all,
    }
    previous = previous_version(releases, version)
    meta["previous"] = f"pypi:{name}=={previous}" if previous else None
    return Target(name=f"pypi:{label}", files=paths, meta=meta)


def parse_spec(body: str) -> tuple[NormalizedName, Version | None]:
    name, sep, version = body.partition("==")
    name = name.strip()
    if not _NAME.match(name):
        raise FetchError(f"not a valid PyPI project name: {name!r} "
                         "(expected pypi:NAME or pypi:NAME==VERSION)")
    if not sep:
        return canonicalize_name(name), None
    try:
        return canonicalize_name(name), Version(version.strip())
    except InvalidVersion:
        raise FetchError(f"not a valid version for {name}: {version.strip()!r}") from None


def group_releases(files: list[File], project: NormalizedName) -> dict[Version, list[File]]:
    """Files by version; sdists first, then wheels, each by name. Unparsable names are skipped."""
    releases: dict[Version, list[File]] = {}
    for file in files:
        version = version_of(file.filename, project)
        if version is not None:
            releases.setdefault(version, []).append(file)
    for group in releases.values():
        group.sort(key=lambda f: (f.filename.endswith(".whl"), f.filename))
    return releases


def version_of(filename: str, project: NormalizedName) -> Version | None:
    try:
        if filename.endswith(".whl"):
            name, version, _, _ = parse_wheel_filename(filename)
        else:
            name, version = parse_sdist_filename(filename)
    except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
        return None
    return version if name == project else None


def pick_version(releases: Mapping[Version, list[File]], name: str, wanted: Version | None,
                 index: str) -> Version:
    if not releases:
        raise FetchError(f"PyPI project {name} has no wheel or sdist files on {redact(index)}")
    if wanted is not None:
        if wanted in releases:
            return next(v for v in releases if v == wanted)
        raise FetchError(f"PyPI project {name} has no version {wanted} on {redact(index)} "
                         f"(latest is {_latest(releases) or 'yanked'})")
    latest = _latest(releases)
    if latest is None:
        raise FetchError(f"every release of PyPI project {name} is yanked; name a version "
                         f"explicitly (pypi:{name}==VERSION)")
    return latest


def previous_version(releases: Mapping[Version, list[File]], version: Version) -> Version | None:
    """The highest non-yanked release below ``version`` (pre-releases only if it is one)."""
    live = [v for v, files in releases.items()
            if v < version and any(f.yanked is None for f in files)
            and (version.is_prerelease or not v.is_prerelease)]
    return max(live, default=None)


def _latest(releases: Mapping[Version, list[File]]) -> Version | None:
    """Highest non-yanked final release; a pre-release only when there is nothing else."""
    live = [v for v, files in releases.items() if any(f.yanked is None for f in files)]
    final = [v for v in live if not v.is_prerelease]
    return max(final or live, default=None)


# -- the two page formats ---------------------------------------------------------------------

def _parse_page(response: httpx.Response) -> list[File]:
    body = read_capped(response, what="project page")
    base = str(response.url)
    content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type.endswith("json"):
        return parse_json_page(body, base)
    return parse_html_page(body.decode(response.encoding or "utf-8", errors="replace"), base)


def parse_json_page(body: bytes, base: str) -> list[File]:
    """PEP 691: ``files[]`` with ``filename``, ``url`` (maybe relative), ``hashes``, ``yanked``."""
    doc = json_object(body, "a project page")
    api = str(_dict(doc.get("meta")).get("api-version", "1.0"))
    if not api.startswith("1."):
        raise FetchError(f"the index speaks Simple API version {api}; seawall understands 1.x")
    files = []
    for item in doc.get("files") or []:
        item = _dict(item)
        filename, url = item.get("filename"), item.get("url")
        if not isinstance(filename, str) or not isinstance(url, str):
            continue
        hashes = _dict(item.get("hashes"))
        yanked = item.get("yanked", False)
        files.append(File(filename, urldefrag(urljoin(base, url)).url,
                          from_hex((k, v) for k, v in hashes.items() if isinstance(v, str)),
                          (yanked if isinstance(yanked, str) else "") if yanked else None))
    return files


def parse_html_page(text: str, base: str) -> list[File]:
    """PEP 503: one ``<a>`` per file, ``#sha256=`` fragment, ``data-yanked``, maybe a ``<base>``."""
    parser = _Anchors()
    parser.feed(text)
    parser.close()
    base = urljoin(base, parser.base) if parser.base else base
    files = []
    for attrs in parser.anchors:
        url, fragment = urldefrag(urljoin(base, attrs["href"] or ""))
        filename = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
        if not filename:
            continue
        match = _HASH_FRAGMENT.fullmatch(fragment)
        expected = from_hex([(match.group(1), match.group(2))]) if match else None
        yanked = (attrs["data-yanked"] or "") if "data-yanked" in attrs else None
        files.append(File(filename, url, expected, yanked))
    return files


class _Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.base: str | None = None
        self.anchors: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "base" and self.base is None and found.get("href"):
            self.base = found["href"]
        elif tag == "a" and found.get("href"):
            self.anchors.append(found)


# -- configuration ----------------------------------------------------------------------------

def index_url(*, env: Mapping[str, str] | None = None, files: list[Path] | None = None) -> str:
    """``$PIP_INDEX_URL``, else ``index-url`` from pip's config files, else PyPI; ends with '/'."""
    env = os.environ if env is None else env
    url = env.get("PIP_INDEX_URL", "").strip()
    if not url:
        for path in pip_config_files(env) if files is None else files:
            url = _read_index_url(path) or url  # later files override earlier ones, as in pip
    url = url or DEFAULT_INDEX
    if urlsplit(url).scheme not in ("http", "https"):
        raise FetchError(f"package index {redact(url)!r} is not an http(s) URL")
    return url.rstrip("/") + "/"


def pip_config_files(env: Mapping[str, str]) -> list[Path]:
    """pip's global, then user, then ``$PIP_CONFIG_FILE`` (``os.devnull`` turns them all off)."""
    explicit = env.get("PIP_CONFIG_FILE")
    if explicit == os.devnull:
        return []
    name = "pip.ini" if sys.platform == "win32" else "pip.conf"
    site = platformdirs.site_config_dir("pip", appauthor=False, multipath=True)
    files = [Path(folder) / name for folder in site.split(os.pathsep) if folder]
    if sys.platform != "win32":
        files.append(Path("/etc/pip.conf"))
    home = Path.home()
    files += [home / ".pip" / name, home / ".config" / "pip" / name,
              Path(platformdirs.user_config_dir("pip", appauthor=False, roaming=True)) / name]
    if explicit:
        files.append(Path(explicit).expanduser())
    return list(dict.fromkeys(files))


def _read_index_url(path: Path) -> str | None:
    parser = configparser.RawConfigParser()
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError) as exc:
        raise FetchError(f"cannot read pip configuration {path}: {exc}") from None
    for key in ("index-url", "index_url"):
        if parser.has_option("global", key):
            return parser.get("global", key).strip() or None
    return None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
