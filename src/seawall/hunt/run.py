"""Hunt many targets: one after another, in local processes, or on a Dask cluster.

Each target is an independent scan with only the ``codecopy`` detector, so fanning out
is a map over targets; results come back as ``TargetResult`` objects (plain data) and
are folded into one report exactly as a local run would, in the order given.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from seawall.engine import Engine, TargetResult
from seawall.limits import Limits
from seawall.policy import Policy
from seawall.results import Report


def hunt_one(spec: str, index_path: str, limits: Limits | None = None,
             cache_dir: str | None = None, jobs: int = 1) -> TargetResult:
    """Scan one target for indexed code (runs in a worker process or on a Dask worker)."""
    from seawall.detectors.base import all_detectors
    from seawall.scan import resolve_target

    target = resolve_target(spec, cache_dir=Path(cache_dir) if cache_dir else None)
    others = frozenset(all_detectors()) - {"codecopy"}
    engine = Engine(limits=limits or Limits(), settings={"codecopy": {"index": index_path}},
                    disabled_detectors=others)
    if hasattr(engine, "jobs"):
        engine.jobs = jobs  # processes sharing this target's files (1 when targets are)
    return engine.scan_target(target)


def hunt_targets(specs: list[str], index_path: str, policy: Policy, *, jobs: int = 1,
                 dask_address: str | None = None, cache_dir: Path | None = None) -> Report:
    from seawall.scan import build_report

    started = time.perf_counter()
    cache = str(cache_dir) if cache_dir else None
    if dask_address:
        results = _on_dask(specs, index_path, policy.limits, cache, dask_address)
    else:
        workers = jobs or os.cpu_count() or 1
        if len(specs) == 1:  # one target: its files are shared among the processes
            results = [hunt_one(specs[0], index_path, policy.limits, cache, workers)]
        elif workers <= 1:
            results = [hunt_one(s, index_path, policy.limits, cache) for s in specs]
        else:
            with ProcessPoolExecutor(max_workers=min(workers, len(specs))) as pool:
                futures = [pool.submit(hunt_one, s, index_path, policy.limits, cache)
                           for s in specs]
                results = [f.result() for f in futures]
    return build_report(results, policy, time.perf_counter() - started)


def _on_dask(specs: list[str], index_path: str, limits: Limits, cache: str | None,
             address: str) -> list[TargetResult]:
    from distributed import Client

    with Client(address, set_as_default=False) as client:
        futures = [client.submit(hunt_one, s, index_path, limits, cache, pure=False)
                   for s in specs]
        return client.gather(futures)
