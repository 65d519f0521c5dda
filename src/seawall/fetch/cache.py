"""The download cache: content-addressed, written atomically, re-verified before every reuse.

A file lives at ``<root>/<algorithm>/<hex[:2]>/<hex[:64]>/<filename>``, keyed by the digest the
registry published, so two registries serving the same name can never hand each other's bytes
out, and the original file name is kept for the engine and the report. A cache entry is hashed
again before it is reused; one that no longer matches (disk damage, an interrupted write on a
filesystem without atomic rename, tampering) is downloaded again. Downloads without a published
digest are stored by URL and always downloaded afresh, since nothing could vouch for a copy.
Nothing is ever extracted: the cache is the only place this package writes to.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from pathlib import Path

import httpx

from seawall.cachedir import cache_root as cache_root  # re-exported: fetch's callers use it
from seawall.fetch.http import MAX_ARTIFACT_BYTES, FetchError, check_length, get
from seawall.fetch.integrity import CHUNK, Expected, hash_file, new_hasher

_UNSAFE = re.compile(r"[^A-Za-z0-9._+~-]")


def safe_filename(name: str) -> str:
    """A registry-supplied file name made harmless: one path component, no leading dot."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    base = _UNSAFE.sub("_", base).lstrip(".")[:200]
    return base or "download"


class Cache:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, filename: str, url: str, expected: Expected | None) -> Path:
        if expected is None:
            key, folder = hashlib.sha256(url.encode()).hexdigest(), "by-url"
        else:
            key, folder = expected.primary.hex()[:64], expected.algorithm
        return self.root / folder / key[:2] / key / safe_filename(filename)

    def fetch(self, client: httpx.Client, url: str, filename: str, expected: Expected | None, *,
              what: str, max_bytes: int | None = None) -> tuple[Path, bool]:
        """The verified file for ``url``, and whether it came from the cache."""
        limit = MAX_ARTIFACT_BYTES if max_bytes is None else max_bytes
        dest = self.path_for(filename, url, expected)
        try:
            if expected is not None and _intact(dest, expected):
                return dest, True
            dest.parent.mkdir(parents=True, exist_ok=True)
            get(client, url, lambda response: _save(response, dest, expected, what, limit),
                what=what, headers={"Accept-Encoding": "identity"})
        except OSError as exc:
            raise FetchError(f"cannot use the download cache at {self.root}: {exc}") from None
        return dest, False


def _intact(path: Path, expected: Expected) -> bool:
    return path.is_file() and expected.matches(hash_file(path, expected.algorithm))


def _save(response: httpx.Response, dest: Path, expected: Expected | None, what: str,
          max_bytes: int) -> None:
    """Stream the body into a temporary file beside ``dest``; move it into place once verified."""
    check_length(response, what=what, limit=max_bytes)
    hasher = new_hasher(expected.algorithm) if expected else None
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".", suffix=".part")
    try:
        size = 0
        with os.fdopen(fd, "wb") as out:
            # Raw bytes: the digest covers the file as stored, never a transfer-decoded form.
            for chunk in response.iter_raw(CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise FetchError(f"{what} is larger than {max_bytes:,} bytes; download stopped")
                if hasher is not None:
                    hasher.update(chunk)
                out.write(chunk)
        if expected is not None and hasher is not None:
            actual = hasher.digest()
            if not expected.matches(actual):
                raise FetchError(f"integrity check failed for {what}: expected {expected.show()}, "
                                 f"got {expected.show(actual)}; the download does not match what "
                                 "the registry published")
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
