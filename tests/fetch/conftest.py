"""A real HTTP server on 127.0.0.1 (stdlib, one thread per request) serving canned routes."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

ENV_VARS = (
    "NPM_CONFIG_REGISTRY",
    "npm_config_registry",
    "NPM_CONFIG_USERCONFIG",
    "npm_config_userconfig",
    "PIP_INDEX_URL",
    "PIP_CONFIG_FILE",
    "SEAWALL_CACHE_DIR",
)
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


@dataclass
class Route:
    body: bytes
    content_type: str = "application/octet-stream"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Request:
    path: str
    headers: dict[str, str]


@dataclass
class Registry:
    url: str
    routes: dict[str, list[Route]] = field(default_factory=dict)
    """Each path answers with its routes in turn, repeating the last one."""
    requests: list[Request] = field(default_factory=list)

    def add(
        self,
        path: str,
        body: bytes | str,
        content_type: str = "application/octet-stream",
        status: int = 200,
        headers: dict[str, str] | None = None,
        *,
        then: bool = False,
    ) -> str:
        """Serve ``body`` at ``path`` (exact, as sent on the wire); return its absolute URL.

        ``then=True`` queues the answer after the ones already set for that path."""
        data = body.encode() if isinstance(body, str) else body
        route = Route(data, content_type, status, headers or {})
        self.routes[path] = [*self.routes.get(path, []), route] if then else [route]
        return self.url + path

    def fail_first(self, path: str, status: int, headers: dict[str, str] | None = None) -> None:
        """Answer the next request for ``path`` with ``status``, then as before."""
        self.routes[path].insert(0, Route(b"", "text/plain", status, headers or {}))

    def hits(self, path: str) -> int:
        return sum(1 for r in self.requests if r.path == path)


def _handler(registry: Registry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            registry.requests.append(
                Request(self.path, {k.lower(): v for k, v in self.headers.items()})
            )
            queue = registry.routes.get(self.path) or [Route(b"not found", "text/plain", 404)]
            route = queue.pop(0) if len(queue) > 1 else queue[0]
            self.send_response(route.status)
            self.send_header("Content-Type", route.content_type)
            for key, value in route.headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(route.body)))
            self.end_headers()
            self.wfile.write(route.body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def registry() -> Iterator[Registry]:
    registry = Registry(url="")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(registry))
    server.daemon_threads = True
    registry.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
    )
    thread.start()
    try:
        yield registry
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def closed_port() -> int:
    """A port nothing listens on: connections are refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(autouse=True)
def isolated(
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """No developer .npmrc, pip.conf or cache leaks into a test (nor proxies, when offline)."""
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    if request.node.get_closest_marker("network") is None:
        for name in PROXY_VARS:
            monkeypatch.delenv(name, raising=False)
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.chdir(home)
