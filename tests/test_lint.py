"""The lint gate: pyflakes, pycodestyle and bugbear checks on the product code."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_ruff_finds_nothing_in_src() -> None:
    exe = shutil.which("ruff")
    if exe is None:
        pytest.skip("ruff is not installed")
    run = subprocess.run([exe, "check", "src"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
