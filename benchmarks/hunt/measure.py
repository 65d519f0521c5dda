"""Run one tool as a process tree and measure wall, CPU and peak RSS, within caps.

The machine is shared (2 cores, 24 GB), and the peers are known to need many GB, so every
run has a wall-clock cap and an RSS cap on the whole process tree: a run that exceeds either
is killed and reported as skipped, never left behind. Peak RSS is the larger of the polled
sum over the tree (seawall may use worker processes) and the kernel's per-process maximum.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

RSS_CAP_MB = 12 * 1024
WALL_CAP_S = 15 * 60


@dataclass
class Run:
    """What one measured command did."""

    name: str
    wall: float = 0.0
    cpu: float = 0.0
    rss_mb: float = 0.0
    code: int = 0
    skipped: str = ""  # why the run was killed or not started; empty when it ran to the end
    stdout: Path | None = None
    notes: list[str] = field(default_factory=list)

    def add(self, other: Run) -> None:
        """Fold a chunk's run into this total: times add up, memory is the max."""
        self.wall += other.wall
        self.cpu += other.cpu
        self.rss_mb = max(self.rss_mb, other.rss_mb)
        self.skipped = self.skipped or other.skipped
        if other.code not in (0, 1):
            self.code = other.code

    def as_dict(self) -> dict:
        return {"name": self.name, "wall_s": round(self.wall, 2), "cpu_s": round(self.cpu, 2),
                "peak_rss_mb": round(self.rss_mb), "exit": self.code, "skipped": self.skipped,
                "notes": self.notes}


def _tree_rss_kb(root: int) -> int:
    """Sum VmRSS over ``root`` and all its descendants (Linux /proc)."""
    total, todo, seen = 0, [root], set()
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
            for task in Path(f"/proc/{pid}/task").iterdir():
                todo.extend(int(c) for c in (task / "children").read_text().split())
        except (OSError, ValueError):
            continue
    return total


def measure(name: str, cmd: list[str], stdout: Path, *, cwd: Path | None = None,
            env: dict[str, str] | None = None, wall_cap: float = WALL_CAP_S,
            rss_cap_mb: float = RSS_CAP_MB) -> Run:
    """Run ``cmd`` with stdout to a file; kill its process group past either cap."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    run = Run(name, stdout=stdout)
    start = time.perf_counter()
    with open(stdout, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.PIPE, cwd=cwd, env=env,
                                start_new_session=True)
        err: list[bytes] = []
        reader = threading.Thread(target=lambda: err.append(proc.stderr.read()))  # type: ignore[union-attr]
        reader.start()
        peak_kb = 0
        while proc.poll() is None:
            peak_kb = max(peak_kb, _tree_rss_kb(proc.pid))
            elapsed = time.perf_counter() - start
            if peak_kb / 1024 > rss_cap_mb or elapsed > wall_cap:
                run.skipped = (f"killed: over {rss_cap_mb / 1024:.0f} GB RSS" if peak_kb / 1024 > rss_cap_mb
                               else f"killed: over {wall_cap / 60:.0f} min")
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                break
            time.sleep(0.2)
        reader.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    run.wall = time.perf_counter() - start
    run.cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    run.rss_mb = max(peak_kb, after.ru_maxrss if after.ru_maxrss > before.ru_maxrss else 0) / 1024
    run.code = proc.returncode
    tail = b"".join(err).decode("utf-8", "replace").strip().splitlines()[-3:]
    if run.code not in (0, 1) and not run.skipped:
        run.notes.append(f"exit {run.code}: " + " | ".join(tail))
    return run
