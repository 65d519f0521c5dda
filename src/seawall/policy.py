"""Configuration, ignores and baselines. Flows one way: file, then CLI overrides, then frozen.

Config lives in ``seawall.toml`` (top level) or ``[tool.seawall]`` in ``pyproject.toml``::

    fail-on = "high"
    disable = ["file.editor-debris", "anomaly.large-file"]   # rule ids or prefixes
    ignore-paths = ["package/test/**"]                       # gitignore-style, on full paths

    [severity]
    "sourcemap.source-paths" = "medium"

    [limits]
    max-depth = 8

    [[ignore]]
    rule = "file.env"
    path = "package/examples/.env"
    reason = "dummy values for the tutorial"

A baseline accepts known findings by fingerprint, so only new ones are reported.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Iterable, Mapping

import pathspec

from seawall import __version__
from seawall.findings import Finding, Severity, sort_key
from seawall.limits import Limits

CONFIG_NAMES = ("seawall.toml", ".seawall.toml")


class ConfigError(ValueError):
    """The configuration or baseline cannot be used; the CLI exits with status 2."""


@dataclass(frozen=True)
class Ignore:
    rule: str = "*"
    path: str = "*"
    reason: str = ""

    def matches(self, finding: Finding) -> bool:
        return fnmatchcase(finding.rule, self.rule) and fnmatchcase(finding.path, self.path)


@dataclass(frozen=True)
class Policy:
    fail_on: Severity = Severity.MEDIUM
    disabled: frozenset[str] = frozenset()
    severity: Mapping[str, Severity] = field(default_factory=dict)
    ignore_paths: tuple[str, ...] = ()
    ignores: tuple[Ignore, ...] = ()
    limits: Limits = field(default_factory=Limits)
    detectors: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    baseline: frozenset[str] = frozenset()
    jobs: int = 0
    """Processes that share a target's files; 0 is one per core."""
    source: str | None = None
    """Where the configuration came from, for the report."""

    def is_disabled(self, rule: str) -> bool:
        return any(rule == d or rule.startswith(d + ".") for d in self.disabled)

    def apply(self, findings: Iterable[Finding]) -> tuple[list[Finding], int]:
        """Filter and re-rate findings. Returns the kept findings and how many were suppressed."""
        spec = pathspec.GitIgnoreSpec.from_lines(self.ignore_paths) if self.ignore_paths else None
        kept: list[Finding] = []
        suppressed = 0
        for finding in findings:
            if (
                self.is_disabled(finding.rule)
                or finding.fingerprint in self.baseline
                or (spec is not None and _path_ignored(spec, finding.path))
                or any(ignore.matches(finding) for ignore in self.ignores)
            ):
                suppressed += 1
                continue
            override = self.severity.get(finding.rule)
            if override is not None and override != finding.severity:
                finding = dataclasses.replace(finding, severity=override)
            kept.append(finding)
        return sorted(kept, key=sort_key), suppressed

    def fails(self, findings: Iterable[Finding]) -> bool:
        return any(f.severity >= self.fail_on for f in findings)


def _path_ignored(spec: pathspec.PathSpec, path: str) -> bool:
    # Patterns may name the full nested path or the path inside the innermost container.
    return spec.match_file(path) or spec.match_file(path.rsplit("!/", 1)[-1])


def find_config(start: Path) -> Path | None:
    """The nearest seawall.toml or pyproject.toml with [tool.seawall], walking up from ``start``."""
    for folder in [start, *start.parents]:
        for name in CONFIG_NAMES:
            if (folder / name).is_file():
                return folder / name
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file() and "seawall" in _read_toml(pyproject).get("tool", {}):
            return pyproject
        if (folder / ".git").exists():
            break
    return None


def load(path: Path | None = None, *, start: Path | None = None) -> Policy:
    """Read a config file (explicit, or discovered from ``start``); no file gives the defaults."""
    if path is None:
        path = find_config(start or Path.cwd())
        if path is None:
            return Policy()
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    data = _read_toml(path)
    if path.name == "pyproject.toml":
        data = data.get("tool", {}).get("seawall", {})
    return from_mapping(data, source=str(path))


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from None


KNOWN_KEYS = {"fail-on", "disable", "ignore-paths", "severity", "limits", "ignore", "detectors",
              "jobs"}


def from_mapping(data: Mapping[str, Any], *, source: str | None = None) -> Policy:
    where = source or "config"
    unknown = set(data) - KNOWN_KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; "
                          f"known: {', '.join(sorted(KNOWN_KEYS))}")
    try:
        return Policy(
            fail_on=Severity.parse(str(data.get("fail-on", "medium"))),
            disabled=frozenset(_strings(data.get("disable", []), "disable")),
            severity={str(k): Severity.parse(str(v)) for k, v in dict(data.get("severity", {})).items()},
            ignore_paths=tuple(_strings(data.get("ignore-paths", []), "ignore-paths")),
            ignores=tuple(_ignore(item) for item in data.get("ignore", [])),
            limits=Limits.from_mapping(dict(data.get("limits", {}))),
            detectors={str(k): dict(v) for k, v in dict(data.get("detectors", {})).items()},
            jobs=_jobs(data.get("jobs", 0)),
            source=source,
        )
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _jobs(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"'jobs' must be 0 (one per core) or a positive integer, got {value!r}")
    return value


def _strings(value: Any, key: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{key!r} must be a list of strings")
    return value


def _ignore(item: Any) -> Ignore:
    if not isinstance(item, dict) or not ({"rule", "path"} & set(item)):
        raise ValueError("each [[ignore]] needs a 'rule' and/or a 'path' glob")
    return Ignore(rule=str(item.get("rule", "*")), path=str(item.get("path", "*")),
                  reason=str(item.get("reason", "")))


# -- baselines ---------------------------------------------------------------------
BASELINE_VERSION = 1


def write_baseline(findings: Iterable[Finding], path: Path, policy: Policy) -> int:
    entries = [
        {"fingerprint": f.fingerprint, "rule": f.rule, "path": f.path, "severity": f.severity.label}
        for f in sorted(findings, key=sort_key)
    ]
    doc = {
        "seawall_baseline": BASELINE_VERSION,
        "seawall_version": __version__,
        "config": policy.source,
        "findings": entries,
    }
    path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return len(entries)


def read_baseline(path: Path) -> frozenset[str]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read baseline: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("findings"), list):
        raise ConfigError(f"{path}: not a seawall baseline (no 'findings' list)")
    prints = [e.get("fingerprint") for e in doc["findings"] if isinstance(e, dict)]
    return frozenset(p for p in prints if isinstance(p, str))
