"""``seawall python [DIR]``: build the sdist and wheel as a release would, then scan both.

The project's own build backend runs (``python -m build``, in an isolated environment),
so what is scanned is exactly what ``twine upload`` would send. Unlike an artifact
scan, this runs the project's build code: use it on your own projects.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from seawall.engine import Target

TIMEOUT = 900


class BuildError(RuntimeError):
    pass


def build_release(project: Path, out: Path) -> list[Path]:
    """Build sdist and wheel of ``project`` into ``out``; return the files built."""
    try:
        import build  # noqa: F401  (the `build` frontend, pip install 'seawall[python]')
    except ImportError:
        raise BuildError("the `build` package is needed: pip install 'seawall[python]'") from None
    cmd = [sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", str(out), str(project)]
    try:
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        raise BuildError(f"building {project} took more than {TIMEOUT} s") from None
    if run.returncode != 0:
        tail = "\n".join((run.stdout + run.stderr).strip().splitlines()[-15:])
        raise BuildError(f"building {project} failed (python -m build exit {run.returncode}):\n{tail}")
    built = sorted(p for p in out.iterdir() if p.suffix in (".whl", ".gz", ".zip"))
    if not built:
        raise BuildError(f"building {project} produced no sdist or wheel")
    return built


def python_target(project: Path, out: Path) -> Target:
    """The built release as one target (every file, like a PyPI release); errors become target errors."""
    name = f"{project} (built)"
    try:
        files = build_release(project, out)
    except BuildError as exc:
        return Target(name=name, error=str(exc))
    meta: dict[str, object] = {"built": [f.name for f in files]}
    meta.update(_name_and_version(files))
    return Target(name=name, files=files, meta=meta)


def _name_and_version(files: list[Path]) -> dict[str, str]:
    """Project name and version from the built file names (for release diffs)."""
    from packaging.utils import InvalidSdistFilename, InvalidWheelFilename
    from packaging.utils import parse_sdist_filename, parse_wheel_filename

    for file in files:
        try:
            if file.name.endswith(".whl"):
                name, version, _, _ = parse_wheel_filename(file.name)
            else:
                name, version = parse_sdist_filename(file.name)
        except (InvalidSdistFilename, InvalidWheelFilename):
            continue
        return {"name": str(name), "version": str(version)}
    return {}
