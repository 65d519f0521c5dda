"""``file``: files that must not ship, recognised by where they sit and what they are called.

The rules are data (``seawall/rules/files.toml``, whose header documents the format). Most
members match nothing, so one combined regex over every glob of every rule answers "could
anything match?" first; only the rare hit is resolved rule by rule. Folder rules (``.git``,
``.claude``...) are aggregated per folder: npm tarballs record no directory entries, so
folders are derived from member paths and reported once, in ``finish``.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from seawall.artifacts.base import SEP
from seawall.detectors.base import Detector, FileView, Rule, in_test_folder
from seawall.findings import Finding, Severity
from seawall.rules import glob_tokens, load, trie

CONTENT_BYTES = 64 * 1024
"""What content conditions see: a PEM chain can put its key past 4 KiB, and a streamed
container only ever shows its first 64 KiB anyway."""
SAMPLE = 10
"""Paths listed in a folder finding, and variable names in an env finding."""

# -- the one content check a regex cannot express ---------------------------------------------

_ASSIGNMENT = re.compile(
    rb"^[ \t]*(?:export[ \t]+)?([A-Za-z_][A-Za-z0-9_.]*)[ \t]*[=:][ \t]*(.*)$", re.MULTILINE
)
_SECRET_NAME = re.compile(
    rb"(?i)secret|token|passw|pwd|api_?key|access_?key|private_?key|credential|auth$"
)
_NOT_SECRET_NAME = re.compile(  # TOKEN_URL, SECRET_NAME, AUTH_CLIENT_ID...: about a secret
    rb"(?i)_(?:url|uri|endpoint|host|port|path|file|dir|name|user|username|id|ttl|timeout|header)$"
)
_URL_PASSWORD = re.compile(rb"://[^:/@\s]+:([^@\s/]+)@")
_NOT_SECRET = re.compile(  # placeholders, references and plain URLs
    rb"(?i)^(?:x+|\d+|null|none|nil|true|false|changeme|secret|passw(?:or)?d|token|postgres|root|"
    rb"admin|test|todo|tbd|default)$|^[$%<{\[]|^[a-z][a-z0-9+.-]*://|your|xxx|\*\*\*|\$\{|\{\{|"
    rb"example|placeholder|change[_-]?me|replace|dummy|insert|fill|sample|fake|redacted|\.\.\."
)


def _unquote(raw: bytes) -> bytes:
    value = raw.strip()
    if len(value) > 1 and value[:1] in (b'"', b"'") and value[-1:] == value[:1]:
        return value[1:-1]
    return value.split(b" #", 1)[0].strip()  # unquoted values end at an inline comment


def _looks_real(value: bytes) -> bool:
    return len(value) >= 8 and not _NOT_SECRET.search(value)


def real_env_values(head: bytes) -> list[str]:
    """Names (never values) of variables set to what looks like a real secret."""
    names = []
    for match in _ASSIGNMENT.finditer(head):
        name, value = match.group(1), _unquote(match.group(2))
        in_url = _URL_PASSWORD.search(value)
        named = _SECRET_NAME.search(name) and not _NOT_SECRET_NAME.search(name)
        secret = named and _looks_real(value)
        if secret or (in_url and _looks_real(in_url.group(1))):
            names.append(name.decode("ascii"))
    return names


CHECKS: dict[str, Callable[[bytes], list[str]]] = {"real-env-values": real_env_values}

# -- rules as data ---------------------------------------------------------------------------------

_KEYS = {"id", "name", "severity", "summary", "help", "names", "paths", "dirs", "files", "exclude",
         "case_sensitive", "content", "check", "tests_severity", "examples", "fix"}



@dataclass(frozen=True)
class Example:
    path: str
    content: bytes = b""

    @classmethod
    def parse(cls, raw: str | Mapping[str, str]) -> Example:
        if isinstance(raw, str):
            return cls(raw)
        if "hex" in raw:
            return cls(raw["path"], bytes.fromhex(raw["hex"]))
        return cls(raw["path"], raw.get("content", "").encode())

    def label(self) -> str:
        return f"{self.path} containing {self.content[:40]!r}" if self.content else self.path


@dataclass(frozen=True)
class FileRule:
    rule: Rule
    globs: tuple[str, ...]  # names and paths, as written
    dirs: tuple[str, ...]
    file_re: re.Pattern[str] | None  # a name or path glob, from a "/" boundary to the end
    dir_re: re.Pattern[str] | None  # one whole folder name
    files: re.Pattern[str] | None  # in a matched folder, which file names count
    exclude: re.Pattern[str] | None
    content: re.Pattern[bytes] | None
    check: Callable[[bytes], list[str]] | None
    tests_severity: Severity | None = None
    examples: Mapping[str, tuple[Example, ...]] = field(default_factory=dict)

    def excluded(self, inner: str) -> bool:
        return self.exclude is not None and self.exclude.search(inner) is not None

    def folder_depth(self, parts: list[str]) -> int | None:
        """Index of the outermost folder in ``parts`` that this rule reports."""
        if self.dir_re is not None:
            for depth, part in enumerate(parts):
                if self.dir_re.fullmatch(part):
                    return depth
        return None

    def accepts(self, head: bytes) -> dict[str, Any] | None:
        """Evidence if the content condition holds (or there is none), else None."""
        if self.content is not None and not self.content.search(head):
            return None
        if self.check is None:
            return {}
        names = self.check(head)
        return {"variables": names[:SAMPLE]} if names else None


EXAMPLE_KINDS = ("match", "no_match")
SUFFIX = "(?:^|/)(?:{})$"
"""A name or path glob matches the end of a path, from a folder boundary."""


def _regex(globs: Iterable[str], exact: bool, form: str) -> re.Pattern[str] | None:
    wrap = "(?-i:{})" if exact else "(?:{})"
    alternatives = "|".join(wrap.format("".join(glob_tokens(g))) for g in globs)
    return re.compile(form.format(alternatives), re.IGNORECASE) if alternatives else None


def load_rule(raw: Mapping[str, Any]) -> FileRule:
    rule_id = str(raw.get("id", "?"))
    unknown = set(raw) - _KEYS
    if unknown or not rule_id.startswith("file.") or not {"names", "paths", "dirs"} & set(raw):
        raise ValueError(f"files.toml: {rule_id}: needs a file.* id and names, paths or dirs; "
                         f"unknown keys: {sorted(unknown)}")
    if raw.get("check", next(iter(CHECKS))) not in CHECKS:
        raise ValueError(f"files.toml: {rule_id}: unknown check; known: {sorted(CHECKS)}")
    if any("/" in g for g in [*raw.get("names", ()), *raw.get("dirs", ()), *raw.get("files", ())]):
        raise ValueError(f"files.toml: {rule_id}: names, dirs and files are single path components")
    written = raw.get("examples", {})
    examples = {kind: tuple(map(Example.parse, written.get(kind, ()))) for kind in EXAMPLE_KINDS}
    labels = {kind: [e.label() for e in found] for kind, found in examples.items()}
    rule = Rule(rule_id, raw["name"], Severity.parse(raw["severity"]), raw["summary"],
                raw["help"].strip(), fix=raw.get("fix", ""), examples=labels)
    exact = bool(raw.get("case_sensitive", False))
    globs, dirs = (*raw.get("names", ()), *raw.get("paths", ())), tuple(raw.get("dirs", ()))
    return FileRule(
        rule, globs, dirs, _regex(globs, exact, SUFFIX), _regex(dirs, exact, "{}"),
        _regex(raw.get("files", ()), exact, "{}"), _regex(raw.get("exclude", ()), exact, SUFFIX),
        re.compile(raw["content"].encode()) if "content" in raw else None,
        CHECKS[raw["check"]] if "check" in raw else None,
        Severity.parse(raw["tests_severity"]) if "tests_severity" in raw else None, examples,
    )


FILE_RULES: tuple[FileRule, ...] = tuple(load_rule(raw) for raw in load("files.toml")["rule"])
BY_ID = {fr.rule.id: fr for fr in FILE_RULES}

# Every glob of every rule in one regex, matched against the *reversed* path: most globs start
# with `*` and end in a literal (`*.pem`), so reversed they start with a literal, and a trie of
# literals rejects a file at its first character or two. Case is ignored here (a superset);
# resolving the hit applies `case_sensitive`.
_FILES_REVERSED = trie(glob_tokens(g)[::-1] for fr in FILE_RULES for g in fr.globs)
_DIRS_REVERSED = trie(glob_tokens(g)[::-1] for fr in FILE_RULES for g in fr.dirs)
PRECHECK = re.compile(
    rf"{_FILES_REVERSED}(?:/|$)|[^/]*/(?:[^/]*/)*?{_DIRS_REVERSED}(?:/|$)", re.IGNORECASE
)


def may_match(inner: str) -> bool:
    """Could any rule match this path (inside its innermost container)?"""
    return PRECHECK.match(inner[::-1]) is not None


# -- the detector ----------------------------------------------------------------------------------


@dataclass
class Folder:
    files: int = 0
    sample: list[str] = field(default_factory=list)  # first in sorted order, whatever the format

    def add(self, relative: str) -> None:
        self.files += 1
        if len(self.sample) < SAMPLE or relative < self.sample[-1]:
            bisect.insort(self.sample, relative)
            del self.sample[SAMPLE:]

    def absorb(self, other: Folder) -> None:
        """Count another process's share of this folder."""
        self.files += other.files
        self.sample = sorted({*self.sample, *other.sample})[:SAMPLE]


class FileDetector(Detector):
    name = "file"
    rules = tuple(fr.rule for fr in FILE_RULES)
    merges = True

    def __init__(self, settings: Mapping[str, Any] | None = None) -> None:
        super().__init__(settings)
        self.folders: dict[tuple[str, str], Folder] = {}
        self.reported: set[tuple[str, str]] = set()

    def wants(self, view: FileView) -> bool:
        # A source map's virtual tree is the map's exposure, which `sourcemap` reports whole.
        return not view.in_sourcemap and may_match(view.inner)

    def scan(self, view: FileView) -> Iterable[Finding]:
        prefix = view.path[: len(view.path) - len(view.inner)]
        covered = self._note_folders(prefix, view.inner, view.name)
        best = self._best_rule(view, covered)
        if best is None:
            return
        file_rule, evidence = best
        parent = view.path.rsplit(SEP, 1)[0]
        if parent != view.path and (file_rule.rule.id, parent) in self.reported:
            return  # dump.sql inside an already reported dump.sql.gz
        self.reported.add((file_rule.rule.id, view.path))
        yield self._report(file_rule, view.path, f"{file_rule.rule.name}: {view.name}",
                           {"file": view.name, "bytes": view.size, **evidence})

    def scan_dir(self, path: str, inner: str) -> Iterable[Finding]:
        inner = inner.rstrip("/")
        if may_match(inner + "/"):
            self._note_folders(path[: len(path) - len(inner)], inner + "/", None)
        return ()

    def partial(self) -> tuple[dict[tuple[str, str], Folder], set[tuple[str, str]]]:
        return self.folders, self.reported

    def merge(self, partial: tuple[dict[tuple[str, str], Folder], set[tuple[str, str]]]) -> None:
        folders, reported = partial
        for key, folder in folders.items():
            self.folders.setdefault(key, Folder()).absorb(folder)
        self.reported |= reported

    def finish(self) -> Iterable[Finding]:
        for (rule_id, path), folder in sorted(self.folders.items(), key=lambda item: item[0][::-1]):
            file_rule = BY_ID[rule_id]
            if not folder.files and file_rule.files is not None:
                continue  # e.g. a prompts/ folder of code rather than prompts
            name = path.rsplit("/", 1)[-1]
            message = f"{file_rule.rule.name}: {name}/ with {folder.files:,} file(s)"
            yield self._report(file_rule, path, message,
                               {"files": folder.files, "sample": folder.sample})

    def _report(self, file_rule: FileRule, path: str, message: str,
                evidence: dict[str, Any]) -> Finding:
        if file_rule.tests_severity is None or not in_test_folder(path[: path.rfind("/") + 1]):
            return self.finding(file_rule.rule.id, path, message, evidence)
        return self.finding(file_rule.rule.id, path, message + " (in a test folder)",
                            {**evidence, "in_tests": True}, severity=file_rule.tests_severity)

    def _note_folders(self, prefix: str, inner: str, name: str | None) -> int:
        """Count the member in each rule folder it sits in; return the highest such severity."""
        covered = -1
        parts = inner.split("/")[:-1]
        for file_rule in FILE_RULES:
            depth = file_rule.folder_depth(parts)
            folder_inner = "/".join(parts[: (depth or 0) + 1])
            if depth is None or file_rule.excluded(folder_inner):
                continue
            folder = self.folders.setdefault((file_rule.rule.id, prefix + folder_inner), Folder())
            if name is not None and (file_rule.files is None or file_rule.files.fullmatch(name)):
                folder.add(inner[len(folder_inner) + 1 :])
                covered = max(covered, file_rule.rule.severity)
        return covered

    def _best_rule(self, view: FileView, covered: int) -> tuple[FileRule, dict[str, Any]] | None:
        """The most severe rule that matches the file: one file, one finding."""
        best: tuple[FileRule, dict[str, Any]] | None = None
        head = b""
        for file_rule in FILE_RULES:
            severity = file_rule.rule.severity
            if severity <= covered or (best is not None and severity <= best[0].rule.severity):
                continue  # a folder finding or a more severe rule already says it
            if file_rule.file_re is None or not file_rule.file_re.search(view.inner):
                continue
            if file_rule.excluded(view.inner):
                continue
            if (file_rule.content or file_rule.check) and not head:
                head = bytes(view.data[:CONTENT_BYTES])
            evidence = file_rule.accepts(head)
            if evidence is not None:
                best = (file_rule, evidence)
        return best
