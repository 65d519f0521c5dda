"""``codecopy``: private source (as fingerprinted by ``seawall index add``) inside an artifact.

Runs only when an index is configured (``[detectors.codecopy] index = "..."``, or
``scan --index`` / ``seawall hunt``); without one it wants no file and imports nothing,
so a plain scan pays nothing for it. Each source file of the artifact (TypeScript,
JavaScript, Python, including a source map's embedded sources and minified bundles) is
tokenised, fingerprinted and looked up in the index; one finding names each original
it contains, and one artifact-level finding counts the distinct originals found.
"""

from __future__ import annotations

import hashlib
import os
import threading
from typing import Any, Iterable

from seawall.detectors.base import Detector, FileView, Rule
from seawall.findings import Finding, Severity

RULES = (
    Rule(
        "leak.code-copy",
        "Private source code copied into the artifact",
        Severity.HIGH,
        "A file of the artifact contains code fingerprinted from your private sources.",
        "The fingerprints of one of your indexed files (token sequences robust to renaming, "
        "reformatting, type stripping and minification; string-literal shingles; whole-file "
        "hashes) are found in this file. `evidence.kind` says how it was copied (verbatim, "
        "renamed, transpiled, string-only), `coverage_original` how much of the original it "
        "holds, and the line ranges show where, on both sides. Treat the original as exposed.",
        fix="Check the matched lines; if the copy is real, take the release down and treat "
        "the original as public.",
    ),
    Rule(
        "leak.code-copy-artifact",
        "Artifact contains private source code",
        Severity.HIGH,
        "Summary: how many distinct indexed originals this artifact contains.",
        "One finding per artifact with copies, counting the distinct originals found "
        "(`evidence.originals`) and the labels they come from, so a registry-wide hunt "
        "can rank artifacts without reading every file finding.",
    ),
)

MAX_BYTES = 24 * 1024 * 1024
"""Larger source files are not fingerprinted: parsing holds the whole syntax tree, about
100 bytes of memory per byte of minified code (a 13 MB bundle peaks at 1.3 GB), and takes
about 1 s per MB. ``[detectors.codecopy] max_bytes`` raises it."""

_INDEXES: dict[tuple[str, int, int], Any] = {}
"""Loaded indexes by (path, mtime, size): a fresh detector per target must not reload."""
_LOADING = threading.Lock()


def load_index(path: str) -> Any:
    from seawall.hunt import require
    from seawall.hunt.index import Index

    require()
    stat = os.stat(path)
    key = (os.path.abspath(path), stat.st_mtime_ns, stat.st_size)
    with _LOADING:  # threads (watch) share one copy, with its lookup tables built once
        index = _INDEXES.get(key)
        if index is None:
            _INDEXES.clear()
            index = _INDEXES[key] = Index.load(path)
            index.query_arrays()
    return index


class CodeCopyDetector(Detector):
    name = "codecopy"
    rules = RULES
    merges = True

    def __init__(self, settings: Any = None) -> None:
        super().__init__(settings)
        self.index_path: str | None = self.settings.get("index") or None
        self.max_bytes = int(self.settings.get("max_bytes", MAX_BYTES))
        self._index: Any = None
        self.found: dict[str, set[str]] = {}
        """Original paths found, by label."""
        self.files = 0

    def wants(self, view: FileView) -> bool:
        if self.index_path is None or not view.complete or view.size > self.max_bytes:
            return False
        from seawall.hunt.lexer import language_for

        return language_for(view.inner) is not None

    def index(self) -> Any:
        if self._index is None:
            assert self.index_path is not None
            self._index = load_index(self.index_path)
        return self._index

    def scan(self, view: FileView) -> Iterable[Finding]:
        from seawall.hunt.fingerprint import fingerprint
        from seawall.hunt.lexer import FAMILY, language_for
        from seawall.hunt.query import match

        language = language_for(view.inner)
        assert language is not None
        data = bytes(view.data)
        if b"\0" in data[:8192]:
            return []
        index = self.index()
        if index.has_anchors:
            from seawall.hunt.anchors import worth_parsing

            if not worth_parsing(data, index):
                return []  # shares too few anchors with any original: not parsed
        fp = fingerprint(data, language)
        findings = []
        for m in match(index, fp, FAMILY[language]):
            evidence = m.evidence(index)
            self.found.setdefault(evidence["label"], set()).add(evidence["original"])
            severity = Severity.MEDIUM if m.kind == "string-only" else None
            message = (f"contains {evidence['original']} ({evidence['label']}): {m.kind}, "
                       f"{m.coverage_original:.0%} of the original")
            key = hashlib.sha256(
                f"{view.path}\0{evidence['label']}\0{evidence['original']}".encode()
            ).hexdigest()[:24]
            first = m.suspect_lines[0][0] if m.suspect_lines else None
            findings.append(self.finding("leak.code-copy", view.path, message, evidence,
                                         severity=severity, line=first, key=key))
        if findings:
            self.files += 1
        return findings

    def partial(self) -> Any:
        return {"found": {k: sorted(v) for k, v in self.found.items()}, "files": self.files}

    def merge(self, partial: Any) -> None:
        if not partial:
            return
        for label, paths in partial["found"].items():
            self.found.setdefault(label, set()).update(paths)
        self.files += int(partial["files"])

    def finish(self) -> Iterable[Finding]:
        if not self.found:
            return []
        total = sum(len(v) for v in self.found.values())
        labels = {label: len(paths) for label, paths in sorted(self.found.items())}
        message = (f"artifact contains {total} private original file(s) "
                   f"in {self.files} file(s)")
        return [self.finding("leak.code-copy-artifact", "", message,
                             {"originals": total, "files": self.files, "labels": labels},
                             key="code-copy-artifact")]
