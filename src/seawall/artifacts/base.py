"""The uniform tree every opener yields, and the registry that picks an opener by content.

An opener turns one container (a tarball, a zip, a source map...) into a stream of
``Entry`` objects. Nesting is plain recursion: the engine looks at each member's
first bytes, and if a registered opener claims them, opens the member the same way.
Nothing is ever written to disk.
"""

from __future__ import annotations

import errno
import io
import mmap
import os
import re
import stat
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import IO, Any, ClassVar, Protocol

from seawall.limits import LimitExceeded, Limits

SEP = "!/"
"""Separates nesting levels in a path: ``package/lib/a.jar!/BOOT-INF/app.properties``."""

HEAD_BYTES = 64 * 1024
"""How much of a member is read before deciding what it is."""

PIECE = 64 * 1024
"""What the stream wrappers below ask of the stream they wrap, at most, per call.

A buffered reader asked for a megabyte loops until it has it; if the data is damaged
on the way it raises and drops all it had. Asking in pieces keeps what precedes the
damage (the members before a truncation still get scanned), keeps read-ahead past the
current member small, and lets a ratio guard judge a bomb early.
"""


class Kind(Enum):
    FILE = "file"
    DIR = "dir"
    SYMLINK = "symlink"
    HARDLINK = "hardlink"
    SPECIAL = "special"  # devices, fifos, sockets


class Readable(Protocol):
    """What a member stream is: files, decoders, and the stream wrappers below all fit."""

    def read(self, size: int = -1, /) -> bytes: ...

    def close(self) -> None: ...


class CorruptArchive(Exception):
    """A container that cannot be read as what it claims to be."""


class Unscannable(Exception):
    """A member that is intact but cannot be read (encrypted, unsupported method)."""


@dataclass
class Entry:
    """One member of a container, as the container names it (not yet joined with its parents)."""

    path: str
    size: int | None = None
    kind: Kind = Kind.FILE
    link: str | None = None
    open: Callable[[], Readable] | None = None
    data: bytes | None = None
    """Content already in memory (virtual files such as a source map's sources)."""
    compressed_size: int | None = None
    attrs: dict[str, Any] = field(default_factory=dict)
    """Facts the opener knows and detectors may use: ``compression``, ``unpacked``..."""
    error: str | None = None
    """Set when the opener could list this member but not read it; the engine reports
    it (exit status 2) and goes on with the next member."""

    def stream(self) -> Readable:
        if self.data is not None:
            return io.BytesIO(self.data)
        if self.open is None:
            return io.BytesIO(b"")
        return self.open()


MMAP_FROM_BYTES = 16 * 1024 * 1024
"""Files up to this size are read into memory: cheaper than a mapping, and immune to
the file being truncated under us (a mapping then faults with SIGBUS)."""


class Content:
    """A member's bytes for openers that need random access and detectors that read.

    Small files on disk are read into memory; large ones are memory-mapped, so a 2 GB
    target costs no resident memory up front. ``seekable()`` reads the same bytes the
    detectors see: a file is never reopened by name (it may have been swapped meanwhile).
    """

    def __init__(self, data: bytes | mmap.mmap, path: Path | None = None) -> None:
        self.data = data
        self.path = path

    @classmethod
    def from_file(cls, path: Path, *, follow_links: bool = True) -> Content:
        """Read a regular file; refuse anything else rather than block on it.

        ``O_NONBLOCK`` keeps a FIFO swapped in after the directory walk from hanging the
        scan, and the type is checked on the opened descriptor, not on the name.
        """
        flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
        if not follow_links:
            flags |= getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(path, flags)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise OSError(errno.EINVAL, "not a regular file", str(path))
            if st.st_size <= MMAP_FROM_BYTES:
                return cls(_read_fd(fd, st.st_size), path)
            try:
                return cls(mmap.mmap(fd, st.st_size, access=mmap.ACCESS_READ), path)
            except ValueError:  # shrank between fstat and mmap
                raise OSError(
                    errno.EIO, "file changed size while being opened", str(path)
                ) from None
        finally:
            os.close(fd)

    def seekable(self) -> IO[bytes]:
        if isinstance(self.data, mmap.mmap):
            return io.BufferedReader(MemoryReader(self.data), buffer_size=1024 * 1024)
        return io.BytesIO(self.data)  # zero-copy for bytes

    def close(self) -> None:
        """Release a mapping now rather than whenever the garbage collector runs."""
        if isinstance(self.data, mmap.mmap):
            try:
                self.data.close()
            except BufferError:  # a detector still holds a view; the collector will close it
                pass

    def __len__(self) -> int:
        return len(self.data)


def _read_fd(fd: int, size: int) -> bytes:
    parts: list[bytes] = []
    left = size
    while left > 0:  # the file may have shrunk: take what is there; growth is ignored
        chunk = os.read(fd, min(left, 8 * 1024 * 1024))
        if not chunk:
            break
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)


class MemoryReader(io.RawIOBase):
    """A seekable stream over a mapping, with its own position (the mapping's is shared)."""

    def __init__(self, data: mmap.mmap | bytes) -> None:
        self._data = data
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: len(self._data)}[whence]
        if base + offset < 0:
            raise OSError(errno.EINVAL, "negative seek position")
        self._pos = base + offset
        return self._pos

    def readinto(self, buffer: Any) -> int:
        chunk = self._data[self._pos : self._pos + len(buffer)]
        buffer[: len(chunk)] = chunk
        self._pos += len(chunk)
        return len(chunk)


@dataclass
class Source:
    """What an opener receives: a forward-only stream, or the whole content."""

    name: str
    stream: Readable | None = None
    content: Content | None = None
    head: bytes = b""


class Opener(ABC):
    """Base class for container formats. Subclasses register themselves.

    ``streaming`` openers read forward only (tar, compressed streams), so a member of a
    compressed tarball never has to sit in memory whole. Other openers get ``Content``.
    """

    name: ClassVar[str]
    streaming: ClassVar[bool] = False
    priority: ClassVar[int] = 50  # lower is tried first
    registry: ClassVar[list[type[Opener]]] = []

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not getattr(cls, "__abstractmethods__", None) and "name" in cls.__dict__:
            Opener.registry.append(cls)
            Opener.registry.sort(key=lambda o: o.priority)

    def __init__(self, limits: Limits, memo: dict[str, Any] | None = None) -> None:
        self.limits = limits
        self.memo = memo if memo is not None else {}
        """Per-member scratchpad shared with the detectors (e.g. a parsed source map)."""

    @classmethod
    @abstractmethod
    def sniff(cls, head: bytes, name: str, content: Content | None) -> bool:
        """Cheap yes/no from the first bytes (and the whole content when not streaming)."""

    @abstractmethod
    def entries(self, source: Source) -> Iterator[Entry]:
        """Yield the members. Raise CorruptArchive (or let a format library raise) on bad input."""


class PrefixedStream(io.RawIOBase):
    """Re-attach bytes already read (the sniffed head) in front of a forward-only stream."""

    def __init__(self, head: bytes, rest: Readable) -> None:
        self._head = memoryview(head)
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        want = min(len(buffer), PIECE)
        if self._head:
            n = min(want, len(self._head))
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        chunk = self._rest.read(want)
        buffer[: len(chunk)] = chunk
        return len(chunk)


class RatioGuard(io.RawIOBase):
    """Wrap a decompressing stream; stop it when it expands like a bomb.

    ``raw_counter`` reports how many compressed bytes have been consumed so far (or an
    upper bound on them). Once tripped the guard keeps failing: a caller that catches
    the error and reads on must not get the rest of the bomb.
    It reads its decoder in pieces (see ``PIECE``).
    """

    def __init__(
        self, inner: Readable, raw_counter: Callable[[], int], limits: Limits, name: str
    ) -> None:
        self._inner = inner
        self._raw = raw_counter
        self._limits = limits
        self._name = name
        self._tripped: LimitExceeded | None = None
        self.expanded = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:  # never inflate "everything" before looking at it
            return b"".join(iter(lambda: self.read(1024 * 1024), b""))
        if self._tripped is not None:
            raise self._tripped
        chunk = self._inner.read(min(size, PIECE))
        self.expanded += len(chunk)
        if self.expanded > self._limits.ratio_floor_bytes:
            consumed = max(self._raw(), 1)
            if self.expanded > consumed * self._limits.max_ratio:
                self._tripped = LimitExceeded(
                    "max_ratio",
                    f"{self._name} expands more than {self._limits.max_ratio}:1 "
                    f"({self.expanded:,} bytes from {consumed:,}); decompression stopped",
                )
                raise self._tripped
        return chunk

    def readinto(self, buffer: Any) -> int:
        chunk = self.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)

    def close(self) -> None:
        if not self.closed:
            self._inner.close()
        super().close()


class CountingReader(io.RawIOBase):
    """Count bytes pulled from a raw stream, to measure a decompressor's input.

    Reads are served in pieces (see ``PIECE``): decoders ask for up to 512 KiB ahead,
    which for a bomb is 500 MB of output, and a ratio measured on read-ahead trips that
    much later.
    """

    def __init__(self, inner: Readable) -> None:
        self._inner = inner
        self.count = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        want = PIECE if size is None or size < 0 else min(size, PIECE)
        chunk = self._inner.read(want)
        self.count += len(chunk)
        return chunk

    def readinto(self, buffer: Any) -> int:
        chunk = self.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)


def buffered(raw: io.RawIOBase, size: int = 1024 * 1024) -> IO[bytes]:
    return io.BufferedReader(raw, buffer_size=size)


def read_at_most(stream: Readable, limit: int, head: bytes = b"") -> tuple[bytes, bool]:
    """``head`` plus up to ``limit`` more bytes; the flag says whether the stream had more.

    The parts are joined once, so a large member is copied once.
    """
    parts: list[bytes] = [head]
    total = 0
    while total < limit:
        chunk = stream.read(min(8 * 1024 * 1024, limit - total))
        if not chunk:
            return b"".join(parts), False
        parts.append(chunk)
        total += len(chunk)
    more = bool(stream.read(1))
    return b"".join(parts), more


def read_head(stream: Readable, size: int = HEAD_BYTES) -> bytes:
    parts: list[bytes] = []
    total = 0
    while total < size:
        chunk = stream.read(size - total)
        if not chunk:
            break
        parts.append(chunk)
        total += len(chunk)
    return b"".join(parts)


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def normalize_member(path: str) -> str:
    """A member path as shown to people: forward slashes, no leading ``./``.

    Names are attacker-chosen. Undecodable bytes (kept by tarfile as lone surrogates,
    which no encoder accepts) and control characters (a newline would forge a line of
    the report) are shown escaped, ``\\xff``.
    """
    path = _CONTROL.sub(_escape, _undecodable_escaped(path.replace("\\", "/")))
    while path.startswith("./"):
        path = path[2:]
    return path


def _undecodable_escaped(text: str) -> str:
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a surrogate that never was a byte
        raw = text.encode("utf-8", "surrogatepass")
    return raw.decode("utf-8", "backslashreplace")


def _escape(match: re.Match[str]) -> str:
    return f"\\x{ord(match.group()):02x}"


def is_traversal(path: str) -> bool:
    return ".." in path.replace("\\", "/").split("/")


def is_absolute(path: str) -> bool:
    p = path.replace("\\", "/")
    return p.startswith("/") or (len(p) > 2 and p[1] == ":" and p[2] == "/")


def link_escapes(member: str, target: str, hard: bool = False) -> bool:
    """Does a link stored at ``member`` point outside the container's root?

    A symbolic link resolves from the member's folder, a hard link from the root.
    """
    if is_absolute(target):
        return True
    start = [] if hard else member.replace("\\", "/").split("/")[:-1]
    depth = 0
    for part in [*start, *target.replace("\\", "/").split("/")]:
        if part in ("", "."):
            continue
        depth += -1 if part == ".." else 1
        if depth < 0:
            return True
    return False
