"""Single-file compression: gzip, bzip2, xz and zstd.

A compressed tar (``.tgz``, ``.tar.zst``...) is opened as one container: the tar inside
is transparent, so paths read ``package/cli.js`` rather than ``x.tar!/package/cli.js``.
Any other payload becomes one member named after the file without its suffix.
"""

from __future__ import annotations

import bz2
import lzma
from collections.abc import Callable, Iterator
from typing import IO, ClassVar, cast

import zstandard

from seawall.artifacts.base import (
    Content,
    CountingReader,
    Entry,
    Opener,
    PrefixedStream,
    RatioGuard,
    Readable,
    Source,
    buffered,
    read_head,
)
from seawall.artifacts.tar import TarOpener, looks_like_tar

try:  # ISA-L inflates gzip ~2.5x faster than zlib; fall back where no wheel exists.
    from isal.igzip import IGzipFile as _GzipFile
except ImportError:  # pragma: no cover - exercised only where isal is absent
    from gzip import GzipFile as _GzipFile  # type: ignore[assignment]


def _gzip(raw: IO[bytes]) -> Readable:
    return _GzipFile(fileobj=raw, mode="rb")


def _bzip2(raw: IO[bytes]) -> Readable:
    return bz2.BZ2File(raw, "rb")


def _xz(raw: IO[bytes]) -> Readable:
    return lzma.LZMAFile(raw, "rb")


def _zstd(raw: IO[bytes]) -> Readable:
    # read_across_frames: multi-frame files (pzstd, some OCI layers) are one payload.
    return zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)


Decoder = Callable[[IO[bytes]], Readable]

# (name, magic, suffix -> inner suffix, decoder). Magics are long enough that text or
# random binary is not mistaken for a stream: gzip's third byte is its method (deflate).
FORMATS: tuple[tuple[str, bytes, dict[str, str], Decoder], ...] = (
    ("gzip", b"\x1f\x8b\x08", {".tgz": ".tar", ".gz": "", ".gzip": ""}, _gzip),
    ("bzip2", b"BZh", {".tbz2": ".tar", ".tbz": ".tar", ".bz2": ""}, _bzip2),
    ("xz", b"\xfd7zXZ\x00", {".txz": ".tar", ".xz": ""}, _xz),
    ("zstd", b"\x28\xb5\x2f\xfd", {".tzst": ".tar", ".zst": "", ".zstd": ""}, _zstd),
)

_BZIP2_BLOCK = (b"1AY&SY", b"\x17rE8P\x90")  # first block, or the end of an empty stream


def inner_name(name: str, suffixes: dict[str, str]) -> str:
    """``cli.js.map.gz`` -> ``cli.js.map``, ``x.tgz`` -> ``x.tar``, ``b`` -> ``b.decompressed``."""
    base = name.rsplit("/", 1)[-1]
    lower = base.lower()
    for suffix, replacement in suffixes.items():
        if lower.endswith(suffix) and len(base) > len(suffix):
            return base[: -len(suffix)] + replacement
    return base + ".decompressed"


def _is_bzip2(head: bytes) -> bool:
    return len(head) >= 10 and head[3:4] in b"123456789" and head[4:10] in _BZIP2_BLOCK


class CompressedOpener(Opener):
    name: ClassVar[str] = "compressed"
    streaming: ClassVar[bool] = True
    priority: ClassVar[int] = 10

    @classmethod
    def sniff(cls, head: bytes, name: str, content: Content | None) -> bool:
        if head.startswith(b"BZh"):
            return _is_bzip2(head)  # "BZh" alone is common text
        return any(head.startswith(magic) for _, magic, _, _ in FORMATS)

    def entries(self, source: Source) -> Iterator[Entry]:
        assert source.stream is not None
        fmt, _magic, suffixes, decoder = next(f for f in FORMATS if source.head.startswith(f[1]))
        # The guard measures what the decoder really consumed, and sits right on its
        # output, so a bomb is stopped before any consumer buffers much of it.
        counter = CountingReader(source.stream)
        decoded = decoder(cast(IO[bytes], counter))  # decoders only ever call read()
        guard = RatioGuard(decoded, lambda: counter.count, self.limits, source.name)
        head = read_head(guard, 512)
        rejoined = buffered(PrefixedStream(head, guard))
        if looks_like_tar(head):
            yield from TarOpener(self.limits).entries(Source(source.name, stream=rejoined))
            return
        yield Entry(
            path=inner_name(source.name, suffixes),
            open=lambda: rejoined,
            attrs={"compression": fmt},
        )
