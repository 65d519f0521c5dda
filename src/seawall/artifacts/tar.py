"""POSIX tar (ustar, GNU and PAX long names), read forward-only in stream mode.

``tarfile`` is lenient where a scanner must not be: a damaged header in the middle of an
archive silently ends the member list, and extended headers are read whole into memory
and, before CPython 3.11.10, parsed with backtracking regular expressions (CVE-2024-6232:
a PAX header full of digits takes minutes). ``_CheckedTarInfo`` closes both holes.
"""

from __future__ import annotations

import re
import tarfile
from collections.abc import Iterator
from typing import IO, Any, ClassVar, cast

from seawall.artifacts.base import (
    PIECE,
    Content,
    CorruptArchive,
    Entry,
    Kind,
    Opener,
    Readable,
    Source,
    normalize_member,
)

MAX_EXTENDED_HEADER = 1024 * 1024
"""PAX and GNU long-name headers are read whole; real ones are a few hundred bytes."""

_DIGIT_RUN = re.compile(rb"[0-9]{65}")
"""Digit runs this long make CPython's PAX regexes quadratic; no real header has one."""


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


class _CheckedTarInfo(tarfile.TarInfo):
    @classmethod
    def frombuf(cls, buf: bytes | bytearray, encoding: str, errors: str) -> Any:
        # tarfile.next() treats these two as "end of archive" anywhere but at offset 0,
        # which would report a damaged archive as a short clean one.
        try:
            return super().frombuf(buf, encoding, errors)
        except tarfile.TruncatedHeaderError:  # type: ignore[attr-defined]  # not in the stubs
            raise CorruptArchive("truncated: the archive ends inside a member header") from None
        except tarfile.InvalidHeaderError as exc:  # type: ignore[attr-defined]
            raise CorruptArchive(f"damaged member header ({exc}); the rest was not read") from None

    def _proc_gnulong(self, tarfile_: tarfile.TarFile) -> Any:
        self._check_extended_size()
        return super()._proc_gnulong(tarfile_)  # type: ignore[misc]

    def _proc_pax(self, tarfile_: tarfile.TarFile) -> Any:
        # The stdlib reads the header body with its first read and regex-parses it
        # right away: screen that read before it does. (On a Python where this private
        # hook is renamed the screen is skipped; such a Python carries the upstream fix.)
        self._check_extended_size()
        stream = tarfile_.fileobj
        original = stream.read

        def screened_read(size: int = -1) -> bytes:
            stream.read = original  # type: ignore[method-assign]
            body = original(size)
            if _DIGIT_RUN.search(body):
                raise CorruptArchive("extended (PAX) header holds a run of 65+ digits; refused")
            return body

        stream.read = screened_read  # type: ignore[method-assign]  # this archive's reader only
        try:
            return super()._proc_pax(tarfile_)  # type: ignore[misc]
        finally:
            stream.read = original  # type: ignore[method-assign]

    def _check_extended_size(self) -> None:
        if self.size > MAX_EXTENDED_HEADER:
            raise CorruptArchive(
                f"extended header of {self.size:,} bytes (limit {MAX_EXTENDED_HEADER:,}); refused"
            )


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
        # A member's stream is valid only until the next member is requested.
        fileobj = cast(IO[bytes], source.stream)  # tarfile only ever calls read() in "r|"
        with tarfile.open(fileobj=fileobj, mode="r|", tarinfo=_CheckedTarInfo, bufsize=PIECE) as tar:
            for info in tar:
                yield _entry(tar, info)


def _member_stream(tar: tarfile.TarFile, info: tarfile.TarInfo) -> Readable:
    stream = tar.extractfile(info)
    if stream is None:  # only for links and folders, which are never opened
        raise CorruptArchive(f"{info.name} has no content")
    return stream


def _entry(tar: tarfile.TarFile, info: tarfile.TarInfo) -> Entry:
    path = normalize_member(info.name)
    if info.isreg():
        return Entry(path=path, size=info.size, open=lambda: _member_stream(tar, info))
    if info.isdir():
        return Entry(path=path.rstrip("/"), kind=Kind.DIR)
    if info.issym():
        return Entry(path=path, kind=Kind.SYMLINK, link=normalize_member(info.linkname))
    if info.islnk():
        return Entry(path=path, kind=Kind.HARDLINK, link=normalize_member(info.linkname))
    return Entry(path=path, kind=Kind.SPECIAL, attrs={"tar_type": info.type.decode("latin-1")})
