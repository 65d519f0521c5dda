"""The zip family: zip, wheel, egg, jar/war/ear, vsix, nupkg, apk/aab, xpi, PyTorch checkpoints."""

from __future__ import annotations

import stat
import zipfile
from typing import IO, ClassVar, Iterator

from seawall.artifacts.base import (
    Content,
    CorruptArchive,
    Entry,
    Kind,
    Opener,
    Source,
    Unscannable,
    normalize_member,
)
from seawall.limits import LimitExceeded, Limits

ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")


class ZipOpener(Opener):
    name: ClassVar[str] = "zip"
    priority: ClassVar[int] = 30

    @classmethod
    def sniff(cls, head: bytes, name: str, content: Content | None) -> bool:
        return head.startswith(ZIP_MAGICS)

    def entries(self, source: Source) -> Iterator[Entry]:
        assert source.content is not None
        try:
            archive = zipfile.ZipFile(source.content.seekable())
        except zipfile.BadZipFile as exc:
            raise CorruptArchive(f"not a readable zip: {exc}") from None
        with archive:
            for info in archive.infolist():
                yield self._entry(archive, info)

    def _entry(self, archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> Entry:
        path = normalize_member(info.filename)
        mode = info.external_attr >> 16
        if info.is_dir():
            return Entry(path=path.rstrip("/"), kind=Kind.DIR)
        if stat.S_ISLNK(mode):
            target = archive.read(info)[:4096].decode("utf-8", "replace")
            return Entry(path=path, kind=Kind.SYMLINK, link=target)
        return Entry(
            path=path,
            size=info.file_size,
            compressed_size=info.compress_size,
            open=lambda: _open_member(archive, info, self.limits),
        )


def _open_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limits: Limits) -> IO[bytes]:
    if info.flag_bits & 0x1:
        raise Unscannable("encrypted zip member: its content cannot be checked")
    # The declared sizes are checked before inflating anything: a 1 GiB member stored
    # in 1 MiB is refused at once. zipfile never inflates past the declared size.
    if info.file_size > limits.ratio_floor_bytes:
        ratio = info.file_size / max(info.compress_size, 1)
        if ratio > limits.max_ratio:
            raise LimitExceeded(
                "max_ratio",
                f"declares {info.file_size:,} bytes stored in {info.compress_size:,} "
                f"(ratio {ratio:,.0f}:1, limit {limits.max_ratio}:1); not inflated",
            )
    try:
        return archive.open(info)
    except NotImplementedError as exc:
        raise Unscannable(f"unsupported zip compression: {exc}") from None
