"""Electron ``.asar`` archives: a Chromium pickle header holding a JSON tree, then file data.

Layout (as @electron/asar writes it)::

    u32 4                    size of the first pickle's payload
    u32 header_pickle_size   size of the second pickle: u32 + string pickle, padded to 4
    u32 payload_size         the second pickle's own header
    u32 json_len             the string's length; the JSON starts at byte 16
    ...                      JSON, then padding to a multiple of 4
    file data                at 8 + header_pickle_size + entry offset

The header is attacker-controlled JSON: it is walked without recursion (a deeply nested
tree must not exhaust Python's stack) and every offset is checked against the file.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any, ClassVar

import msgspec

from seawall.artifacts.base import (
    Content,
    CorruptArchive,
    Entry,
    Kind,
    Opener,
    Source,
    normalize_member,
)


class AsarOpener(Opener):
    name: ClassVar[str] = "asar"
    priority: ClassVar[int] = 40

    @classmethod
    def sniff(cls, head: bytes, name: str, content: Content | None) -> bool:
        if len(head) < 24 or struct.unpack_from("<I", head, 0)[0] != 4:
            return False
        return head[16:64].lstrip().startswith(b'{"files"')

    def entries(self, source: Source) -> Iterator[Entry]:
        assert source.content is not None
        data = source.content.data
        header, base = _header(data)
        yield from _walk(header, data, base)


def _header(data: Any) -> tuple[Any, int]:
    """The decoded JSON tree, and where file data starts."""
    _, pickle_size, _, json_len = struct.unpack_from("<4I", data, 0)
    base = 8 + pickle_size
    if 16 + json_len > base or base > len(data):
        raise CorruptArchive(
            f"asar header sizes do not fit (json {json_len:,}, header {pickle_size:,}, "
            f"file {len(data):,})"
        )
    try:
        header = msgspec.json.decode(data[16 : 16 + json_len])
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise CorruptArchive(f"asar header is not valid JSON: {exc}") from None
    return header, base


def _walk(root: Any, data: Any, base: int) -> Iterator[Entry]:
    """Depth first, in the header's own order, with an explicit stack."""
    files = root.get("files") if isinstance(root, dict) else None
    if not isinstance(files, dict):
        raise CorruptArchive("asar header has no file table")
    stack: list[Iterator[tuple[str, Any]]] = [iter(files.items())]
    prefixes = [""]
    while stack:
        item = next(stack[-1], None)
        if item is None:
            stack.pop()
            prefixes.pop()
            continue
        name, child = item
        path = prefixes[-1] + name
        if not isinstance(child, dict):
            yield Entry(path=normalize_member(path), error="asar entry is not an object")
        elif "files" in child and not isinstance(child["files"], dict):
            yield Entry(path=normalize_member(path), error="asar folder has no file table")
        elif "files" in child:
            yield Entry(path=normalize_member(path), kind=Kind.DIR)
            stack.append(iter(child["files"].items()))
            prefixes.append(path + "/")
        elif "link" in child:
            yield Entry(
                path=normalize_member(path),
                kind=Kind.SYMLINK,
                link=normalize_member(str(child["link"])),
            )
        elif child.get("unpacked"):
            # Stored beside the archive in app.asar.unpacked/, not inside it.
            yield Entry(path=normalize_member(path), size=0, data=b"", attrs={"unpacked": True})
        else:
            yield _file(normalize_member(path), child, data, base)


def _file(path: str, child: dict[str, Any], data: Any, base: int) -> Entry:
    size = _number(child.get("size"))
    offset = _number(child.get("offset"))
    if size is None or offset is None:
        return Entry(path=path, error="asar entry has no valid size/offset")
    start = base + offset
    if start + size > len(data):
        return Entry(path=path, error="asar entry points outside the archive")
    return Entry(path=path, size=size, data=bytes(data[start : start + size]))


def _number(value: Any) -> int | None:
    """Sizes are JSON numbers, offsets decimal strings (they may exceed 2**53)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 20:
        return int(value)
    return None
