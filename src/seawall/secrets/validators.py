"""Checksums that providers build into their tokens. A value that fails is not a finding.

Register a validator with ``@validator("name")``; rules name it in ``validator = "..."``.
"""

from __future__ import annotations

import zlib
from typing import Callable

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

Validator = Callable[[str], bool]
VALIDATORS: dict[str, Validator] = {}


def validator(name: str) -> Callable[[Validator], Validator]:
    def register(func: Validator) -> Validator:
        VALIDATORS[name] = func
        return func
    return register


def base62(number: int, width: int) -> str:
    digits = []
    while number:
        number, rest = divmod(number, 62)
        digits.append(BASE62[rest])
    return "".join(reversed(digits)).rjust(width, "0")


def crc32_base62(body: str) -> str:
    """GitHub's and npm's token checksum: CRC32 of the random part, base62, 6 chars."""
    return base62(zlib.crc32(body.encode()), 6)


@validator("crc32-base62")
def _crc32_suffix(token: str) -> bool:
    """``<prefix>_<random><6-char checksum>``: the last 6 chars are the CRC32 of the random part."""
    body = token.rsplit("_", 1)[-1]
    if len(body) < 7:
        return False
    return crc32_base62(body[:-6]) == body[-6:]
