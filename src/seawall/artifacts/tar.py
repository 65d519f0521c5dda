"""POSIX tar (ustar, GNU and PAX long names), read forward-only in stream mode."""

from __future__ import annotations

import tarfile
from typing import ClassVar, Iterator

from seawall.artifacts.base import Content, Entry, Kind, Opener, Source, normalize_member


def looks_like_tar(head: bytes) -> bool:
    if len(head) < 512:
        return False
    if head[257:262] == b"ustar":
        return True
    # Old v7 tar has no magic: trust a header whose checksum adds up.
    try:
        stored = int(head[148:156].replace(b"\x00", b" ").strip() or b"-1", 8)
    except ValueError:
        return False
    block = head[:512]
    computed = sum(block[:148]) + 8 * 32 + sum(block[156:512])
    return stored == computed and head[0] != 0


class TarOpener(Opener):
    name: ClassVar[str] = "tar"
    streaming: ClassVar[bool] = True
    priority: ClassVar[int] = 20

    @classmethod
    def sniff(cls, head: bytes, name: str, content: Content | None) -> bool:
        return looks_like_tar(head)

    def entries(self, source: Source) -> Iterator[Entry]:
        assert source.stream is not None
        # "r|" reads headers and data strictly in order, never seeking: a compressed
        # layer is decompressed once, and nothing is held beyond the current member.
        with tarfile.open(fileobj=source.stream, mode="r|", ignore_zeros=False) as tar:
            for info in tar:
                yield _entry(tar, info)


def _entry(tar: tarfile.TarFile, info: tarfile.TarInfo) -> Entry:
    path = normalize_member(info.name)
    if info.isreg():
        return Entry(path=path, size=info.size, open=lambda: tar.extractfile(info))  # type: ignore[return-value]
    if info.isdir():
        return Entry(path=path.rstrip("/"), kind=Kind.DIR)
    if info.issym():
        return Entry(path=path, kind=Kind.SYMLINK, link=info.linkname)
    if info.islnk():
        return Entry(path=path, kind=Kind.HARDLINK, link=info.linkname)
    return Entry(path=path, kind=Kind.SPECIAL, attrs={"tar_type": info.type.decode("latin-1")})
