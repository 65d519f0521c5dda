"""The zip family: zip, wheel, egg, jar/war/ear, vsix, nupkg, apk/aab, xpi, PyTorch checkpoints.

Every size in a zip is declared by whoever made it. ``zipfile`` never inflates past a
member's declared size, but both sizes may lie, so the ratio that decides whether a
member is a bomb is measured against the bytes the member physically occupies: from its
local header to the next member (or the central directory).
"""

from __future__ import annotations

import bisect
import contextlib
import stat
import zipfile
from collections.abc import Iterator
from typing import IO, ClassVar

from seawall.artifacts.base import (
    Content,
    CorruptArchive,
    Entry,
    Kind,
    Opener,
    RatioGuard,
    Readable,
    Source,
    Unscannable,
    normalize_member,
    read_at_most,
)
from seawall.limits import LimitExceeded, Limits

ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")
MAX_LINK_BYTES = 4096


class ZipOpener(Opener):
    name: ClassVar[str] = "zip"
    priority: ClassVar[int] = 30

    @classmethod
    def sniff(cls, head: bytes, name: str, content: Content | None) -> bool:
        return head.startswith(ZIP_MAGICS)

    def entries(self, source: Source) -> Iterator[Entry]:
        assert source.content is not None
        with source.content.seekable() as fh, _open_archive(fh) as archive:
            spans = _Spans(archive, len(source.content))
            for info in archive.infolist():
                yield self._entry(archive, info, spans.room(info))

    def _entry(self, archive: zipfile.ZipFile, info: zipfile.ZipInfo, room: int) -> Entry:
        path = normalize_member(info.filename)
        if info.filename.endswith("/"):  # ZipInfo.is_dir() fails on an empty name
            return Entry(path=path.rstrip("/"), kind=Kind.DIR)
        if stat.S_ISLNK(info.external_attr >> 16):
            return _symlink(archive, info, path, room, self.limits)
        return Entry(
            path=path,
            size=info.file_size,
            compressed_size=info.compress_size,
            open=lambda: _open_member(archive, info, room, self.limits, path),
        )


def _open_archive(fh: IO[bytes]) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(fh)
    except Exception as exc:  # noqa: BLE001 - a damaged directory raises half the exception tree
        raise CorruptArchive(f"not a readable zip: {type(exc).__name__}: {exc}") from None


class _Spans:
    """How many bytes each member physically occupies (local header included)."""

    def __init__(self, archive: zipfile.ZipFile, total: int) -> None:
        end = min(getattr(archive, "start_dir", total), total)
        self._offsets = sorted({i.header_offset for i in archive.infolist()} | {end})

    def room(self, info: zipfile.ZipInfo) -> int:
        at = bisect.bisect_right(self._offsets, info.header_offset)
        following = self._offsets[at] if at < len(self._offsets) else info.header_offset
        return max(following - info.header_offset, 1)


def _symlink(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: str, room: int, limits: Limits
) -> Entry:
    """A link's target is its content; read only a little of it, and survive damage."""
    try:
        with contextlib.closing(_open_member(archive, info, room, limits, path)) as fh:
            target, _more = read_at_most(fh, MAX_LINK_BYTES)
    except Exception as exc:  # noqa: BLE001 - reported by the engine as a corrupt member
        return Entry(path=path, error=f"unreadable link target: {exc}")
    return Entry(
        path=path, kind=Kind.SYMLINK, link=normalize_member(target.decode("utf-8", "replace"))
    )


def _open_member(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, room: int, limits: Limits, name: str
) -> Readable:
    if info.flag_bits & 0x41:  # 0x01 encrypted, 0x40 strong encryption
        raise Unscannable("encrypted zip member: its content cannot be checked")
    stored = min(info.compress_size, room)
    # Refuse at once what declares a bomb's ratio, without inflating a byte...
    if (
        info.file_size > limits.ratio_floor_bytes
        and info.file_size > max(stored, 1) * limits.max_ratio
    ):
        raise LimitExceeded(
            "max_ratio",
            f"{name} declares {info.file_size:,} bytes stored in {stored:,} "
            f"(limit {limits.max_ratio}:1); not inflated",
        )
    try:
        member = archive.open(info)
    except NotImplementedError as exc:
        raise Unscannable(f"unsupported zip compression: {exc}") from None
    # ...and stop, while inflating, what expands like one despite what it declares.
    return RatioGuard(member, lambda: stored, limits, name)
