"""``sourcemap``: maps that ship original source, point at it remotely, or dangle.

Severity follows what is exposed, not the file name: a map embedding first-party
source is critical, one embedding only ``node_modules`` code is low, one listing paths
only is low. Maps are recognised by content wherever they are (``.map``, ``.map.gz``,
inline ``data:`` URIs, odd names), whatever their key order or size.
"""

from __future__ import annotations

import posixpath
import re
from collections import Counter
from typing import Iterable

from seawall.artifacts import sourcemap as smap
from seawall.artifacts.base import SEP
from seawall.detectors.base import Detector, FileView, Rule
from seawall.findings import Finding, Severity

RULES = (
    Rule(
        "sourcemap.embedded-source",
        "Source map embeds first-party source",
        Severity.CRITICAL,
        "A source map carries the original text of your own files in `sourcesContent`.",
        "Anyone who downloads the release can rebuild the original source tree from this "
        "map, comments and all. Stop emitting `sourcesContent` (esbuild `--sources-content=false`, "
        "webpack `noSources`, TypeScript `inlineSources: false`) or stop shipping maps: add "
        "`*.map` to `.npmignore` or drop it from `files`. If it was already published, deprecate "
        "the version and treat everything in it as public.",
        fix="Stop emitting sourcesContent or stop shipping *.map files; if already published, "
        "deprecate the version and treat the embedded source as public.",
    ),
    Rule(
        "sourcemap.embedded-dependencies",
        "Source map embeds dependency source only",
        Severity.LOW,
        "A source map embeds only third-party (`node_modules`) source.",
        "The embedded code is already public, but the map still reveals your dependency set "
        "and bloats the package. Consider not shipping it.",
    ),
    Rule(
        "sourcemap.source-paths",
        "Source map lists source paths",
        Severity.LOW,
        "A source map names original source files without embedding their content.",
        "The paths reveal your internal layout and file names, but not the code. Usually "
        "acceptable for libraries; check that no path is itself sensitive.",
    ),
    Rule(
        "sourcemap.remote-sources",
        "Source map points at remote source",
        Severity.HIGH,
        "`sourceRoot` or `sources` point at an http(s) or bucket URL.",
        "Browsers and tools fetch the original source from that URL. If the bucket is public, "
        "your source is public too: check it and lock it down.",
        fix="Check what the URL serves and make it private; strip sourceRoot from release maps.",
    ),
    Rule(
        "sourcemap.remote-map",
        "sourceMappingURL points at a remote map",
        Severity.HIGH,
        "A shipped script names a source map hosted at a URL.",
        "The map, and the source it embeds, are one request away from anyone who reads the "
        "script. Check what the URL serves and remove the comment from release builds.",
        fix="Remove the sourceMappingURL comment from release builds and check what the URL serves.",
    ),
    Rule(
        "sourcemap.missing-map",
        "sourceMappingURL names a map that is not shipped",
        Severity.INFO,
        "A shipped script references a local map file that the artifact does not contain.",
        "Harmless for privacy, but it shows maps exist in your build; make sure they are "
        "excluded on purpose and not shipped elsewhere.",
    ),
)

THIRD_PARTY_PREFIXES = ("webpack/bootstrap", "webpack/runtime", "(webpack)", "\x00", "external ")
REMOTE = re.compile(r"^(?:https?:)?//|^(?:s3|gs|r2|az)://", re.IGNORECASE)
REFERENCE = re.compile(rb"(?://|/\*)[#@][ \t]*sourceMappingURL=([^\s'\"`*]+)")
SCRIPT_SUFFIXES = (".js", ".mjs", ".cjs", ".jsx", ".css", ".ts", ".mts", ".cts")


def is_third_party(source: str) -> bool:
    parts = source.replace("\\", "/").split("/")
    return "node_modules" in parts or source.lstrip("./").startswith(THIRD_PARTY_PREFIXES)


class SourceMapDetector(Detector):
    name = "sourcemap"
    rules = RULES
    merges = True

    def __init__(self, settings=None) -> None:  # type: ignore[no-untyped-def]
        super().__init__(settings)
        self.seen: set[str] = set()
        self.references: list[tuple[str, str]] = []  # (expected map path, referencing script)

    def wants(self, view: FileView) -> bool:
        self.seen.add(view.path)
        if view.in_sourcemap:
            # Maps inside a map's embedded sources are part of the exposure already reported.
            return False
        if view.container == "sourcemap":
            return True
        return view.inner.lower().endswith(SCRIPT_SUFFIXES)

    def scan(self, view: FileView) -> Iterable[Finding]:
        if view.container == "sourcemap":
            parsed = smap.load(view.content, view.memo)
            if parsed is not None:
                yield from self._map_findings(view, parsed)
            return
        yield from self._references(view)

    def _map_findings(self, view: FileView, parsed: smap.SourceMap) -> Iterable[Finding]:
        first: list[tuple[str, str | None]] = []
        third = third_with_content = 0
        for src, body in zip(parsed.sources, parsed.contents):
            if is_third_party(src):
                third += 1
                third_with_content += body is not None
            else:
                first.append((src, body))
        with_content = [(s, b) for s, b in first if b is not None]
        folders = Counter(smap.virtual_path(s).split("/", 1)[0] for s, _ in first)
        evidence = {
            "sources": len(parsed.sources),
            "sources_with_content": sum(b is not None for b in parsed.contents),
            "first_party_sources": len(first),
            "first_party_with_content": len(with_content),
            "first_party_lines": sum(len(b.splitlines()) for _, b in with_content if b),
            "first_party_bytes": sum(len(b.encode("utf-8", "surrogatepass")) for _, b in with_content if b),
            "third_party_sources": third,
            "top_folders": dict(folders.most_common(20)),
            "sample": [smap.virtual_path(s) for s, _ in first[:10]],
        }
        if view.attrs.get("inline"):
            evidence["inline"] = True
        remote = [s for s in [parsed.source_root or "", *parsed.sources] if s and REMOTE.match(s)]
        if remote:
            yield self.finding(
                "sourcemap.remote-sources", view.path,
                f"source map points at remote source ({remote[0][:120]})",
                {"remote_sources": len(remote), "example": remote[0][:300],
                 "source_root": parsed.source_root},
            )
        if with_content:
            yield self.finding(
                "sourcemap.embedded-source", view.path,
                f"source map embeds {len(with_content):,} first-party source files "
                f"({evidence['first_party_lines']:,} lines) out of {len(parsed.sources):,} sources",
                evidence,
            )
        elif third_with_content:
            yield self.finding(
                "sourcemap.embedded-dependencies", view.path,
                f"source map embeds {third_with_content:,} dependency sources and no first-party source",
                evidence,
            )
        elif parsed.sources and not remote:
            yield self.finding(
                "sourcemap.source-paths", view.path,
                f"source map lists {len(parsed.sources):,} source paths ({len(first):,} first-party), "
                "without content",
                evidence,
            )

    def _references(self, view: FileView) -> Iterable[Finding]:
        data = view.data
        if data.find(b"sourceMappingURL=") < 0:
            return
        for match in REFERENCE.finditer(data):
            url = match.group(1).decode("utf-8", "replace")
            if url.startswith("data:"):
                continue  # inline maps are opened as containers and judged there
            if REMOTE.match(url):
                yield self.finding(
                    "sourcemap.remote-map", view.path,
                    f"script references a remote source map: {url[:200]}",
                    {"url": url[:500]}, key=url[:500],
                )
                continue
            folder = posixpath.dirname(view.inner)
            resolved = posixpath.normpath(posixpath.join(folder, url.split("?", 1)[0].split("#", 1)[0]))
            container = view.path[: len(view.path) - len(view.inner)]
            self.references.append((container + resolved, view.path))

    def partial(self) -> tuple[set[str], list[tuple[str, str]]]:
        return self.seen, self.references

    def merge(self, partial: tuple[set[str], list[tuple[str, str]]]) -> None:
        seen, references = partial
        self.seen |= seen
        self.references += references

    def finish(self) -> Iterable[Finding]:
        for expected, script in self.references:
            if expected in self.seen or expected + ".gz" in self.seen:
                continue
            name = expected.rsplit(SEP, 1)[-1]
            yield self.finding(
                "sourcemap.missing-map", script,
                f"script references {name}, which is not in the artifact",
                {"map": name}, key=name,
            )
