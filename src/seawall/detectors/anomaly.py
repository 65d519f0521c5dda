"""``anomaly``: what is wrong with the artifact's structure rather than its content.

Most anomalies are raised by the engine while it opens containers (limits, traversal
paths, links, corrupt members); this module owns their rule metadata, and itself
notes unusually large members.
"""

from __future__ import annotations

from typing import Iterable

from seawall.detectors.base import Detector, FileView, Rule
from seawall.findings import Finding, Severity

RULES = (
    Rule(
        "anomaly.bomb",
        "Decompression bomb",
        Severity.HIGH,
        "A member expands far beyond its stored size; it was not inflated.",
        "Archives whose members expand hundreds of times are built to exhaust memory or "
        "disk. Seawall stops inflating at the ratio limit (`limits.max-ratio`). Remove the "
        "member or raise the limit if the content is legitimate and highly repetitive.",
    ),
    Rule(
        "anomaly.limit",
        "Scan limit reached",
        Severity.HIGH,
        "A configured limit (depth, entries, total bytes) stopped part of the scan.",
        "Part of the artifact was not examined because a named limit was reached. The "
        "finding says which limit; raise it under `[limits]` if the artifact is trusted.",
    ),
    Rule(
        "anomaly.unscanned",
        "Content not fully scanned",
        Severity.MEDIUM,
        "Part of a member could not be read (too large, encrypted or unsupported).",
        "Seawall never reports unread bytes as clean. Inspect the member by hand, or raise "
        "`limits.max-file-bytes` if it was cut short by size.",
    ),
    Rule(
        "anomaly.corrupt",
        "Corrupt or unreadable member",
        Severity.MEDIUM,
        "A container could not be read to the end; what follows the damage was not scanned.",
        "A truncated or damaged archive cannot be verified. Rebuild the artifact; the scan "
        "exits with status 2 so that a partial read is never taken for a clean one.",
    ),
    Rule(
        "anomaly.path-traversal",
        "Path traversal in archive",
        Severity.HIGH,
        "A member name climbs out of the archive root with `..`.",
        "Extracting such an archive writes outside the target folder (zip-slip). No "
        "legitimate release needs it.",
    ),
    Rule(
        "anomaly.absolute-path",
        "Absolute path in archive",
        Severity.HIGH,
        "A member name is absolute (`/etc/...`, `C:/...`).",
        "Extracting such an archive can overwrite system files. No legitimate release needs it.",
    ),
    Rule(
        "anomaly.link-outside",
        "Link pointing outside the archive",
        Severity.HIGH,
        "A symbolic or hard link resolves outside the artifact's root.",
        "Links out of the tree let an extractor read or overwrite arbitrary files. Seawall "
        "never follows them.",
    ),
    Rule(
        "anomaly.special-file",
        "Device, FIFO or socket in archive",
        Severity.MEDIUM,
        "A member is a device node, FIFO or socket.",
        "Release artifacts contain regular files, folders and at most local links.",
    ),
    Rule(
        "anomaly.large-addition",
        "Large file added since the previous release",
        Severity.MEDIUM,
        "A release diff found a new member larger than the large-file threshold.",
        "A large new file is the usual shape of an accident: a source map, a dump, a "
        "checkpoint. Check that it is meant to ship before publishing.",
        fix="Open the named file and confirm it belongs in the release; exclude it otherwise.",
    ),
    Rule(
        "anomaly.size-growth",
        "Release grew past the allowed ratio",
        Severity.MEDIUM,
        "The release's unpacked size grew by more than the allowed ratio since the previous one.",
        "Sudden growth means new content; the finding names the members that grew most. "
        "The ratio is `--growth-ratio` (default 1.5).",
        fix="Review the largest added or grown members named in the finding before publishing.",
    ),
    Rule(
        "anomaly.large-file",
        "Unusually large file",
        Severity.INFO,
        "A member is large enough to dominate the release; check that it is meant to ship.",
        "Large members are where accidents hide (a 60 MB source map, a checkpoint, a dump). "
        "The threshold is `limits.large-file-bytes`.",
    ),
)


class AnomalyDetector(Detector):
    name = "anomaly"
    rules = RULES
    merges = True  # each file on its own

    def __init__(self, settings=None, large_file_bytes: int = 50 * 1024 * 1024) -> None:  # type: ignore[no-untyped-def]
        super().__init__(settings)
        self.large_file_bytes = int(self.settings.get("large_file_bytes", large_file_bytes))

    def wants(self, view: FileView) -> bool:
        return view.size >= self.large_file_bytes and not view.in_sourcemap

    def scan(self, view: FileView) -> Iterable[Finding]:
        yield self.finding(
            "anomaly.large-file",
            view.path,
            f"{view.size / 1e6:.1f} MB file",
            {"bytes": view.size},
        )


RULE_BY_ID = {rule.id: rule for rule in RULES}


def anomaly(rule_id: str, path: str, message: str, **evidence: object) -> Finding:
    """Build an anomaly finding from anywhere in the engine."""
    rule = RULE_BY_ID[rule_id]
    return Finding(rule=rule_id, severity=rule.severity, path=path, message=message, evidence=evidence)
