"""Read private sources through the same openers as ``scan`` and fingerprint them.

A source can be anything ``scan`` reads (a folder, a tarball, a source map with embedded
sources, a registry spec): the engine walks it and a collecting detector fingerprints
every member in a language the lexer reads (``lexer.LANGUAGES``). Paths are recorded as ``scan`` reports
them, so a finding names the original the way the user's tree does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable

from seawall.detectors.base import Detector, FileView
from seawall.engine import Engine, Target
from seawall.findings import Finding
from seawall.hunt.fingerprint import Fingerprint, fingerprint
from seawall.hunt.index import Packer, compact
from seawall.hunt.lexer import language_for

MAX_SOURCE_BYTES = 24 * 1024 * 1024
"""As ``codecopy.MAX_BYTES``: a parse holds ~100 bytes of memory per byte of source."""


class _Collector(Detector):
    """Not registered (its name is set per instance): it never runs inside ``scan``."""

    def __init__(self, sink: Callable[[str, str, Fingerprint], Any]) -> None:
        super().__init__({})
        self.name = "hunt-index"  # type: ignore[misc]
        self.sink = sink

    def wants(self, view: FileView) -> bool:
        if not view.complete or view.size > MAX_SOURCE_BYTES:
            return False
        if "node_modules/" in view.path:
            return False  # third-party code, even inside a source map
        if "inline-sourcemap" in view.chain:
            return False  # a compiled file's own source again, from its inline map
        return language_for(view.inner) is not None

    def scan(self, view: FileView) -> Iterable[Finding]:
        language = language_for(view.inner)
        assert language is not None
        data = bytes(view.data)
        if b"\0" not in data[:8192]:
            self.sink(view.path, language, compact(fingerprint(data, language, anchors=True)))
        return ()


class _CollectingEngine(Engine):
    sink: Callable[[str, str, Fingerprint], Any]

    def detectors(self) -> list[Detector]:
        return [_Collector(self.sink)]


def collect(sources: Iterable[str | Target], *, cache_dir: Path | None = None,
            packer: Packer | None = None
            ) -> tuple[list[tuple[str, str, Fingerprint]], list[str]]:
    """Fingerprints of every source file in ``sources`` (specs, or targets already
    resolved), and the errors met on the way. The same path twice (two sources): the
    first stays. With a ``packer`` they go into it as they come (what ``index add``
    does, to keep a large build's memory low) and the list returned is empty."""
    from seawall.scan import resolve_target

    items: list[tuple[str, str, Fingerprint]] = []
    seen: set[str] = set()

    def keep(path: str, language: str, fp: Fingerprint) -> None:
        if packer is not None:
            packer.add(path, language, fp)
        elif path not in seen:
            seen.add(path)
            items.append((path, language, fp))

    errors: list[str] = []
    engine = _CollectingEngine()
    engine.sink = keep
    for spec in sources:
        target = spec if isinstance(spec, Target) else resolve_target(spec, cache_dir=cache_dir)
        result = engine.scan_target(target)
        errors.extend(result.errors)
    return items, errors
