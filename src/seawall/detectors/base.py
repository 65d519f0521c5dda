"""What a detector is, and what it is shown.

A detector never walks the disk and never knows the artifact type: the engine hands it
a ``FileView`` of each member (full nested path, content, the chain of containers it
sits in) and collects the findings. Subclasses register themselves on import; every
module in ``seawall.detectors`` is imported by ``all_detectors``.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from abc import ABC
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, ClassVar, Iterable, Mapping, Sequence

from seawall.artifacts.base import Content
from seawall.findings import Finding, Severity


@dataclass(frozen=True)
class Rule:
    """A rule's metadata: the SARIF ``rules[]`` entry and the docs are generated from it."""

    id: str
    name: str
    severity: Severity
    summary: str
    help: str = ""
    """Why it matters and what to do; the rule's documentation."""
    _: KW_ONLY
    fix: str = ""
    """One line saying what to do, shown under each finding (defaults to help's first sentence)."""
    examples: Mapping[str, Sequence[str]] = field(default_factory=dict)
    """``match`` / ``no_match`` examples; a test runs every one."""

    @property
    def category(self) -> str:
        return self.id.split(".", 1)[0]


@dataclass
class FileView:
    """One member as detectors see it."""

    path: str
    """Full nested path, ``package/cli.js.map!/src/main.tsx``."""
    inner: str
    """Path inside the innermost container, ``src/main.tsx``."""
    content: Content
    size: int
    complete: bool = True
    """False when only the first ``max_file_bytes`` were read."""
    chain: tuple[str, ...] = ()
    """Opener names from the target down to this member's container."""
    container: str | None = None
    """The opener that will open this member itself, if it is a container."""
    attrs: Mapping[str, Any] = field(default_factory=dict)
    memo: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.inner.rsplit("/", 1)[-1]

    @property
    def data(self) -> Any:
        return self.content.data

    @property
    def head(self) -> bytes:
        return bytes(self.content.data[:4096])

    @property
    def in_sourcemap(self) -> bool:
        return "sourcemap" in self.chain


class Detector(ABC):
    """Base class. A fresh instance scans each target, so it may keep per-target state.

    A target's files may be shared among processes (``Engine.jobs``), each with its own
    instance; their states are then folded into one instance before ``finish()``. A
    detector allows that by setting ``merges``: it keeps no state across files, or it
    returns that state from ``partial()`` and folds one in with ``merge()``. One that
    does not set it keeps its targets in one process. A big source map's embedded sources
    are shared the same way, each worker starting from a fresh instance: so what a
    detector decides for a file inside a source map must not depend on other files.
    """

    name: ClassVar[str]
    rules: ClassVar[Sequence[Rule]] = ()
    registry: ClassVar[dict[str, type["Detector"]]] = {}
    merges: bool = False
    """True when ``partial()``/``merge()`` carry every state that ``finish()`` reads."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:
            Detector.registry[cls.name] = cls

    def __init__(self, settings: Mapping[str, Any] | None = None) -> None:
        self.settings = dict(settings or {})
        self._rules = {rule.id: rule for rule in self.rules}

    def wants(self, view: FileView) -> bool:
        """Cheap test; ``scan`` runs only when this is true."""
        return True

    def scan(self, view: FileView) -> Iterable[Finding]:
        return ()

    def scan_dir(self, path: str, inner: str) -> Iterable[Finding]:
        """Called for directory entries, when the container records them."""
        return ()

    def finish(self) -> Iterable[Finding]:
        """Called once after the whole target: findings that need every member seen."""
        return ()

    def partial(self) -> Any:
        """The state this instance gathered that ``finish()`` needs (picklable)."""
        return None

    def merge(self, partial: Any) -> None:
        """Fold in another instance's ``partial()``, as if this one had scanned those
        files after its own."""
        if partial is not None:
            raise NotImplementedError(f"{self.name}: partial() returns state that merge() drops")

    def finding(
        self,
        rule_id: str,
        path: str,
        message: str,
        evidence: Mapping[str, Any] | None = None,
        *,
        severity: Severity | None = None,
        line: int | None = None,
        key: str = "",
    ) -> Finding:
        rule = self._rules[rule_id]
        return Finding(
            rule=rule_id,
            severity=rule.severity if severity is None else severity,
            path=path,
            message=message,
            evidence=dict(evidence or {}),
            line=line,
            key=key,
        )


_TEST_FOLDER = re.compile(
    r"(?:^|/)(?:tests?|__tests__|testdata|test[_-]data|fixtures|__fixtures__|specs?)/",
    re.IGNORECASE,
)
"""Where keys and repositories are almost always throwaway fixtures (``tests_severity``)."""


def in_test_folder(path: str) -> bool:
    """Is ``path`` (a file's folder, or a container prefix) inside a test/fixture folder?"""
    return _TEST_FOLDER.search(path) is not None


def all_detectors() -> dict[str, type[Detector]]:
    """Import every module of this package once, so each detector registers itself."""
    package = importlib.import_module("seawall.detectors")
    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"seawall.detectors.{module.name}")
    return dict(sorted(Detector.registry.items()))


def catalogue() -> dict[str, Rule]:
    """Every rule of every detector, by id."""
    rules: dict[str, Rule] = {}
    for detector in all_detectors().values():
        for rule in detector.rules:
            rules[rule.id] = rule
    return dict(sorted(rules.items()))
