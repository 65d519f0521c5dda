"""The uniform tree every opener yields, and the registry that picks an opener by content.

An opener turns one container (a tarball, a zip, a source map...) into a stream of
``Entry`` objects. Nesting is plain recursion: the engine looks at each member's
first bytes, and if a registered opener claims them, opens the member the same way.
Nothing is ever written to disk.
"""

from __future__ import annotations

import io
import mmap
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import IO, Any, Callable, ClassVar, Iterator

from seawall.limits import Limits, LimitExceeded

SEP = "!/"
"""Separates nesting levels in a path: ``package/lib/a.jar!/BOOT-INF/app.properties``."""

HEAD_BYTES = 64 * 1024
"""How much of a member is read before deciding what it is."""


class Kind(Enum):
    FILE = "file"
    DIR = "dir"
    SYMLINK = "symlink"
    HARDLINK = "hardlink"
    SPECIAL = "special"  # devices, fifos, sockets


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
    open: Callable[[], IO[bytes]] | None = None
    data: bytes | None = None
    """Content already in memory (virtual files such as a source map's sources)."""
    compressed_size: int | None = None
    attrs: dict[str, Any] = field(default_factory=dict)
    """Facts the opener knows and detectors may use: ``layer``, ``deleted_in_layer``..."""

    def stream(self) -> IO[bytes]:
        if self.data is not None:
            return io.BytesIO(self.data)
        if self.open is None:
            return io.BytesIO(b"")
        return self.open()


class Content:
    """A member's bytes for openers that need random access and detectors that read.

    Files on disk are memory-mapped, so a 2 GB target costs no resident memory up front.
    """

    def __init__(self, data: bytes | mmap.mmap, path: Path | None = None) -> None:
        self.data = data
        self.path = path

    @classmethod
    def from_file(cls, path: Path) -> "Content":
        size = path.stat().st_size
        if size == 0:
            return cls(b"", path)
        with open(path, "rb") as fh:
            return cls(mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ), path)

    def seekable(self) -> IO[bytes]:
        if self.path is not None:
            return open(self.path, "rb")
        return io.BytesIO(self.data)  # zero-copy for bytes

    def __len__(self) -> int:
        return len(self.data)


@dataclass
class Source:
    """What an opener receives: a forward-only stream, or the whole content."""

    name: str
    stream: IO[bytes] | None = None
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
    registry: ClassVar[list[type["Opener"]]] = []

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not getattr(cls, "__abstractmethods__", None) and "name" in cls.__dict__:
            Opener.registry.append(cls)
            Opener.registry.sort(key=lambda o: o.priority)

    def __init__(self, limits: Limits) -> None:
        self.limits = limits

    @classmethod
    @abstractmethod
    def sniff(cls, head: bytes, name: str, content: Content | None) -> bool:
        """Cheap yes/no from the first bytes (and the whole content when not streaming)."""

    @abstractmethod
    def entries(self, source: Source) -> Iterator[Entry]:
        """Yield the members. Raise CorruptArchive (or let a format library raise) on bad input."""

    def finish(self) -> dict[str, Any]:
        """Facts learnt only after the last member (e.g. image whiteouts); see the engine."""
        return {}


class PrefixedStream(io.RawIOBase):
    """Re-attach bytes already read (the sniffed head) in front of a forward-only stream."""

    def __init__(self, head: bytes, rest: IO[bytes]) -> None:
        self._head = memoryview(head)
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        want = len(buffer)
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

    ``raw_counter`` reports how many compressed bytes have been consumed so far.
    """

    def __init__(self, inner: IO[bytes], raw_counter: Callable[[], int], limits: Limits, name: str):
        self._inner = inner
        self._raw = raw_counter
        self._limits = limits
        self._name = name
        self.expanded = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        chunk = self._inner.read(len(buffer))
        n = len(chunk)
        buffer[:n] = chunk
        self.expanded += n
        if self.expanded > self._limits.ratio_floor_bytes:
            consumed = max(self._raw(), 1)
            if self.expanded > consumed * self._limits.max_ratio:
                raise LimitExceeded(
                    "max_ratio",
                    f"{self._name} expands more than {self._limits.max_ratio}:1 "
                    f"({self.expanded:,} bytes from {consumed:,}); decompression stopped",
                )
        return n


class CountingReader(io.RawIOBase):
    """Count bytes pulled from a raw stream, to measure a decompressor's input."""

    def __init__(self, inner: IO[bytes]) -> None:
        self._inner = inner
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        chunk = self._inner.read(len(buffer))
        n = len(chunk)
        buffer[:n] = chunk
        self.count += n
        return n


def buffered(raw: io.RawIOBase, size: int = 1024 * 1024) -> IO[bytes]:
    return io.BufferedReader(raw, buffer_size=size)


def read_at_most(stream: IO[bytes], limit: int) -> tuple[bytes, bool]:
    """Read up to ``limit`` bytes; the flag says whether the stream had more."""
    parts: list[bytes] = []
    total = 0
    while total < limit:
        chunk = stream.read(min(8 * 1024 * 1024, limit - total))
        if not chunk:
            return b"".join(parts), False
        parts.append(chunk)
        total += len(chunk)
    more = bool(stream.read(1))
    return b"".join(parts), more


def read_head(stream: IO[bytes], size: int = HEAD_BYTES) -> bytes:
    parts: list[bytes] = []
    total = 0
    while total < size:
        chunk = stream.read(size - total)
        if not chunk:
            break
        parts.append(chunk)
        total += len(chunk)
    return b"".join(parts)


def normalize_member(path: str) -> str:
    """A member path as shown to people: forward slashes, no leading ``./``."""
    path = path.replace("\\", "/")
    while path.startswith("./"):
        path = path[2:]
    return path


def is_traversal(path: str) -> bool:
    return ".." in path.replace("\\", "/").split("/")


def is_absolute(path: str) -> bool:
    p = path.replace("\\", "/")
    return p.startswith("/") or (len(p) > 2 and p[1] == ":" and p[2] == "/")


def link_escapes(member: str, target: str, hard: bool = False) -> bool:
    """Does a link stored at ``member`` point outside the container's root?"""
    if is_absolute(target):
        return True
    base = [] if hard else member.replace("\\", "/").split("/")[:-1]
    depth = len(base)
    for part in target.replace("\\", "/").split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            depth -= 1
            if depth < 0:
                return True
        else:
            depth += 1
    return False


def file_size(path: os.PathLike[str] | str) -> int:
    return os.stat(path).st_size
