"""Walk a target as one tree of files, however nested, and run every detector on it.

The engine owns recursion, limits and error handling; openers only list members and
detectors only look at one member at a time. One bad member, container or target never
stops the others, and nothing that could not be read is ever reported as clean.
"""

from __future__ import annotations

import bz2
import dataclasses
import lzma
import struct
import tarfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

import zstandard

from seawall import artifacts
from seawall.artifacts.base import (
    SEP,
    Content,
    CorruptArchive,
    Entry,
    Kind,
    Opener,
    Source,
    Unscannable,
    is_absolute,
    is_traversal,
    link_escapes,
    read_at_most,
    read_head,
    HEAD_BYTES,
    PrefixedStream,
    buffered,
)
from seawall.artifacts.directory import walk_directory
from seawall.artifacts.image import WHITEOUT, ImageAssembler
from seawall.detectors.anomaly import anomaly
from seawall.detectors.base import Detector, FileView, all_detectors
from seawall.findings import Finding, sort_key
from seawall.limits import LimitExceeded, Limits

READ_ERRORS = (
    CorruptArchive,
    tarfile.TarError,
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    lzma.LZMAError,
    zstandard.ZstdError,
    OSError,
    struct.error,
)

try:  # isal raises its own error type for damaged gzip streams
    from isal.isal_zlib import error as _isal_error

    READ_ERRORS = READ_ERRORS + (_isal_error,)
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
    error: str | None = None
    """Set when resolving failed (e.g. the registry did not answer)."""
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class TargetResult:
    target: str
    files: int = 0
    bytes: int = 0
    errors: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

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


@dataclass
class Engine:
    limits: Limits = field(default_factory=Limits)
    settings: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Per-detector configuration sections, by detector name."""
    disabled_detectors: frozenset[str] = frozenset()
    progress: Callable[[str, int], None] | None = None
    """Called with (path, bytes) as each member is read."""

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
        for detector in walk.detectors:
            walk.add_all(detector.finish())
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
        self.entries = 0
        self.whiteouts: list[tuple[str, str]] = []

    # -- bookkeeping -------------------------------------------------------------
    def add(self, finding: Finding) -> None:
        self.result.findings.append(finding)

    def add_all(self, findings: Iterable[Finding]) -> None:
        self.result.findings.extend(findings)

    def error(self, path: str, message: str) -> None:
        self.result.errors.append(f"{path}: {message}")

    def _count_entry(self, path: str) -> None:
        self.entries += 1
        if self.entries > self.limits.max_entries:
            self.add(anomaly("anomaly.limit", path, f"more than {self.limits.max_entries:,} members; "
                             "the rest of the target was not scanned", limit="max_entries"))
            raise _StopTarget

    def _count_bytes(self, path: str, n: int) -> None:
        self.result.bytes += n
        if self.result.bytes > self.limits.max_total_bytes:
            self.add(anomaly("anomaly.limit", path, f"more than {self.limits.max_total_bytes:,} expanded "
                             "bytes; the rest of the target was not scanned", limit="max_total_bytes"))
            raise _StopTarget
        if self.engine.progress:
            self.engine.progress(path, n)

    # -- the walk ----------------------------------------------------------------
    def run(self) -> None:
        target = self.target
        if target.error:
            self.error(target.name, target.error)
            return
        if target.files:
            entries = (Entry(path=p.name, size=p.stat().st_size, attrs={"disk_path": p}) for p in target.files)
            self.walk(entries, "", 0, ())
        elif target.path is not None and target.path.is_dir():
            self.walk(walk_directory(target.path), "", 0, ())
        elif target.path is not None:
            entry = Entry(path=target.path.name, size=target.path.stat().st_size,
                          attrs={"disk_path": target.path})
            self.visit(entry, entry.path, 0, (), transparent=True)

    def walk(self, entries: Iterator[Entry] | Iterable[Entry], prefix: str, depth: int,
             chain: tuple[str, ...]) -> None:
        image = ImageAssembler()
        before = len(self.result.findings)
        for entry in entries:
            path = prefix + entry.path
            self._count_entry(path)
            self._check_name(entry, path)
            if entry.kind is Kind.FILE:
                if entry.path.rsplit("/", 1)[-1].startswith(WHITEOUT):
                    self._note_whiteout(prefix, entry.path)
                    continue
                self._visit_guarded(entry, path, depth, chain, image)
            elif entry.kind is Kind.DIR:
                for detector in self.detectors:
                    self.add_all(detector.scan_dir(path, entry.path))
            else:
                self._check_link(entry, path)
        self._image_pass(image, prefix, before)

    def _visit_guarded(self, entry: Entry, path: str, depth: int, chain: tuple[str, ...],
                       image: ImageAssembler | None = None) -> None:
        try:
            self.visit(entry, path, depth, chain, image=image)
        except _StopTarget:
            raise
        except LimitExceeded as exc:
            rule = "anomaly.bomb" if exc.limit == "max_ratio" else "anomaly.limit"
            self.add(anomaly(rule, path, str(exc), limit=exc.limit))
        except Unscannable as exc:
            self.add(anomaly("anomaly.unscanned", path, str(exc)))
        except READ_ERRORS as exc:
            message = _describe(exc)
            self.error(path, message)
            self.add(anomaly("anomaly.corrupt", path, message))
        except Exception as exc:  # noqa: BLE001 - report, never crash on hostile input
            message = f"internal error: {type(exc).__name__}: {exc}"
            self.error(path, message)

    def visit(self, entry: Entry, path: str, depth: int, chain: tuple[str, ...], *,
              transparent: bool = False, image: ImageAssembler | None = None) -> None:
        """Scan one file member, and open it if it is a container."""
        name = entry.path
        disk = entry.attrs.get("disk_path")
        content: Content | None = None
        stream = None
        if disk is not None:
            content = Content.from_file(Path(disk))
            head = bytes(content.data[:HEAD_BYTES])
        elif entry.data is not None:
            content = Content(entry.data)
            head = entry.data[:HEAD_BYTES]
        else:
            stream = entry.stream()
            head = read_head(stream)

        child_prefix = "" if transparent else path + SEP
        streaming = _sniff(head, name, None, streaming=True)
        if streaming is not None:
            # Forward-only containers (tar, compressed) are never held in memory whole.
            view_content = content or Content(head)
            self._detect(entry, path, view_content, len(view_content), chain, streaming.name,
                         complete=content is not None)
            if self._too_deep(path, depth):
                return
            source_stream = content.seekable() if content is not None else stream
            assert source_stream is not None
            if content is None:
                source_stream = buffered(PrefixedStream(head, source_stream))
            opener = streaming(self.limits)
            self.walk(opener.entries(Source(name, stream=source_stream, head=head)),
                      child_prefix, depth + 1, chain + (opener.name,))
            return

        complete = True
        if content is None:
            assert stream is not None
            rest, more = read_at_most(stream, max(self.limits.max_file_bytes - len(head), 0))
            content = Content(head + rest)
            if more:
                complete = False
                self.add(anomaly("anomaly.unscanned", path,
                                 f"only the first {self.limits.max_file_bytes:,} bytes were scanned",
                                 limit="max_file_bytes"))
        self.result.files += 1
        self._count_bytes(path, len(content))
        if image is not None and not chain_is_virtual(chain):
            image.observe(entry.path, content.data)

        opener_cls = _sniff(head, name, content, streaming=False)
        memo: dict[str, Any] = {}
        self._detect(entry, path, content, entry.size or len(content), chain,
                     opener_cls.name if opener_cls else None, complete=complete, memo=memo)
        if opener_cls is None or self._too_deep(path, depth):
            return
        opener = _make(opener_cls, self.limits, memo)
        self.walk(opener.entries(Source(name, content=content, head=head)),
                  child_prefix, depth + 1, chain + (opener.name,))

    # -- helpers -----------------------------------------------------------------
    def _detect(self, entry: Entry, path: str, content: Content, size: int, chain: tuple[str, ...],
                container: str | None, *, complete: bool, memo: dict[str, Any] | None = None) -> None:
        view = FileView(path=path, inner=entry.path, content=content, size=size, complete=complete,
                        chain=chain, container=container, attrs=entry.attrs,
                        memo=memo if memo is not None else {})
        for detector in self.detectors:
            if detector.wants(view):
                self.add_all(detector.scan(view))

    def _too_deep(self, path: str, depth: int) -> bool:
        if depth + 1 > self.limits.max_depth:
            self.add(anomaly("anomaly.limit", path, f"nested deeper than {self.limits.max_depth} "
                             "levels; not opened", limit="max_depth"))
            return True
        return False

    def _check_name(self, entry: Entry, path: str) -> None:
        if is_absolute(entry.path):
            self.add(anomaly("anomaly.absolute-path", path, "member has an absolute path"))
        elif is_traversal(entry.path):
            self.add(anomaly("anomaly.path-traversal", path, "member path climbs out of the archive with '..'"))

    def _check_link(self, entry: Entry, path: str) -> None:
        if entry.kind is Kind.SPECIAL:
            if "error" in entry.attrs:
                self.error(path, str(entry.attrs["error"]))
                self.add(anomaly("anomaly.corrupt", path, str(entry.attrs["error"])))
            else:
                self.add(anomaly("anomaly.special-file", path, "device, FIFO or socket"))
            return
        link = entry.link or ""
        hard = entry.kind is Kind.HARDLINK
        if link_escapes(entry.path, link, hard=hard):
            kind = "hard link" if hard else "symbolic link"
            self.add(anomaly("anomaly.link-outside", path, f"{kind} to {link!r} points outside the artifact",
                             link=link))

    def _note_whiteout(self, prefix: str, member: str) -> None:
        self.whiteouts.append((prefix, member))

    def _image_pass(self, image: ImageAssembler, prefix: str, before: int) -> None:
        layers = image.layers()
        if not layers:
            return
        for layer_prefix, member in self.whiteouts:
            for layer in layers:
                if layer_prefix == prefix + layer + SEP:
                    image.note_whiteout(layer, member)
        index_of = {prefix + layer + SEP: i for i, layer in enumerate(layers)}
        findings = self.result.findings
        for n in range(before, len(findings)):
            finding = findings[n]
            for layer_prefix, i in index_of.items():
                if not finding.path.startswith(layer_prefix):
                    continue
                inner = finding.path[len(layer_prefix):].split(SEP, 1)[0]
                evidence = dict(finding.evidence, layer=i, layer_blob=layers[i])
                gone = image.deleted_by(layers, i, inner)
                message = finding.message
                if gone is not None:
                    evidence["deleted_in_layer"] = gone
                    message += f" (deleted in layer {gone}, still present in layer {i}'s blob)"
                findings[n] = dataclasses.replace(finding, evidence=evidence, message=message)
                break
        self.result.meta["image_layers"] = len(layers)


def chain_is_virtual(chain: tuple[str, ...]) -> bool:
    return "sourcemap" in chain or "inline-sourcemap" in chain


def _sniff(head: bytes, name: str, content: Content | None, *, streaming: bool) -> type[Opener] | None:
    for opener in artifacts.openers():
        if opener.streaming != streaming:
            continue
        if opener.sniff(head, name, content):
            return opener
    return None


def _make(opener_cls: type[Opener], limits: Limits, memo: dict[str, Any]) -> Opener:
    try:
        return opener_cls(limits, memo=memo)  # type: ignore[call-arg]
    except TypeError:
        return opener_cls(limits)


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, EOFError) or "end of data" in text.lower() or "unexpected end" in text.lower():
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
            merged[ident] = dataclasses.replace(first, locations=first.locations + finding.locations)
            continue
        if ident in merged:
            ident = (finding.rule, finding.path + "\0" + str(len(order)))
        merged[ident] = dataclasses.replace(finding, target=target)
        order.append(ident)
    return sorted((merged[i] for i in order), key=sort_key)
