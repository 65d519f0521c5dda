"""A real local npm registry (verdaccio 6.8.0) for end-to-end publish-then-scan tests.

verdaccio is installed with npm into pytest's cache folder (``.pytest_cache/d/verdaccio``), so only
the first run pays for ``npm install``. The server runs offline (``uplinks: {}``) on a free loopback
port in its own process group, which is killed when the session ends.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

VERDACCIO = "6.8.0"
# 6.8.0 needs node-fetch pinned: the npm mirror lacks the `cjs` dist-tag it otherwise resolves.
PACKAGE_JSON = {
    "name": "seawall-test-verdaccio",
    "version": "0.0.0",
    "private": True,
    "dependencies": {"verdaccio": VERDACCIO},
    "overrides": {"node-fetch": "2.7.0"},
}
CONFIG = """\
storage: {storage}
auth:
  htpasswd:
    file: {htpasswd}
    max_users: 100
uplinks: {{}}
packages:
  '@*/*':
    access: $all
    publish: $authenticated
    unpublish: $authenticated
  '**':
    access: $all
    publish: $authenticated
    unpublish: $authenticated
web:
  enable: false
log: {{type: stdout, format: pretty, level: warn}}
"""


@dataclass(frozen=True)
class Verdaccio:
    url: str  # with a trailing slash
    token: str

    @property
    def auth_line(self) -> str:
        """The ``.npmrc`` line npm needs to publish here."""
        return f"//{self.url.split('://', 1)[1]}:_authToken={self.token}\n"


def _install(root: Path) -> Path:
    binary = root / "node_modules" / ".bin" / "verdaccio"
    manifest = json.dumps(PACKAGE_JSON, indent=2) + "\n"
    package_json = root / "package.json"
    if binary.exists() and package_json.exists() and package_json.read_text() == manifest:
        return binary
    shutil.rmtree(root / "node_modules", ignore_errors=True)
    (root / "package-lock.json").unlink(missing_ok=True)
    package_json.write_text(manifest)
    run = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--ignore-scripts"],
                         cwd=root, capture_output=True, text=True, timeout=300, check=False)
    if run.returncode != 0 or not binary.exists():
        package_json.unlink(missing_ok=True)  # so the next run retries
        pytest.fail(f"npm install verdaccio@{VERDACCIO} failed:\n{run.stdout}\n{run.stderr}")
    return binary


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _request(method: str, url: str, body: dict | None = None) -> tuple[int, bytes]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    except ProcessLookupError:
        pass


@pytest.fixture(scope="session")
def verdaccio(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory
              ) -> Iterator[Verdaccio]:
    if shutil.which("npm") is None or shutil.which("node") is None:
        pytest.skip("npm and node are needed for the verdaccio registry")
    binary = _install(Path(pytestconfig.cache.mkdir("verdaccio")))

    work = tmp_path_factory.mktemp("verdaccio")
    (work / "storage").mkdir()
    config = work / "config.yaml"
    config.write_text(CONFIG.format(storage=work / "storage", htpasswd=work / "htpasswd"))
    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    log = (work / "verdaccio.log").open("wb")
    proc = subprocess.Popen(
        [str(binary), "--config", str(config), "--listen", f"127.0.0.1:{port}"],
        cwd=work, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        start_new_session=True,  # its own process group, killed as a whole below
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                pytest.fail(f"verdaccio exited with {proc.returncode}:\n"
                            f"{(work / 'verdaccio.log').read_text(errors='replace')}")
            try:
                if _request("GET", url + "-/ping")[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("verdaccio did not answer /-/ping within 30 s:\n"
                            f"{(work / 'verdaccio.log').read_text(errors='replace')}")
            time.sleep(0.1)
        status, body = _request("PUT", url + "-/user/org.couchdb.user:seawall", {
            "_id": "org.couchdb.user:seawall", "name": "seawall", "password": "seawall-pass-123",
            "type": "user", "roles": [],
        })
        assert status == 201, (status, body)
        yield Verdaccio(url=url, token=json.loads(body)["token"])
    finally:
        _stop(proc)
        log.close()
