"""Fixtures for the watcher: real registries, a real PostgreSQL, a signature-checking webhook.

verdaccio comes from ``tests/registries/conftest.py`` (loaded by path under its own module
name, since tests/ folders are not packages); pypiserver, PostgreSQL and the receiver are here.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from watchkit import (
    WEBHOOK_SECRET,
    FeedServer,
    PyPIServer,
    Receiver,
    free_port,
    install_postgresql,
    new_postgres_database,
    pg_bindir,
    verify_signature,
)

_spec = importlib.util.spec_from_file_location(
    "seawall_tests_registries", Path(__file__).parent.parent / "registries" / "conftest.py")
assert _spec is not None and _spec.loader is not None
registries = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = registries  # dataclasses look their module up there
_spec.loader.exec_module(registries)
verdaccio = registries.verdaccio  # the session fixture, re-exported for tests/watch


@pytest.fixture
def pypi_server(tmp_path: Path) -> Iterator[PyPIServer]:
    if shutil.which("pypi-server") is None:
        pytest.skip("pypiserver is not installed (pip install -e '.[test]')")
    port = free_port()
    packages = tmp_path / "pypi-packages"
    packages.mkdir()
    server = PyPIServer(f"http://127.0.0.1:{port}", packages, port)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A throwaway PostgreSQL on 127.0.0.1 (initdb in a temp dir); yields a server URL."""
    if not sys.platform.startswith("linux"):
        pytest.skip("the PostgreSQL fixture installs Debian packages: Linux only")
    if pg_bindir() is None:
        install_postgresql()
    bindir = pg_bindir()
    assert bindir is not None, "postgresql installed but initdb not found"
    root = Path(tempfile.mkdtemp(prefix="seawall-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        shutil.chown(root, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data = root / "data"
    subprocess.run([*as_user, str(bindir / "initdb"), "-D", str(data), "-A", "trust",
                    "-U", "seawall", "--no-sync", "-E", "UTF8"],
                   check=True, capture_output=True, timeout=120)
    port = free_port()
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-o", options,
                    "-l", str(root / "log"), "-w", "-t", "60", "start"],
                   check=True, capture_output=True, timeout=120)
    try:
        yield f"postgresql://seawall@127.0.0.1:{port}"
    finally:
        subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate",
                        "stop"], capture_output=True, timeout=60, check=False)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same tests on both backends: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "watch.db")
    return new_postgres_database(request.getfixturevalue("postgres_server"))


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    port = free_port()
    state = Receiver(f"http://127.0.0.1:{port}/hook", WEBHOOK_SECRET.encode())
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            with lock:
                state.requests += 1
                if state.failing > 0:
                    state.failing -= 1
                    self.send_response(state.fail_status)
                    if state.retry_after is not None:
                        self.send_header("Retry-After", state.retry_after)
                    self.end_headers()
                    return
                state.deliveries.append({
                    "id": self.headers.get("x-seawall-alert-id"),
                    "verified": verify_signature(state.secret, self.headers.get("x-seawall-signature", ""),
                                        body),
                    "body": json.loads(body), "at": time.monotonic(),
                })
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def feeds() -> Iterator[FeedServer]:
    server = FeedServer()
    try:
        yield server
    finally:
        server.close()
