"""Walk a target as one tree of files, however nested, and run every detector on it.

The engine owns recursion, limits and error handling; openers only list members and
detectors only look at one member at a time. One bad member, container, detector or
target never stops the others, and nothing that could not be read is ever reported as
clean: it becomes an error (exit status 2) and usually an ``anomaly`` finding.

Who is to blame for a read error matters. In a forward-only container (a tarball, a
gzip stream) a member's bytes *are* the container's stream: when they cannot be read,
the container is damaged and the walk of it must stop, while a damaged zip member
is that member's problem alone. So streams handed out by a forward-only container are
wrapped in ``_OwnedStream``, which tags any error with the container it belongs to;
the error then travels up, through nested containers, to the level that opened it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import itertools
import lzma
import os
import sys
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, NoReturn, cast

import zstandard

from seawall import artifacts
from seawall.artifacts.base import (
    HEAD_BYTES,
    SEP,
    Content,
    CorruptArchive,
    Entry,
    Kind,
    Opener,
    PrefixedStream,
    Readable,
    Source,
    Unscannable,
    buffered,
    is_absolute,
    is_traversal,
    link_escapes,
    normalize_member,
    read_at_most,
    read_head,
)
from seawall.artifacts.directory import list_directory, walk_directory
from seawall.artifacts.image import ImageAssembler, is_whiteout
from seawall.detectors.anomaly import anomaly
from seawall.detectors.base import Detector, FileView, all_detectors, in_test_folder
from seawall.findings import Finding, Severity, sort_key
from seawall.limits import LimitExceeded, Limits

READ_ERRORS: tuple[type[BaseException], ...] = (
    CorruptArchive,
    tarfile.TarError,
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    lzma.LZMAError,
    zstandard.ZstdError,
    OSError,  # includes gzip.BadGzipFile and bz2's "Invalid data stream"
    struct.error,
    ValueError,  # includes UnicodeDecodeError from damaged names
    OverflowError,
)
"""What format libraries raise on damaged input: reported as ``anomaly.corrupt``."""

try:  # isal raises its own error type for damaged gzip streams
    from isal.isal_zlib import error as _isal_error

    READ_ERRORS = (*READ_ERRORS, cast(type[BaseException], _isal_error))
except ImportError:  # pragma: no cover
    pass


@dataclass
class Target:
    """What the user named, resolved to something on disk."""

    name: str
    path: Path | None = None
    """A file or a directory."""
    files: list[Path] = field(default_factory=list)
    """Several files forming one target (every file of a PyPI release)."""
    listing: list[str] | None = None
    """With a directory ``path``: only these files of it (POSIX paths relative to it)."""
    prefix: str = ""
    """With ``listing``: the name each file is reported under is ``prefix + path``."""
    error: str | None = None
    """Set when resolving failed (e.g. the registry did not answer)."""
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Member:
    """One member as a release diff compares it."""

    size: int
    sha256: str | None
    """None for a container read forward only (its bytes are not kept whole)."""
    depth: int
    """1 for a member of the artifact itself, more inside nested archives."""


@dataclass
class TargetResult:
    target: str
    files: int = 0
    bytes: int = 0
    errors: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    inventory: dict[str, Member] = field(default_factory=dict)
    """Every real member by path (virtual source-map files excluded), when asked for."""

    @property
    def error(self) -> str | None:
        return "; ".join(self.errors) if self.errors else None


@dataclass
class ScanResult:
    targets: list[TargetResult]
    suppressed: int = 0

    @property
    def findings(self) -> list[Finding]:
        return sorted((f for t in self.targets for f in t.findings), key=sort_key)

    @property
    def has_errors(self) -> bool:
        return any(t.errors for t in self.targets)


class _StopTarget(Exception):
    """A target-wide limit was reached; the walk ends, results so far are kept."""


class _Unreadable(Exception):
    """A file on disk could not be opened (vanished, no permission, not a regular file)."""


class _ContainerError(Exception):
    """A failure while reading a member's bytes, blamed on the container they come from."""

    def __init__(self, owner: Opener, error: Exception) -> None:
        super().__init__(str(error))
        self.owner = owner
        self.error = error


class _OwnedStream(io.RawIOBase):
    """A member stream of a forward-only container; tags its errors with that container."""

    def __init__(self, inner: Readable, owner: Opener) -> None:
        self._inner = inner
        self._owner = owner

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        try:
            return self._inner.read(-1 if size is None else size)
        except _ContainerError:
            raise  # already blamed on an outer container
        except Exception as exc:
            raise _ContainerError(self._owner, exc) from exc

    def readinto(self, buffer: Any) -> int:
        chunk = self.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)


def _owned(open_member: Callable[[], Readable], owner: Opener) -> Callable[[], Readable]:
    return lambda: _OwnedStream(open_member(), owner)


@dataclass
class Engine:
    limits: Limits = field(default_factory=Limits)
    settings: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Per-detector configuration sections, by detector name."""
    disabled_detectors: frozenset[str] = frozenset()
    progress: Callable[[str, int], None] | None = None
    """Called with (path, bytes) as each member is read."""
    inventory: bool = False
    """Record every member's size and hash in ``TargetResult.inventory`` (for diffs)."""
    jobs: int = 1
    """Processes that share one target's top-level files (0: one per core). Findings are
    the same as with 1 (see ``_Walk.run_parallel``)."""

    def detectors(self) -> list[Detector]:
        made: list[Detector] = []
        for name, cls in all_detectors().items():
            if name in self.disabled_detectors:
                continue
            settings = dict(self.settings.get(name, {}))
            if name == "anomaly":
                settings.setdefault("large_file_bytes", self.limits.large_file_bytes)
            made.append(cls(settings))
        return made

    def scan(self, targets: Iterable[Target]) -> ScanResult:
        return ScanResult([self.scan_target(t) for t in targets])

    def scan_target(self, target: Target) -> TargetResult:
        walk = _Walk(self, target)
        try:
            walk.run()
        except _StopTarget:
            pass
        except Exception as exc:  # noqa: BLE001 - one target never stops the others
            walk.result.errors.append(f"{target.name}: internal error: {type(exc).__name__}: {exc}")
        walk.finish()
        walk.result.findings = _merge(walk.result.findings, target.name)
        return walk.result


class _Walk:
    """The state of scanning one target."""

    def __init__(self, engine: Engine, target: Target) -> None:
        self.engine = engine
        self.limits = engine.limits
        self.target = target
        self.detectors = engine.detectors()
        self.result = TargetResult(target.name, meta=dict(target.meta))
        self.tally = _Tally()
        """Members, expanded bytes and bytes read from disk (to measure the target's
        overall expansion): target-wide, so shared by every process of a parallel walk."""
        self.progress = engine.progress
        self.in_worker = False
        """In a forked worker of a parallel walk, which never forks again."""
        self.whiteouts: list[tuple[str, str]] = []
        single = target.path is not None and not target.files and target.path.is_file()
        self._itself = target.path.name if single and target.path is not None else None
        """A file target's own name: the artifact, not one of its members."""
        """(prefix of the container, member) of every image whiteout marker seen."""

    # -- bookkeeping -------------------------------------------------------------
    def add(self, finding: Finding) -> None:
        self.result.findings.append(finding)

    def add_all(self, findings: Iterable[Finding]) -> None:
        self.result.findings.extend(findings)

    def error(self, path: str, message: str) -> None:
        self.result.errors.append(f"{path}: {message}")

    def damaged(self, path: str, message: str, where: str | None = None) -> None:
        """``where`` names the place in the error text, when it is not ``path``."""
        self.error(where or path, message)
        self.add(anomaly("anomaly.corrupt", path, message))

    def _stop(self, rule: str, path: str, message: str, limit: str) -> NoReturn:
        """A target-wide limit: report it, and end the walk keeping what was found."""
        message += "; the rest of the target was not scanned"
        self.add(anomaly(rule, path, message, limit=limit))
        raise _StopTarget

    def _count_entry(self, path: str) -> None:
        if self.tally.add(_ENTRIES, 1) > self.limits.max_entries:
            message = f"more than {self.limits.max_entries:,} members"
            self._stop("anomaly.limit", path, message, "max_entries")

    def _count_bytes(self, path: str, n: int) -> None:
        self.result.bytes += n
        total, limits = self.tally.add(_BYTES, n), self.limits
        if total > limits.max_total_bytes:
            message = f"more than {limits.max_total_bytes:,} expanded bytes"
            self._stop("anomaly.limit", path, message, "max_total_bytes")
        # Each stream's guard lets up to ratio_floor_bytes through; many small bombs
        # together are caught here, against what the target occupies on disk.
        disk = self.tally.get(_DISK)
        if total > max(limits.ratio_floor_bytes, disk * limits.max_ratio):
            message = (
                f"the target expands more than {limits.max_ratio}:1 overall "
                f"({total:,} bytes from {disk:,})"
            )
            self._stop("anomaly.bomb", path, message, "max_ratio")
        if self.progress:
            self.progress(path, n)

    # -- the walk ----------------------------------------------------------------
    def run(self) -> None:
        target = self.target
        if target.error:
            self.error(target.name, target.error)
        elif target.files:
            self.walk_top(_disk_entry(p) for p in target.files)
        elif target.path is not None and target.listing is not None:
            self.walk_top(list_directory(target.path, target.listing, target.prefix))
        elif target.path is not None and target.path.is_dir():
            self.walk_top(walk_directory(target.path))
        elif target.path is not None:
            entry = _disk_entry(target.path)
            self._visit_guarded(entry, entry.path, 0, (), transparent=True)
        else:
            self.error(target.name, "nothing to scan")

    def walk_top(self, entries: Iterable[Entry]) -> None:
        """The target's own members: shared among processes when that pays off."""
        jobs = self._jobs()
        if jobs > 1:
            listed = list(itertools.islice(entries, self.limits.max_entries + 1))
            chunks = _split(listed, jobs) if len(listed) <= self.limits.max_entries else None
            if chunks is not None:
                self.run_parallel(chunks)
                return
            entries = itertools.chain(listed, entries)
        self.walk(entries, "", 0, ())

    def _jobs(self) -> int:
        if self.in_worker or not all(d.merges for d in self.detectors):
            return 1
        return _workers(self.engine.jobs)

    def run_parallel(
        self,
        chunks: list[list[Entry]],
        walk_chunk: Callable[[list[Entry]], None] | None = None,
        *,
        fresh: bool = False,
    ) -> None:
        """Walk ``chunks`` (consecutive runs of one container level's members) at once:
        this process takes the first, a forked worker each of the others.

        The result is the serial walk's: each worker sends back its findings, errors and
        counts, and each detector's ``partial()`` state; they are folded in chunk order,
        so findings keep the walk's order and ``finish()`` sees what it would have seen.
        ``fresh`` workers start from empty results and detectors (a level deep in a walk
        already under way), so what they send back is only their share. Target-wide
        limits hold across the workers through a shared tally (when one trips, where the
        walk stopped can differ from a serial walk). A worker that dies has its chunk
        walked again here.
        """
        walk_chunk = walk_chunk or (lambda chunk: self.walk(chunk, "", 0, ()))
        import multiprocessing  # ~10 ms of imports, paid only by walks that fan out

        context = multiprocessing.get_context("fork")
        self.tally = self.tally.shared(context)
        workers = []
        for chunk in chunks[1:]:
            receive, send = context.Pipe(duplex=False)
            process = context.Process(target=self._worker, args=(chunk, walk_chunk, send, fresh),
                                      daemon=True)
            process.start()
            send.close()
            workers.append((chunk, process, receive))
        stopped = False
        try:
            walk_chunk(chunks[0])
        except _StopTarget:
            stopped = True
        for chunk, process, receive in workers:
            try:
                part: _Part | None = receive.recv()
            except (EOFError, OSError):
                part = None
            finally:
                receive.close()
                process.join()
            if part is None and not stopped:
                try:  # the worker died (killed, out of memory): do its share here
                    walk_chunk(chunk)
                except _StopTarget:
                    stopped = True
            elif part is not None:
                stopped |= part.stopped
                self._absorb(part)
        if stopped:
            raise _StopTarget

    def _worker(self, chunk: list[Entry], walk_chunk: Callable[[list[Entry]], None], send: Any,
                fresh: bool) -> None:
        """In a forked process: walk one chunk, send back what the parent needs."""
        self.progress = None  # the parent's progress bar is not ours to draw
        self.in_worker = True
        if fresh:
            self.result = TargetResult(self.target.name)
            self.whiteouts = []
            self.detectors = self.engine.detectors()
        stopped = False
        try:
            walk_chunk(chunk)
        except _StopTarget:
            stopped = True
        except Exception as exc:  # noqa: BLE001 - reported by the parent, like any target error
            self.error(self.target.name, f"internal error: {type(exc).__name__}: {exc}")
        partials = []
        for detector in self.detectors:
            with self._detector_errors(detector, self.target.name):
                partials.append((detector.name, detector.partial()))
        result = self.result
        send.send(_Part(result.findings, result.errors, result.files, result.bytes,
                        result.inventory, result.meta, self.whiteouts, partials, stopped))
        send.close()

    def _absorb(self, part: _Part) -> None:
        result = self.result
        result.findings.extend(part.findings)
        result.errors.extend(part.errors)
        result.files += part.files
        result.bytes += part.bytes
        if self.progress:
            self.progress(self.target.name, part.bytes)
        result.inventory.update(part.inventory)
        result.meta.update(part.meta)
        self.whiteouts.extend(part.whiteouts)
        by_name = {detector.name: detector for detector in self.detectors}
        for name, partial in part.partials:
            detector = by_name[name]
            with self._detector_errors(detector, self.target.name):
                detector.merge(partial)

    def finish(self) -> None:
        for detector in self.detectors:
            with self._detector_errors(detector, self.target.name):
                self.add_all(list(detector.finish()))

    def walk(
        self,
        entries: Iterable[Entry],
        prefix: str,
        depth: int,
        chain: tuple[str, ...],
        owner: Opener | None = None,
    ) -> None:
        """Visit the members of one container level (``prefix`` names it)."""
        image = ImageAssembler()
        before = len(self.result.findings)
        try:
            jobs = self._jobs() if chain and chain[-1] == "sourcemap" else 1
            if jobs > 1:
                # A map's embedded sources are already in memory, and no detector looks at
                # other files' state while it scans them (only in finish()), so workers
                # with fresh detectors give the serial result.
                listed = list(entries)
                chunks = _split(listed, jobs)
                if chunks is not None:
                    self.run_parallel(
                        chunks,
                        lambda chunk: self._members(chunk, prefix, depth, chain, image, owner),
                        fresh=True,
                    )
                else:
                    self._members(listed, prefix, depth, chain, image, owner)
            else:
                self._members(entries, prefix, depth, chain, image, owner)
        finally:
            # Close the opener's generator now, not when collected: it holds file handles,
            # and a half-read tar stream must not be resumed by anyone.
            close = getattr(entries, "close", None)
            if close is not None:
                close()
            self._image_pass(image, prefix, before)

    def _members(self, entries: Iterable[Entry], prefix: str, depth: int, chain: tuple[str, ...],
                 image: ImageAssembler, owner: Opener | None) -> None:
        for entry in entries:
            self._member(entry, prefix, depth, chain, image, owner)

    def _member(
        self,
        entry: Entry,
        prefix: str,
        depth: int,
        chain: tuple[str, ...],
        image: ImageAssembler,
        owner: Opener | None,
    ) -> None:
        path = prefix + entry.path
        self._count_entry(path)
        self._check_name(entry, path)
        if entry.error is not None:
            self.damaged(path, entry.error)
            return
        if entry.kind is Kind.DIR:
            for detector in self.detectors:
                with self._detector_errors(detector, path):
                    self.add_all(list(detector.scan_dir(path, entry.path)))
            return
        if entry.kind is not Kind.FILE:
            self._check_link(entry, path)
            return
        if is_whiteout(entry.path):
            self.whiteouts.append((prefix, entry.path))
            if entry.size == 0:  # an image's deletion marker; a non-empty one is content
                return
        if owner is not None and entry.open is not None:
            entry = dataclasses.replace(entry, open=_owned(entry.open, owner))
        self._visit_guarded(entry, path, depth, chain, image=image)

    def _visit_guarded(
        self,
        entry: Entry,
        path: str,
        depth: int,
        chain: tuple[str, ...],
        *,
        image: ImageAssembler | None = None,
        transparent: bool = False,
    ) -> None:
        # An error is read on its own (a SARIF notification has no target): one about
        # the target file itself names it as the user did, not by its base name.
        where = self.target.name if transparent else path
        try:
            self.visit(entry, path, depth, chain, image=image, transparent=transparent)
        except (_StopTarget, _ContainerError):
            raise  # handled further up: the whole target, or the container to blame
        except LimitExceeded as exc:
            rule = "anomaly.bomb" if exc.limit == "max_ratio" else "anomaly.limit"
            self.add(anomaly(rule, path, str(exc), limit=exc.limit))
        except Unscannable as exc:
            self.add(anomaly("anomaly.unscanned", path, str(exc)))
        except _Unreadable as exc:
            self.error(where, str(exc))
        except READ_ERRORS as exc:
            self.damaged(path, _describe(exc), where)
        except Exception as exc:  # noqa: BLE001 - report, never crash on hostile input
            self.error(where, f"internal error: {type(exc).__name__}: {exc}")

    def visit(
        self,
        entry: Entry,
        path: str,
        depth: int,
        chain: tuple[str, ...],
        *,
        transparent: bool = False,
        image: ImageAssembler | None = None,
    ) -> None:
        """Scan one file member, and open it if it is a container."""
        prefix = "" if transparent else path + SEP
        with contextlib.ExitStack() as cleanup:
            content = self._disk_content(entry, cleanup)
            if content is None and entry.data is not None:
                content = Content(entry.data)
            stream: Readable | None = None
            if content is not None:
                head = bytes(content.data[:HEAD_BYTES])
            else:
                stream = cleanup.enter_context(contextlib.closing(entry.stream()))
                head = read_head(stream)
            streaming = _sniff(head, path, None, streaming=True)
            if streaming is not None:
                # Forward-only containers (tar, compressed) are never held in memory whole.
                view = content if content is not None else Content(head)
                self._detect(entry, path, view, chain, streaming.name, complete=content is not None)
                if not self._too_deep(path, depth):
                    source = Source(
                        path, stream=_rewound(content, stream, head, cleanup), head=head
                    )
                    self._open(streaming(self.limits), source, prefix, depth, chain)
                return
            complete = True
            if stream is not None:
                content, complete = self._read_member(stream, head, path)
            assert content is not None
            self._scan_file(entry, path, content, complete, depth, chain, prefix, image)

    def _scan_file(
        self,
        entry: Entry,
        path: str,
        content: Content,
        complete: bool,
        depth: int,
        chain: tuple[str, ...],
        prefix: str,
        image: ImageAssembler | None,
    ) -> None:
        self.result.files += 1
        self._count_bytes(path, len(content))
        if image is not None and not chain_is_virtual(chain):
            image.observe(entry.path, content.data)
        head = bytes(content.data[:HEAD_BYTES])
        opener_cls = _sniff(head, path, content, streaming=False)
        memo: dict[str, Any] = {}
        self._detect(
            entry,
            path,
            content,
            chain,
            opener_cls.name if opener_cls else None,
            complete=complete,
            memo=memo,
        )
        # A cut-off container cannot be read (a zip's directory is at its end); the
        # anomaly.unscanned finding already says it was not fully examined.
        if opener_cls is None or not complete or self._too_deep(path, depth):
            return
        self._open(
            opener_cls(self.limits, memo),
            Source(path, content=content, head=head),
            prefix,
            depth,
            chain,
        )

    def _open(
        self, opener: Opener, source: Source, prefix: str, depth: int, chain: tuple[str, ...]
    ) -> None:
        """Walk a container's members; re-raise this container's own damage as plain errors."""
        owner = opener if opener.streaming else None
        try:
            self.walk(opener.entries(source), prefix, depth + 1, chain + (opener.name,), owner)
        except _ContainerError as exc:
            if exc.owner is not opener:
                raise
            raise exc.error from None

    def _read_member(self, stream: Readable, head: bytes, path: str) -> tuple[Content, bool]:
        limit = self.limits.max_file_bytes
        data, more = read_at_most(stream, max(limit - len(head), 0), head)
        if len(data) > limit:  # the sniffed head alone was past a (small) limit
            data, more = data[:limit], True
        if more:
            self.add(
                anomaly(
                    "anomaly.unscanned",
                    path,
                    f"only the first {limit:,} bytes were scanned",
                    limit="max_file_bytes",
                )
            )
        return Content(data), not more

    def _disk_content(self, entry: Entry, cleanup: contextlib.ExitStack) -> Content | None:
        disk = entry.attrs.get("disk_path")
        if disk is None:
            return None
        try:
            # Only a path the user named may be a link; inside a tree links are never followed.
            content = Content.from_file(
                Path(disk), follow_links=bool(entry.attrs.get("follow_links"))
            )
        except OSError as exc:
            raise _Unreadable(f"cannot read: {exc.strerror or exc}") from None
        cleanup.callback(content.close)
        self.tally.add(_DISK, len(content))
        return content

    # -- helpers -----------------------------------------------------------------
    def _detect(
        self,
        entry: Entry,
        path: str,
        content: Content,
        chain: tuple[str, ...],
        container: str | None,
        *,
        complete: bool,
        memo: dict[str, Any] | None = None,
    ) -> None:
        if self.engine.inventory and not chain_is_virtual(chain) and path != self._itself:
            digest = hashlib.sha256(content.data).hexdigest() if complete else None
            self.result.inventory[path] = Member(entry.size or len(content), digest,
                                                 path.count(SEP) + 1)
        view = FileView(
            path=path,
            inner=entry.path,
            content=content,
            size=entry.size or len(content),
            complete=complete,
            chain=chain,
            container=container,
            attrs=entry.attrs,
            memo=memo if memo is not None else {},
        )
        for detector in self.detectors:
            # The same guard as _detector_errors, inline: this runs for every detector on
            # every member, where a context manager's cost shows.
            try:
                if detector.wants(view):
                    self.add_all(list(detector.scan(view)))
            except Exception as exc:  # noqa: BLE001 - a failing detector costs its own findings
                self._detector_failed(detector, path, exc)

    @contextlib.contextmanager
    def _detector_errors(self, detector: Detector, path: str) -> Iterator[None]:
        """A failing detector costs its own findings only (and makes the scan exit 2)."""
        try:
            yield
        except Exception as exc:  # noqa: BLE001
            self._detector_failed(detector, path, exc)

    def _detector_failed(self, detector: Detector, path: str, exc: Exception) -> None:
        self.error(path, f"detector {detector.name} failed: {type(exc).__name__}: {exc}")

    def _too_deep(self, path: str, depth: int) -> bool:
        if depth + 1 > self.limits.max_depth:
            self.add(
                anomaly(
                    "anomaly.limit",
                    path,
                    f"nested deeper than {self.limits.max_depth} levels; not opened",
                    limit="max_depth",
                )
            )
            return True
        return False

    def _check_name(self, entry: Entry, path: str) -> None:
        if is_absolute(entry.path):
            self._structural("anomaly.absolute-path", entry, path, "member has an absolute path")
        elif is_traversal(entry.path):
            self._structural("anomaly.path-traversal", entry, path,
                             "member path climbs out of the archive with '..'")

    def _check_link(self, entry: Entry, path: str) -> None:
        if entry.kind is Kind.SPECIAL:
            self._structural("anomaly.special-file", entry, path, "device, FIFO or socket")
            return
        link = entry.link or ""
        hard = entry.kind is Kind.HARDLINK
        if link_escapes(entry.path, link, hard=hard):
            kind = "hard link" if hard else "symbolic link"
            self._structural("anomaly.link-outside", entry, path,
                             f"{kind} to {link!r} points outside the artifact", link=link)

    def _structural(self, rule: str, entry: Entry, path: str, message: str, **evidence: Any) -> None:
        """A hostile member name or type. Inside an archive that sits in a test folder (a
        fixture such as Django's traversal tests) it endangers nobody who installs the
        release, so it is kept but rated low."""
        finding = anomaly(rule, path, message, **evidence)
        container = path[: len(path) - len(entry.path)]
        if SEP in container and in_test_folder(container):
            finding = dataclasses.replace(
                finding, severity=Severity.LOW, message=message + " (in a test fixture archive)",
                evidence={**finding.evidence, "in_tests": True})
        self.add(finding)

    def _image_pass(self, image: ImageAssembler, prefix: str, before: int) -> None:
        """Once a level is walked: place findings in image layers, and note later deletions."""
        images = image.images()
        if not images:
            return
        placement: dict[str, tuple[list[str], int]] = {}
        for layers in images:
            for i, layer in enumerate(layers):
                placement.setdefault(layer, (layers, i))
        for container, member in self.whiteouts:
            if container.startswith(prefix) and container.endswith(SEP):
                layer = container[len(prefix) : -len(SEP)]
                if layer in placement:
                    image.note_whiteout(layer, member)
        findings = self.result.findings
        for n in range(before, len(findings)):
            if not findings[n].path.startswith(prefix):
                continue
            layer, _, inner = findings[n].path[len(prefix) :].partition(SEP)
            if layer in placement:
                layers, i = placement[layer]
                findings[n] = _in_layer(findings[n], layers, i, inner.split(SEP, 1)[0], image)
        self.result.meta["image_layers"] = len(placement)


def _in_layer(
    finding: Finding, layers: list[str], i: int, inner: str, image: ImageAssembler
) -> Finding:
    evidence = dict(finding.evidence, layer=i, layer_blob=layers[i])
    message = finding.message
    gone = image.deleted_by(layers, i, inner) if inner else None
    if gone is not None:
        evidence["deleted_in_layer"] = gone
        message += f" (deleted in layer {gone}, still present in layer {i}'s blob)"
    return dataclasses.replace(finding, evidence=evidence, message=message)


def _rewound(
    content: Content | None, stream: Readable | None, head: bytes, cleanup: contextlib.ExitStack
) -> IO[bytes]:
    """The member from its first byte again: a fresh reader over its content, or the
    sniffed head put back in front of the rest of its stream."""
    if content is not None:
        return cleanup.enter_context(content.seekable())
    assert stream is not None
    return buffered(PrefixedStream(head, stream))


def _disk_entry(path: Path) -> Entry:
    return Entry(path=normalize_member(path.name), attrs={"disk_path": path, "follow_links": True})


def chain_is_virtual(chain: tuple[str, ...]) -> bool:
    return "sourcemap" in chain or "inline-sourcemap" in chain


def _sniff(
    head: bytes, name: str, content: Content | None, *, streaming: bool
) -> type[Opener] | None:
    for opener in artifacts.openers():
        if opener.streaming != streaming:
            continue
        if opener.sniff(head, name, content):
            return opener
    return None


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    lowered = text.lower()
    if (
        isinstance(exc, EOFError)
        or "end of data" in lowered
        or "unexpected end" in lowered
        or "truncated" in lowered
    ):
        return f"truncated or corrupt: {text}"
    return f"corrupt or unreadable: {text}"


def _merge(findings: list[Finding], target: str) -> list[Finding]:
    """Stamp the target, and fold the same problem found in several places into one finding."""
    merged: dict[tuple[str, str], Finding] = {}
    order: list[tuple[str, str]] = []
    for finding in findings:
        ident = (finding.rule, finding.key or finding.path)
        if ident in merged and finding.key:
            first = merged[ident]
            if finding.severity > first.severity:
                # The worst place speaks for the finding (a key in deploy/ outranks its
                # copy in tests/); every place stays listed, that one first.
                merged[ident] = dataclasses.replace(
                    finding, target=target, locations=finding.locations + first.locations
                )
            else:
                merged[ident] = dataclasses.replace(
                    first, locations=first.locations + finding.locations
                )
            continue
        if ident in merged:
            ident = (finding.rule, finding.path + "\0" + str(len(order)))
        merged[ident] = dataclasses.replace(finding, target=target)
        order.append(ident)
    return sorted((merged[i] for i in order), key=sort_key)


# -- parallel walks ----------------------------------------------------------------------
_ENTRIES, _BYTES, _DISK = range(3)
PARALLEL_MIN_BYTES = 4 * 1024 * 1024
"""A target's top-level files must add up to this before a second process pays for itself."""
_IMAGE_DOCUMENTS = frozenset({"manifest.json", "index.json", "oci-layout"})


class _Tally:
    """Target-wide counters; shared memory when several processes walk one target."""

    def __init__(self, context: Any = None, start: Sequence[int] = (0, 0, 0)) -> None:
        self._shared = context.Array("q", list(start)) if context is not None else None
        self._local = list(start)

    def shared(self, context: Any) -> _Tally:
        """This tally in shared memory (itself if it already is), counts kept."""
        if self._shared is not None:
            return self
        return _Tally(context, self._local)

    def add(self, which: int, n: int) -> int:
        if self._shared is None:
            self._local[which] += n
            return self._local[which]
        with self._shared.get_lock():
            self._shared[which] += n
            return int(self._shared[which])

    def get(self, which: int) -> int:
        return self._local[which] if self._shared is None else int(self._shared[which])


@dataclass
class _Part:
    """What a worker of a parallel walk sends back."""

    findings: list[Finding]
    errors: list[str]
    files: int
    bytes: int
    inventory: dict[str, Member]
    meta: dict[str, Any]
    whiteouts: list[tuple[str, str]]
    partials: list[tuple[str, Any]]
    stopped: bool


def _workers(jobs: int) -> int:
    """Processes to use: ``jobs``, or one per usable core for 0; 1 where fork is unsafe."""
    if not sys.platform.startswith("linux") or not hasattr(os, "fork"):
        return 1  # macOS and Windows: spawning workers costs more than it saves here
    if jobs > 0:
        return jobs
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except (AttributeError, OSError):  # pragma: no cover
        return os.cpu_count() or 1


def _cost(entry: Entry) -> int:
    """About how long a member takes to scan, in bytes of plain file: an in-memory file
    with inline source maps is decoded and scanned again inside them (the first-party
    sources of a bundler's map), which costs about three times its size."""
    if entry.data is None:
        return entry.size or 0
    inline = entry.data.rfind(b"sourceMappingURL=data:", max(len(entry.data) - (1 << 20), 0))
    return len(entry.data) * (3 if inline >= 0 else 1)


def _split(entries: list[Entry], jobs: int) -> list[list[Entry]] | None:
    """Consecutive runs of ``entries`` with about equal bytes each, or None when one
    process is better: little to read, or an image layout, whose layers are placed only
    once every top-level document has been seen."""
    sizes = [_cost(e) for e in entries]
    total = sum(sizes)
    if total < PARALLEL_MIN_BYTES or any(e.path in _IMAGE_DOCUMENTS for e in entries):
        return None
    chunks: list[list[Entry]] = []
    start, running = 0, 0
    for i, size in enumerate(sizes):
        running += size
        # Cut after this member once its chunk holds its share, keeping one member
        # for each chunk still to come.
        if (len(chunks) < jobs - 1 and running >= total * (len(chunks) + 1) / jobs
                and len(entries) - (i + 1) >= jobs - 1 - len(chunks)):
            chunks.append(entries[start : i + 1])
            start = i + 1
    chunks.append(entries[start:])
    chunks = [c for c in chunks if c]
    return chunks if len(chunks) > 1 else None
