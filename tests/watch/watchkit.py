"""Helpers for the watcher tests: servers, a signature-checking receiver, releases built in code."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import random
import re
import shutil
import signal
import socket
import string
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from glob import glob
from pathlib import Path
from typing import Any

import httpx
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response
import sqlalchemy as sa

from builders import compress, tar_bytes
from seawall.watch import config as watch_config
from seawall.watch import db

PEP691 = "application/vnd.pypi.simple.v1+json"
WEBHOOK_SECRET = "whsec-test-" + "0123456789abcdef"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate: Any, timeout: float, what: str, step: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(step)


# -- pypiserver ---------------------------------------------------------------------------------

@dataclass
class PyPIServer:
    url: str
    packages: Path
    port: int
    proc: subprocess.Popen | None = None

    def start(self) -> None:
        exe = shutil.which("pypi-server")
        assert exe is not None
        self.proc = subprocess.Popen(
            [exe, "run", "-i", "127.0.0.1", "-p", str(self.port), "-a", ".", "-P", ".",
             "--disable-fallback", str(self.packages)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        wait_until(self._healthy, 20, "pypiserver to start")

    def _healthy(self) -> bool:
        try:
            return httpx.get(f"{self.url}/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=10)
        self.proc = None

    def upload(self, name: str, version: str, filename: str, data: bytes) -> None:
        response = httpx.post(self.url + "/", data={":action": "file_upload", "name": name,
                                                    "version": version},
                              files={"content": (filename, data, "application/gzip")}, timeout=30)
        assert response.status_code == 200, response.text


# -- PostgreSQL ---------------------------------------------------------------------------------

def pg_bindir() -> Path | None:
    found = sorted(glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def install_postgresql() -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update"], check=True, capture_output=True, env=env, timeout=600)
    subprocess.run(["apt-get", "install", "-y", "postgresql"], check=True, capture_output=True,
                   env=env, timeout=900)


def new_postgres_database(server: str) -> str:
    import psycopg

    name = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return f"{server}/{name}"


# -- webhook receiver ---------------------------------------------------------------------------

@dataclass
class Receiver:
    url: str
    secret: bytes
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    failing: int = 0
    """Answer this many requests with ``fail_status`` first (to exercise retries)..."""
    fail_status: int = 503
    retry_after: str | None = None
    """...with this ``Retry-After``."""
    requests: int = 0

    def verified(self) -> list[dict[str, Any]]:
        return [d for d in self.deliveries if d["verified"]]


def verify_signature(secret: bytes, header: str, body: bytes) -> bool:
    """Independent of seawall's code: the recipe docs/watch.md gives receivers."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    if not fields.get("t", "").isdigit() or abs(time.time() - int(fields["t"])) > 300:
        return False
    mac = hmac.new(secret, fields["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(mac, fields.get("v1", ""))


# -- running the watcher ------------------------------------------------------------------------

def watcher_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "SEAWALL_CACHE_DIR": str(tmp_path / "cache"),
            "SEAWALL_TEST_WEBHOOK_SECRET": WEBHOOK_SECRET, **extra}


def start_watcher(config: Path, tmp_path: Path, *, log: str = "watcher.log",
                  **env: str) -> subprocess.Popen:
    out = (tmp_path / log).open("ab")
    return subprocess.Popen([sys.executable, "-m", "seawall", "watch", "--config", str(config),
                             "-v"], stdout=out, stderr=subprocess.STDOUT,
                            env=watcher_env(tmp_path, **env), start_new_session=True)


def stop_watcher(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


# -- releases and the watcher's database ----------------------------------------------

def anthropic_key(seed: int) -> str:
    """A key of the provider's exact shape (sk-ant-api03-, 93 characters, AA), never a real one."""
    rng = random.Random(seed)
    body = "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(93))
    return f"sk-ant-api03-{body}AA"


def sdist(name: str, version: str, extra: dict[str, bytes]) -> tuple[str, bytes]:
    top = f"{name.replace('-', '_')}-{version}"
    files = {
        f"{top}/PKG-INFO": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{top}/{name.replace('-', '_')}/__init__.py": b"x = 1\n",
        **{f"{top}/{path}": data for path, data in extra.items()},
    }
    return f"{top}.tar.gz", targz(files)


def targz(files: dict[str, bytes]) -> bytes:
    """A gzipped tar of ``files`` (path -> bytes), built in memory."""
    return compress(tar_bytes(files), "gz")


def npm_publish(registry: Any, name: str, version: str, files: dict[str, bytes], tmp: Path) -> None:
    project = tmp / f"project-{name.replace('/', '_')}-{version}"
    project.mkdir()
    manifest = {"name": name, "version": version, "main": "index.js", "license": "MIT"}
    (project / "package.json").write_text(json.dumps(manifest, indent=2) + "\n")
    for rel, data in files.items():
        (project / rel).parent.mkdir(parents=True, exist_ok=True)
        (project / rel).write_bytes(data)
    userconfig = tmp / f"npmrc-{version}"
    userconfig.write_text(f"registry={registry.url}\n{registry.auth_line}")
    env = {**os.environ, "NPM_CONFIG_USERCONFIG": str(userconfig),
           "NPM_CONFIG_REGISTRY": registry.url, "NPM_CONFIG_UPDATE_NOTIFIER": "false"}
    run = subprocess.run(["npm", "publish", "--ignore-scripts", "--access", "public",
                          "--registry", registry.url], cwd=project, env=env, capture_output=True,
                         text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stdout + run.stderr


def write_config(path: Path, database: str, body: str) -> Path:
    path.write_text(f"database = {json.dumps(database)}\n{body}")
    return path


def engine_for(config: Path) -> sa.engine.Engine:
    engine = db.connect(watch_config.load(config).database)
    db.migrate(engine)  # idempotent: the watcher may not have created the tables yet
    return engine


def release_states(engine: sa.engine.Engine) -> dict[str, str]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(db.releases.c.name, db.releases.c.version,
                                      db.releases.c.state)).all()
    return {f"{name}@{version}": state for name, version, state in rows}


def alert_rows(engine: sa.engine.Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(db.alerts).order_by(db.alerts.c.id))
                .mappings()]


# -- stub feeds (the local registries have none) ------------------------------------------------

class FeedServer:
    """npm ``_changes`` (``since``/``limit``, opaque string sequences) and PyPI's RSS updates."""

    def __init__(self) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from urllib.parse import parse_qs, urlsplit

        self.changes: list[str] = []
        self.rss_items: list[tuple[str, str, float]] = []  # (name, version, unix time)
        self.requests: list[str] = []
        feed = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                feed.requests.append(self.path)
                url = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                if url.path == "/registry/_changes":
                    body, kind = feed._changes(query), "application/json"
                elif url.path == "/rss/updates.xml":
                    body, kind = feed._rss(query), "application/rss+xml"
                else:
                    self.send_response(404)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        import threading

        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _changes(self, query: dict[str, str]) -> bytes:
        since = query.get("since", "0")
        start = len(self.changes) if since == "now" else int(since.split("-")[0])
        limit = int(query.get("limit", "1000"))
        rows = [{"seq": f"{n}-g1AAAA", "id": name, "changes": [{"rev": f"{n}-x"}]}
                for n, name in enumerate(self.changes[start:start + limit], start + 1)]
        last = rows[-1]["seq"] if rows else f"{start}-g1AAAA"
        return json.dumps({"results": rows, "last_seq": last}).encode()

    def _rss(self, query: dict[str, str]) -> bytes:
        import email.utils

        before = float(query["before"]) if "before" in query else None
        items = sorted((i for i in self.rss_items if before is None or i[2] < before),
                       key=lambda i: -i[2])[:100]
        xml = "".join(
            f"<item><title>{n} {v}</title><link>https://pypi.org/project/{n}/{v}/</link>"
            f"<pubDate>{email.utils.formatdate(t, usegmt=True)}</pubDate></item>"
            for n, v, t in items)
        return (f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
                f"<title>PyPI recent updates</title>{xml}</channel></rss>").encode()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class SimpleIndex:
    """A PEP 691 index whose files can change between polls."""

    def __init__(self, server: HTTPServer) -> None:
        self.server = server
        self.files: dict[str, dict[str, bytes]] = {}
        self.status: list[int] = []
        server.expect_request(
            re.compile(r"/simple/[^/]+/")).respond_with_handler(self.page)
        server.expect_request(
            re.compile(r"/files/.+")).respond_with_handler(self.file)

    def page(self, request: Request) -> Response:
        if self.status:
            code = self.status.pop(0)
            return Response("slow down", status=code, headers={"Retry-After": "0"})
        project = request.path.split("/")[2]
        files = self.files.get(project, {})
        doc = {"meta": {"api-version": "1.1"}, "name": project, "files": [
            {"filename": n, "url": f"/files/{n}", "hashes": {"sha256": hashlib.sha256(d).hexdigest()}}
            for n, d in files.items()]}
        return Response(json.dumps(doc), headers={"Content-Type": PEP691})

    def file(self, request: Request) -> Response:
        name = request.path.rsplit("/", 1)[1]
        for files in self.files.values():
            if name in files:
                return Response(files[name], headers={"Content-Type": "application/octet-stream"})
        return Response(status=404)
