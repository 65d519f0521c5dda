"""The real leak is the acceptance case: @anthropic-ai/claude-code 2.1.88 against 2.1.87.

These tests download from the package registries (marked ``network``; CI runs them).
Downloads are cached in pytest's cache folder, so local reruns cost nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.network

LEAKY = "@anthropic-ai/claude-code@2.1.88"
CLEAN = "@anthropic-ai/claude-code@2.1.87"


@pytest.fixture(scope="session")
def cache_dir(pytestconfig: pytest.Config) -> Path:
    return Path(pytestconfig.cache.mkdir("seawall-registry"))


def seawall(*args: str, cache: Path) -> tuple[int, dict]:
    env = {**os.environ, "SEAWALL_CACHE_DIR": str(cache)}
    run = subprocess.run([sys.executable, "-m", "seawall", "scan", *args, "--format", "json"],
                         capture_output=True, text=True, env=env, timeout=600)
    assert "Traceback" not in run.stderr, run.stderr
    return run.returncode, json.loads(run.stdout)


@pytest.fixture(scope="session")
def npm_packed(cache_dir: Path) -> dict[str, Path]:
    """The tarballs as ``npm pack`` itself downloads them (an independent client)."""
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed")
    folder = cache_dir / "npm-pack"
    folder.mkdir(exist_ok=True)
    packed = {}
    for spec in (LEAKY, CLEAN):
        name = "anthropic-ai-claude-code-" + spec.rsplit("@", 1)[1] + ".tgz"
        if not (folder / name).exists():
            subprocess.run(["npm", "pack", spec, "--pack-destination", str(folder)], check=True,
                           capture_output=True, timeout=300)
        packed[spec] = folder / name
    return packed


def assert_the_leak(doc: dict) -> None:
    [leak] = [f for f in doc["findings"] if f["rule"].startswith("sourcemap.")
              and f["path"] == "package/cli.js.map"]
    assert leak["rule"] == "sourcemap.embedded-source"
    assert leak["severity"] == "critical"
    evidence = leak["evidence"]
    assert evidence["sources"] == 4756
    assert evidence["first_party_sources"] == 1906
    assert evidence["first_party_lines"] == 513676
    assert evidence["third_party_sources"] == 2850
    assert evidence["top_folders"] == {"src": 1902, "vendor": 4}


def test_registry_spec_of_the_leaky_release(cache_dir: Path) -> None:
    code, doc = seawall(f"npm:{LEAKY}", cache=cache_dir)
    assert code == 1
    assert doc["targets"][0]["target"] == f"npm:{LEAKY}"
    assert doc["targets"][0]["error"] is None
    assert_the_leak(doc)


def test_downloaded_tarball_of_the_leaky_release(cache_dir: Path, npm_packed: dict[str, Path]) -> None:
    code, doc = seawall(str(npm_packed[LEAKY]), cache=cache_dir)
    assert code == 1
    assert_the_leak(doc)


def test_clean_release_passes_the_gate(cache_dir: Path, npm_packed: dict[str, Path]) -> None:
    for target in (f"npm:{CLEAN}", str(npm_packed[CLEAN])):
        code, doc = seawall(target, cache=cache_dir)
        loud = [(f["rule"], f["path"]) for f in doc["findings"] if f["severity"] not in ("low", "info")]
        assert loud == [] and code == 0, loud
        assert doc["targets"][0]["files"] == 19


@pytest.mark.parametrize("spec", ["npm:left-pad@1.3.0", "pypi:requests==2.32.3"])
def test_clean_real_packages_pass(spec: str, cache_dir: Path) -> None:
    code, doc = seawall(spec, cache=cache_dir)
    loud = [(f["rule"], f["path"]) for f in doc["findings"] if f["severity"] not in ("low", "info")]
    assert loud == [] and code == 0, loud
    assert doc["targets"][0]["files"] > 0


def test_diff_of_the_two_releases(cache_dir: Path) -> None:
    env = {**os.environ, "SEAWALL_CACHE_DIR": str(cache_dir)}
    forward = subprocess.run([sys.executable, "-m", "seawall", "diff", f"npm:{CLEAN}", f"npm:{LEAKY}",
                              "--format", "json"], capture_output=True, text=True, env=env, timeout=600)
    assert forward.returncode == 1, forward.stderr
    doc = json.loads(forward.stdout)
    assert [(a["path"], a["new_size"]) for a in doc["added"]] == [("package/cli.js.map", 59_766_257)]
    assert doc["unpacked_bytes"] == {"old": 46_604_198, "new": 102_754_401, "change": 56_150_203}
    [leak] = [f for f in doc["new_findings"] if f["rule"] == "sourcemap.embedded-source"]
    assert (leak["evidence"]["first_party_sources"], leak["evidence"]["first_party_lines"]) == (1906, 513676)
    backward = subprocess.run([sys.executable, "-m", "seawall", "diff", f"npm:{LEAKY}", f"npm:{CLEAN}",
                               "--format", "json"], capture_output=True, text=True, env=env, timeout=600)
    assert backward.returncode == 0, backward.stderr
    back = json.loads(backward.stdout)
    assert [r["path"] for r in back["removed"]] == ["package/cli.js.map"]
    assert back["new_findings"] == []
