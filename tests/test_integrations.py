"""The integrations users copy: the GitHub Action and the pre-commit hooks, exercised for real."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from maps import FIRST_PARTY

ROOT = Path(__file__).resolve().parent.parent


def test_action_validates_against_the_github_actions_schema() -> None:
    exe = shutil.which("check-jsonschema")
    if exe is None:
        pytest.skip("check-jsonschema is not installed")
    run = subprocess.run([exe, "--builtin-schema", "vendor.github-actions", str(ROOT / "action.yml")],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr


def test_action_runs_one_scan_for_sarif_and_summary() -> None:
    text = (ROOT / "action.yml").read_text()
    assert text.count("seawall scan") == 1
    assert "--format sarif" in text and '--summary "$GITHUB_STEP_SUMMARY"' in text
    assert "github/codeql-action/upload-sarif@v4" in text


@pytest.mark.network
def test_pre_commit_hook_blocks_a_leaky_commit(tmp_path: Path) -> None:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    repo = tmp_path / "project"
    repo.mkdir()
    (repo / "index.js").write_text("module.exports = 1;\n")
    (repo / "index.js.map").write_bytes(FIRST_PARTY)
    git = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], cwd=repo, check=True)
    subprocess.run([*git, "add", "."], cwd=repo, check=True)
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home")}
    run = subprocess.run([sys.executable, "-m", "pre_commit", "try-repo", str(ROOT), "seawall",
                          "--all-files"], cwd=repo, capture_output=True, text=True, env=env,
                         timeout=900)
    out = run.stdout + run.stderr
    assert run.returncode == 1, out
    assert "sourcemap.embedded-source" in out and "index.js.map" in out
