"""The library entry point behind ``seawall scan``: resolve targets, walk them, apply policy."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Iterable

from seawall.engine import Engine, Target, TargetResult
from seawall.policy import Policy
from seawall.results import Report, TargetSummary

Progress = Callable[[str, int], None]
REGISTRY_PREFIXES = ("npm:", "pypi:")


def resolve_target(spec: str, *, cache_dir: Path | None = None) -> Target:
    """A path on disk, or a registry spec (``npm:name@version``, ``pypi:name==version``)."""
    if spec.startswith(REGISTRY_PREFIXES):
        from seawall import fetch  # imported lazily: HTTP machinery is not needed for local scans

        target = fetch.resolve(spec, cache_dir=cache_dir)
        target.meta.setdefault("kind", "registry")
        return target
    path = Path(spec)
    if not path.exists():
        return Target(name=spec, error="no such file or directory")
    kind = "dir" if path.is_dir() else "file"
    return Target(name=spec, path=path, meta={"kind": kind, "path": str(path)})


def scan(specs: Iterable[str], policy: Policy, *, progress: Progress | None = None,
         cache_dir: Path | None = None) -> Report:
    targets = (resolve_target(spec, cache_dir=cache_dir) for spec in specs)
    return scan_targets(targets, policy, progress=progress)


def scan_targets(targets: Iterable[Target], policy: Policy, *,
                 progress: Progress | None = None) -> Report:
    """Scan targets already resolved (e.g. the file set ``npm publish`` would send)."""
    started = time.perf_counter()
    engine = Engine(limits=policy.limits, settings=policy.detectors, progress=progress,
                    jobs=policy.jobs)
    results: list[TargetResult] = [engine.scan_target(target) for target in targets]
    return build_report(results, policy, time.perf_counter() - started)


def build_report(results: list[TargetResult], policy: Policy, seconds: float | None = None) -> Report:
    kept, suppressed = policy.apply(f for r in results for f in r.findings)
    summaries = tuple(
        TargetSummary(r.target, r.files, r.bytes, r.error, meta=dict(r.meta)) for r in results
    )
    return Report(summaries, tuple(kept), fail_on=policy.fail_on, suppressed=suppressed, seconds=seconds)
