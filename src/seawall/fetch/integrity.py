"""Expected digests as registries publish them (SRI strings, hex hashes), and hashing files."""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

STRENGTH = {"sha512": 5, "sha384": 4, "sha256": 3, "sha224": 2, "sha1": 1, "md5": 0}
"""Algorithms we verify, strongest first wins. md5 and sha1 still catch corruption."""

SRI_ALGORITHMS = ("sha512", "sha384", "sha256", "sha1")

CHUNK = 1024 * 1024


def new_hasher(algorithm: str) -> hashlib._Hash:
    # usedforsecurity=False keeps sha1/md5 available on FIPS builds; we only compare digests.
    return hashlib.new(algorithm, usedforsecurity=STRENGTH[algorithm] >= STRENGTH["sha256"])


@dataclass(frozen=True)
class Expected:
    """The digests a download may have: one algorithm (the strongest offered), any listed value."""

    algorithm: str
    digests: frozenset[bytes]
    style: str = field(default="sri", compare=False)
    """How the registry wrote it, and so how to show it: ``sri`` (npm) or ``hex`` (PyPI)."""

    @classmethod
    def strongest(cls, pairs: Iterable[tuple[str, bytes]], style: str = "sri") -> Expected | None:
        valid = [(alg, value) for alg, value in pairs
                 if alg in STRENGTH and len(value) == hashlib.new(alg).digest_size]
        if not valid:
            return None
        best = max(valid, key=lambda pair: STRENGTH[pair[0]])[0]
        return cls(best, frozenset(value for alg, value in valid if alg == best), style)

    def matches(self, digest: bytes) -> bool:
        return digest in self.digests

    @property
    def primary(self) -> bytes:
        return min(self.digests)

    def sri(self, digest: bytes | None = None) -> str:
        """``sha512-<base64>``, the form npm shows (``digest`` defaults to the expected one)."""
        value = self.primary if digest is None else digest
        return f"{self.algorithm}-{base64.b64encode(value).decode()}"

    def hex(self, digest: bytes | None = None) -> str:
        """``sha256:<hex>``, the form pip shows."""
        value = self.primary if digest is None else digest
        return f"{self.algorithm}:{value.hex()}"

    def show(self, digest: bytes | None = None) -> str:
        return self.sri(digest) if self.style == "sri" else self.hex(digest)


def parse_sri(text: str) -> Expected | None:
    """Parse Subresource Integrity (``sha512-<b64> sha256-<b64>?opt``); None if unusable."""
    pairs: list[tuple[str, bytes]] = []
    for token in text.split():
        algorithm, sep, rest = token.partition("-")
        algorithm = algorithm.lower()
        if not sep or algorithm not in SRI_ALGORITHMS:
            continue
        try:
            pairs.append((algorithm, base64.b64decode(rest.split("?", 1)[0], validate=True)))
        except (binascii.Error, ValueError):
            continue
    return Expected.strongest(pairs)


def from_hex(items: Iterable[tuple[str, str]]) -> Expected | None:
    """From ``(algorithm, hexdigest)`` pairs: a PEP 691 ``hashes`` map, a ``#sha256=`` fragment."""
    pairs: list[tuple[str, bytes]] = []
    for algorithm, value in items:
        try:
            pairs.append((algorithm.lower(), bytes.fromhex(value)))
        except (TypeError, ValueError):
            continue
    return Expected.strongest(pairs, style="hex")


def hash_file(path: Path, algorithm: str) -> bytes:
    hasher = new_hasher(algorithm)
    with path.open("rb") as file:
        while chunk := file.read(CHUNK):
            hasher.update(chunk)
    return hasher.digest()
