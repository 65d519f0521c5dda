"""Publish real releases with npm to a local verdaccio, then diff them with ``--against-previous``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from maps import FIRST_PARTY

pytestmark = pytest.mark.network

NAME = "@acme/leaky-demo"
# `verdaccio` (tests/registries/conftest.py) has .url (trailing slash), .token and .auth_line.


def _publish(registry: Any, version: str, files: dict[str, bytes], tmp: Path) -> None:
    project = tmp / f"project-{version}"
    project.mkdir()
    manifest = {"name": NAME, "version": version, "main": "index.js", "license": "MIT"}
    (project / "package.json").write_text(json.dumps(manifest, indent=2) + "\n")
    for rel, data in files.items():
        (project / rel).write_bytes(data)
    userconfig = tmp / f"npmrc-{version}"  # never ~/.npmrc
    userconfig.write_text(f"registry={registry.url}\n{registry.auth_line}")
    env = {**os.environ, "NPM_CONFIG_USERCONFIG": str(userconfig),
           "NPM_CONFIG_REGISTRY": registry.url, "NPM_CONFIG_UPDATE_NOTIFIER": "false"}
    run = subprocess.run(["npm", "publish", "--ignore-scripts", "--access", "public",
                          "--registry", registry.url],
                         cwd=project, env=env, capture_output=True, text=True, timeout=60,
                         check=False)
    assert run.returncode == 0, run.stdout + run.stderr


def _scan(registry: Any, spec: str, cache: Path) -> tuple[int, dict[str, Any], str]:
    env = {**os.environ, "NPM_CONFIG_REGISTRY": registry.url,
           "NPM_CONFIG_USERCONFIG": os.devnull}
    run = subprocess.run(
        [sys.executable, "-m", "seawall", "scan", spec, "--against-previous", "--format", "json",
         "--cache-dir", str(cache)], capture_output=True, text=True, timeout=60, env=env, check=False)
    return run.returncode, json.loads(run.stdout) if run.stdout else {}, run.stderr


def test_scan_against_previous_on_a_real_registry(verdaccio: Any, tmp_path: Path) -> None:
    clean = {"index.js": b"module.exports = () => 1;\n"}
    _publish(verdaccio, "1.0.0", clean, tmp_path)
    _publish(verdaccio, "1.0.1", {**clean, "index.js.map": FIRST_PARTY,
                                  ".env": b"API_BASE=https://staging.internal.example\n"},
             tmp_path)
    cache = tmp_path / "cache"

    code, doc, err = _scan(verdaccio, f"npm:{NAME}@1.0.1", cache)
    assert code == 1, err
    assert doc["old"]["target"] == f"npm:{NAME}@1.0.0"
    assert doc["new"]["target"] == f"npm:{NAME}@1.0.1"
    # Both tarballs were downloaded and matched the registry's dist.integrity.
    assert doc["old"]["error"] is None and doc["new"]["error"] is None
    added = {a["path"] for a in doc["added"]}
    assert {"package/index.js.map", "package/.env"} <= added
    assert not doc["removed"]
    rules = {f["rule"] for f in doc["new_findings"]}
    assert {"sourcemap.embedded-source", "file.env"} <= rules

    code, doc, err = _scan(verdaccio, f"npm:{NAME}@1.0.0", cache)  # first release: alone, clean
    assert code == 0, err
    assert "no earlier release" in err
    assert [t["target"] for t in doc["targets"]] == [f"npm:{NAME}@1.0.0"]
    assert doc["targets"][0]["error"] is None
    assert doc["findings"] == []
