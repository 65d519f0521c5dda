"""``seawall.protowire``: exact fields and errors for each malformed case, in both modes.

Every walk runs over the message followed by 16 bytes of 0xff that the reader must never
touch: ``Fence`` fails the test on any read at or past ``end``.
"""

from __future__ import annotations

import struct

import pytest

from builders import pb, varint
from seawall.protowire import Field, ShortRead, WireError, iter_fields, read_varint

STRICT, TOLERANT = True, False


class Fence:
    """Bytes that fail the test when read at or past ``end``."""

    def __init__(self, data: bytes, end: int) -> None:
        self.data, self.end = data, end

    def __getitem__(self, i: int) -> int:
        assert 0 <= i < self.end, f"read byte {i}, end is {self.end}"
        return self.data[i]


def walk(message: bytes, strict: bool, **kw: int) -> tuple[list[Field], tuple[type, str] | None]:
    """(fields yielded, (error type, message) or None) for ``message`` read to its end."""
    fenced = Fence(message + b"\xff" * 16, len(message))
    got: list[Field] = []
    try:
        for found in iter_fields(fenced, 0, len(message), strict=strict, **kw):
            got.append(found)
    except WireError as exc:
        return got, (type(exc), str(exc))
    return got, None


@pytest.mark.parametrize("n,size", [(0, 1), (127, 1), (128, 2), (300, 2), (2**63, 10),
                                    (2**64 - 1, 10)])
def test_varint_round_trips(n: int, size: int) -> None:
    encoded = varint(n)
    assert len(encoded) == size
    fenced = Fence(b"\x01" + encoded + b"\xff", 1 + size)
    assert read_varint(fenced, 1, 1 + size) == (n, 1 + size)


def test_varint_cut_or_longer_than_ten_bytes() -> None:
    with pytest.raises(ShortRead, match="^truncated varint$"):
        read_varint(Fence(b"\x96\x01", 1), 0, 1)  # the byte after the cut is never read
    with pytest.raises(ShortRead, match="^truncated varint$"):
        read_varint(b"", 0, 0)
    eleven = b"\x80" * 10 + b"\x00"  # zero, padded to 11 bytes
    with pytest.raises(ShortRead, match="^varint longer than 10 bytes$"):
        read_varint(Fence(eleven, 10), 0, 11)  # refused before the 11th byte is read


@pytest.mark.parametrize("strict", [STRICT, TOLERANT])
def test_every_kind_of_field(strict: bool) -> None:
    fixed64 = varint(3 << 3 | 1) + struct.pack("<d", 1.5)
    fixed32 = varint(4 << 3 | 5) + struct.pack("<f", 2.5)
    message = pb(1, 150) + pb(2, b"abc") + fixed64 + fixed32 + pb(2**29 - 1, b"") + pb(16, 2**63)
    assert walk(message, strict) == ([
        (1, 0, 150, 3),  # a varint field gives its value and the position after it
        (2, 2, 5, 8),  # length-delimited: the payload's [start, stop)
        (3, 1, 9, 17),
        (4, 5, 18, 22),
        (2**29 - 1, 2, 28, 28),  # the largest field number: a five-byte tag, then length 0
        (16, 0, 2**63, 40),  # a two-byte tag, a ten-byte value
    ], None)
    assert message[5:8] == b"abc" and struct.unpack("<d", message[9:17]) == (1.5,)
    assert walk(b"", strict) == ([], None)


@pytest.mark.parametrize("strict", [STRICT, TOLERANT])
def test_truncated_varint(strict: bool) -> None:
    assert walk(pb(1, 7) + b"\x08\x96", strict) == ([(1, 0, 7, 2)], (ShortRead, "truncated varint"))
    assert walk(b"\x96", strict) == ([], (ShortRead, "truncated varint"))  # a cut tag


def test_length_past_the_end() -> None:
    message = pb(1, 5) + b"\x12\x05ab"  # field 2 claims 5 bytes, 2 follow
    assert walk(message, STRICT) == ([(1, 0, 5, 2)], (ShortRead, "field runs past its message"))
    # Tolerant: the cut field is yielded as declared (stop 9 > end 6), then the error.
    assert walk(message, TOLERANT) == ([(1, 0, 5, 2), (2, 2, 4, 9)],
                                       (ShortRead, "message runs past its end"))


def test_fixed_fields_past_the_end() -> None:
    for wire, width in ((1, 8), (5, 4)):
        message = varint(3 << 3 | wire) + b"\x01\x02"
        assert walk(message, STRICT) == ([], (ShortRead, "field runs past its message"))
        assert walk(message, TOLERANT) == ([(3, wire, 1, 1 + width)],
                                           (ShortRead, "message runs past its end"))


@pytest.mark.parametrize("strict", [STRICT, TOLERANT])
def test_eleven_byte_varint(strict: bool) -> None:
    message = b"\x08" + b"\xff" * 10 + b"\x01"
    assert walk(message, strict) == ([], (ShortRead, "varint longer than 10 bytes"))
    longest = b"\x08" + b"\xff" * 9 + b"\x01"  # ten bytes: 2**64 - 1, still a varint
    assert walk(longest, strict) == ([(1, 0, 2**64 - 1, 11)], None)


@pytest.mark.parametrize("strict", [STRICT, TOLERANT])
@pytest.mark.parametrize("wire", [3, 4, 6, 7])
def test_unknown_wire_types_are_refused(strict: bool, wire: int) -> None:
    message = pb(1, 1) + varint(2 << 3 | wire) + b"\x00" * 8
    assert walk(message, strict) == ([(1, 0, 1, 2)], (WireError, f"wire type {wire}"))


@pytest.mark.parametrize("strict", [STRICT, TOLERANT])
def test_field_number_zero_is_refused(strict: bool) -> None:
    assert walk(pb(1, 1) + b"\x00\x00", strict) == ([(1, 0, 1, 2)],
                                                    (WireError, "field number 0"))


@pytest.mark.parametrize("strict", [STRICT, TOLERANT])
def test_max_fields(strict: bool) -> None:
    message = pb(1, 1) * 3
    assert walk(message, strict, max_fields=3) == ([(1, 0, 1, 2), (1, 0, 1, 4), (1, 0, 1, 6)],
                                                   None)
    assert walk(message, strict, max_fields=2) == ([(1, 0, 1, 2), (1, 0, 1, 4)],
                                                   (ShortRead, "more than 2 fields"))


def test_a_message_inside_a_larger_buffer_stops_at_its_own_end() -> None:
    inner = pb(1, 9) + pb(2, b"x")
    outer = pb(5, inner) + pb(6, 1)
    [(number, wire, start, stop), after] = [f for f in iter_fields(outer, 0, len(outer),
                                                                   strict=True)]
    assert (number, wire, after) == (5, 2, (6, 0, 1, len(outer)))
    assert list(iter_fields(Fence(outer, stop), start, stop, strict=True)) == [
        (1, 0, 9, 4), (2, 2, 6, 7)]
