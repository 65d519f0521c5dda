"""`seawall python`: the project's own backend builds the release, seawall scans what it built."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest


def seawall(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "seawall", *args], capture_output=True, text=True,
                          timeout=900)


def safetensors() -> bytes:
    header = json.dumps({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}).encode()
    return struct.pack("<Q", len(header)) + header + b"\0" * 16


@pytest.mark.network  # the isolated build installs hatchling from the package index
def test_hatchling_sdist_ships_the_stray_env_and_weights(tmp_path: Path) -> None:
    project = tmp_path / "demo"
    (project / "src" / "demo").mkdir(parents=True)
    (project / "weights").mkdir()
    (project / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n'
        '[project]\nname = "demo"\nversion = "0.1"\n')
    (project / "src" / "demo" / "__init__.py").write_text("x = 1\n")
    (project / ".env").write_text("API_KEY=abc\n")
    (project / "weights" / "model.safetensors").write_bytes(safetensors())
    run = seawall("python", str(project), "--format", "json")
    assert run.returncode == 1, run.stderr
    doc = json.loads(run.stdout)
    found = {(f["rule"], f["path"]) for f in doc["findings"]}
    assert ("file.env", "demo-0.1.tar.gz!/demo-0.1/.env") in found
    assert ("weights.safetensors", "demo-0.1.tar.gz!/demo-0.1/weights/model.safetensors") in found
    assert doc["targets"][0]["error"] is None


def test_a_failing_build_is_an_error_not_a_clean_scan(tmp_path: Path) -> None:
    project = tmp_path / "broken"
    project.mkdir()
    (project / "pyproject.toml").write_text("[build-system\nrequires = \n")
    run = seawall("python", str(project), "--format", "json")
    assert run.returncode == 2
    error = json.loads(run.stdout)["targets"][0]["error"]
    assert "building" in error and "failed" in error


def test_name_and_version_come_from_the_built_files(tmp_path: Path) -> None:
    from seawall.pybuild import _name_and_version

    files = [tmp_path / "demo_pkg-0.2.tar.gz", tmp_path / "demo_pkg-0.2-py3-none-any.whl"]
    assert _name_and_version(files) == {"name": "demo-pkg", "version": "0.2"}
    assert _name_and_version([tmp_path / "notes.txt"]) == {}
