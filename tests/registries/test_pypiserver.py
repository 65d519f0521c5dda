"""`--against-previous` against a real local PyPI server (pypiserver on 127.0.0.1).

Two releases of a package are uploaded over HTTP, as twine would; seawall then finds the
previous release through the Simple API and reports only what the new one adds.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from builders import compress, tar_bytes
from maps import FIRST_PARTY


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def pypi_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    exe = shutil.which("pypi-server")
    if exe is None:
        pytest.skip("pypiserver is not installed")
    packages = tmp_path_factory.mktemp("packages")
    port = free_port()
    proc = subprocess.Popen([exe, "run", "-i", "127.0.0.1", "-p", str(port), "-a", ".", "-P", ".",
                             "--disable-fallback", str(packages)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            pytest.fail("pypiserver did not start")
        yield url
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=10)


def sdist(version: str, extra: dict[str, bytes]) -> bytes:
    top = f"leaky_demo-{version}"
    files = {
        f"{top}/PKG-INFO": f"Metadata-Version: 2.1\nName: leaky-demo\nVersion: {version}\n".encode(),
        f"{top}/leaky_demo/__init__.py": b"x = 1\n",
        **{f"{top}/{path}": data for path, data in extra.items()},
    }
    return compress(tar_bytes(files), "gz")


def upload(url: str, version: str, data: bytes) -> None:
    response = httpx.post(
        url + "/",
        data={":action": "file_upload", "name": "leaky-demo", "version": version},
        files={"content": (f"leaky_demo-{version}.tar.gz", data, "application/gzip")},
        timeout=30,
    )
    assert response.status_code == 200, response.text


def scan_against_previous(url: str, spec: str, cache: Path) -> tuple[int, dict]:
    env = {**os.environ, "PIP_INDEX_URL": f"{url}/simple/", "PIP_CONFIG_FILE": os.devnull}
    run = subprocess.run([sys.executable, "-m", "seawall", "scan", spec, "--against-previous",
                          "--format", "json", "--cache-dir", str(cache)],
                         capture_output=True, text=True, env=env, timeout=300)
    assert "Traceback" not in run.stderr, run.stderr
    return run.returncode, json.loads(run.stdout)


def test_leaky_release_against_the_clean_one(pypi_server: str, tmp_path: Path) -> None:
    upload(pypi_server, "1.0.0", sdist("1.0.0", {}))
    upload(pypi_server, "1.0.1", sdist("1.0.1", {".env": b"API_KEY=abc\n",
                                                 "leaky_demo/app.js.map": FIRST_PARTY}))
    code, doc = scan_against_previous(pypi_server, "pypi:leaky-demo==1.0.1", tmp_path)
    assert code == 1
    assert (doc["old"]["target"], doc["new"]["target"]) == ("pypi:leaky-demo==1.0.0",
                                                            "pypi:leaky-demo==1.0.1")
    assert doc["old"]["error"] is None and doc["new"]["error"] is None
    # Paths of the two releases are compared with their version masked.
    assert [a["path"] for a in doc["added"]] == [
        "leaky_demo-{version}.tar.gz!/leaky_demo-{version}/.env",
        "leaky_demo-{version}.tar.gz!/leaky_demo-{version}/leaky_demo/app.js.map",
    ]
    assert {f["rule"] for f in doc["new_findings"]} == {"file.env", "sourcemap.embedded-source"}

    first, alone = scan_against_previous(pypi_server, "pypi:leaky-demo==1.0.0", tmp_path)
    assert first == 0 and alone["findings"] == []
