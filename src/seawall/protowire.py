"""Protobuf wire format: one bounded varint reader and field iterator for untrusted bytes.

ONNX models are protobuf messages. Seawall reads them in two places, without importing
``protobuf`` or ``onnx``: the ``weights`` detector recognises a model from its first
fields, and ``seawall model`` reads every initialiser. Both walk the same wire format, so
they share this reader and differ only in what a message cut short means to them:

- ``strict=True`` (the model reader): a field whose payload runs past ``end`` is refused
  before it is yielded, so the caller never sees a payload it cannot read whole.
- ``strict=False`` (the detector): a checkpoint cut at the read limit is still judged by
  what came before the cut, so the last field is yielded as declared (its ``stop`` may lie
  past ``end``, and the caller reads what exists), and only then is ``ShortRead`` raised.

In both modes the reader itself never reads a byte at or past ``end``, a varint is at most
10 bytes, field number 0 and wire types 3, 4 (groups), 6 and 7 are refused, and
``max_fields`` bounds how many fields one call yields.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

MAX_VARINT_BYTES = 10
"""Enough for any 64-bit value; a longer run of continuation bits is hostile, not data."""

Field = tuple[int, int, int, int]
"""(field number, wire type, value or payload start, payload stop).

Wire type 0 (varint) gives ``(number, 0, value, position after the varint)``; wire types 1,
2 and 5 (8-byte, length-delimited, 4-byte) give the payload's ``[start, stop)``.
"""


class WireError(ValueError):
    """The bytes are not the protobuf message the caller expects (the message says why)."""


class ShortRead(WireError):
    """Reading stopped short of ``end``: the bytes ran out, a varint ran past 10 bytes,
    or ``max_fields`` was reached. A file cut at a read limit ends this way, so a tolerant
    caller judges what it read before; anything else malformed is a plain ``WireError``."""


def read_varint(data: Any, pos: int, end: int) -> tuple[int, int]:
    """(value, position after it) of the varint at ``pos``, reading nothing at or past ``end``.

    ``data`` is anything indexable by int to a byte value: bytes, memoryview, mmap.
    """
    result = shift = 0
    while True:
        if shift >= 7 * MAX_VARINT_BYTES:
            raise ShortRead(f"varint longer than {MAX_VARINT_BYTES} bytes")
        if pos >= end:
            raise ShortRead("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def iter_fields(data: Any, pos: int, end: int, *, strict: bool,
                max_fields: int | None = None) -> Iterator[Field]:
    """Every field of the message in ``data[pos:end]``, in order (see ``Field``).

    Raises ``ShortRead`` when the message does not end exactly at ``end`` (in tolerant
    mode only after yielding the field that runs past it) and ``WireError`` for field
    number 0 or a wire type other than 0, 1, 2 and 5.
    """
    count = 0
    limit = end - pos if max_fields is None else max_fields  # no more fields than bytes
    while pos < end:
        count += 1
        if count > limit:
            raise ShortRead(f"more than {max_fields:,} fields")
        tag = data[pos]  # pos < end: a one-byte tag (field numbers 1-15) needs no call
        if tag < 0x80:
            pos += 1
        else:
            tag, pos = read_varint(data, pos, end)
        number, wire = tag >> 3, tag & 7
        if number == 0:
            raise WireError("field number 0")
        if wire == 0:
            value, pos = read_varint(data, pos, end)
            yield number, wire, value, pos
            continue
        if wire == 2:
            length, pos = read_varint(data, pos, end)
        elif wire in (1, 5):
            length = 8 if wire == 1 else 4
        else:
            raise WireError(f"wire type {wire}")
        if strict and pos + length > end:
            raise ShortRead("field runs past its message")
        yield number, wire, pos, pos + length
        pos += length
    if pos != end:
        raise ShortRead("message runs past its end")
