"""Electron ``.asar`` archives: a Chromium pickle header holding a JSON tree, then file data."""

from __future__ import annotations

import struct
from typing import Any, ClassVar, Iterator

import msgspec

from seawall.artifacts.base import Content, CorruptArchive, Entry, Kind, Opener, Source


class AsarOpener(Opener):
    name: ClassVar[str] = "asar"
    priority: ClassVar[int] = 40

    @classmethod
    def sniff(cls, head: bytes, name: str, content: Content | None) -> bool:
        if len(head) < 24 or struct.unpack_from("<I", head, 0)[0] != 4:
            return False
        return head[16:24].lstrip().startswith(b'{"files"')

    def entries(self, source: Source) -> Iterator[Entry]:
        assert source.content is not None
        data = source.content.data
        _, pickle_size, _, json_len = struct.unpack_from("<4I", data, 0)
        if 16 + json_len > len(data):
            raise CorruptArchive("asar header is longer than the file")
        try:
            header = msgspec.json.decode(data[16 : 16 + json_len])
        except msgspec.DecodeError as exc:
            raise CorruptArchive(f"asar header is not valid JSON: {exc}") from None
        base = 8 + pickle_size
        yield from _walk(header, "", data, base)


def _walk(node: Any, prefix: str, data: Any, base: int) -> Iterator[Entry]:
    files = node.get("files") if isinstance(node, dict) else None
    if not isinstance(files, dict):
        raise CorruptArchive(f"asar node {prefix or '/'} has no file table")
    for name, child in files.items():
        path = f"{prefix}{name}"
        if not isinstance(child, dict):
            raise CorruptArchive(f"asar entry {path} is not an object")
        if "files" in child:
            yield Entry(path=path, kind=Kind.DIR)
            yield from _walk(child, path + "/", data, base)
        elif "link" in child:
            yield Entry(path=path, kind=Kind.SYMLINK, link=str(child["link"]))
        elif child.get("unpacked"):
            # Stored beside the archive in app.asar.unpacked/, not inside it.
            yield Entry(path=path, size=int(child.get("size", 0)), data=b"", attrs={"unpacked": True})
        else:
            yield _file(path, child, data, base)


def _file(path: str, child: dict, data: Any, base: int) -> Entry:
    try:
        size = int(child["size"])
        start = base + int(child["offset"])
    except (KeyError, ValueError, TypeError):
        raise CorruptArchive(f"asar entry {path} has no valid size/offset") from None
    if size < 0 or start < base or start + size > len(data):
        raise CorruptArchive(f"asar entry {path} points outside the archive")
    return Entry(path=path, size=size, data=bytes(data[start : start + size]))
