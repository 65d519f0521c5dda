"""``seawall watch status`` and ``seawall serve``: the page checked in a real headless Chromium."""

from __future__ import annotations

import html
import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pytest_httpserver import HTTPServer
from watchkit import SimpleIndex, anthropic_key, free_port, sdist, wait_until, write_config

from seawall.watch import config as watch_config
from seawall.watch.service import Watcher


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium, installed from the distribution's packages when missing."""
    if not sys.platform.startswith("linux"):
        pytest.skip("installs Debian's chromium: Linux only")
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update"], check=True, capture_output=True, env=env, timeout=600)
        subprocess.run(["apt-get", "install", "-y", "chromium"], check=True, capture_output=True,
                       env=env, timeout=900)
        found = shutil.which("chromium")
    assert found is not None
    return found


@pytest.fixture
def watched(tmp_path: Path, database: str, httpserver: HTTPServer,
            monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A database after a clean and a leaky release of ``leaky-demo`` (plus a quiet package)."""
    monkeypatch.setenv("SEAWALL_CACHE_DIR", str(tmp_path / "cache"))
    index = SimpleIndex(httpserver)
    index.files["leaky-demo"] = dict([sdist("leaky-demo", "1.0.0", {})])
    config = write_config(tmp_path / "watch.toml", database, f"""
interval = 60
[pypi]
index = "{httpserver.url_for('/simple/')}"
projects = ["leaky-demo"]
[alerts]
min-severity = "critical"
""")
    watcher = Watcher(watch_config.load(config), out=io.StringIO())
    watcher.tick = 0.001
    # A hostile name, as an npm changes feed could carry: it must be shown, never interpreted.
    watcher.store.ensure_package("npm", "<b>x</b><script>alert(1)</script>", "feed", 0.0,
                                 watch_until=0.0)
    try:
        watcher.run(until_idle=True)
        index.files["leaky-demo"].update([sdist("leaky-demo", "1.0.1", {
            ".env": f"ANTHROPIC_API_KEY={anthropic_key(11)}\n".encode()})])
        with watcher.engine.begin() as conn:  # poll again now
            conn.exec_driver_sql("UPDATE packages SET next_poll = 0")
        watcher.run(until_idle=True)
    finally:
        watcher.close()
    yield config


def test_status_command_lists_packages_backlog_and_alerts(watched: Path) -> None:
    from click.testing import CliRunner

    from seawall.cli import main

    runner = CliRunner()  # in process: three `seawall` start-ups would cost seconds
    run = runner.invoke(main, ["watch", "status", "--config", str(watched)])
    assert run.exit_code == 0, run.output
    lines = run.stdout.splitlines()
    holder = f"{socket.gethostname()} pid {os.getpid()}"  # the watcher ran in this process
    assert re.fullmatch(rf"lease: free \(last held by {re.escape(holder)}, released \d+s ago\)",
                        lines[0]), lines[0]
    assert lines[1] == "watching 2 package(s)"
    assert lines[2] == "  npm:<b>x</b><script>alert(1)</script>  [feed]  last poll never"
    assert re.fullmatch(r"  pypi:leaky-demo  \[config\]  last poll \d+s ago", lines[3])
    assert lines[4] == ("backlog: 0 release(s) pending (0 retrying), 0 alert(s) unsent, 0 failed; "
                        "2 release(s) scanned")
    assert lines[6] == ("  [sent] log: CRITICAL secret.anthropic-api-key in "
                        "pypi:leaky-demo==1.0.1 at leaky_demo-1.0.1.tar.gz!/leaky_demo-1.0.1/.env: "
                        f"Anthropic API key {anthropic_key(11)[:4]}…{anthropic_key(11)[-4:]}")
    as_json = runner.invoke(main, ["watch", "--config", str(watched), "status", "--format",
                                   "json"])
    doc = json.loads(as_json.stdout)
    assert [p["name"] for p in doc["packages"]] == ["<b>x</b><script>alert(1)</script>",
                                                    "leaky-demo"]
    assert doc["backlog"]["scanned_releases"] == 2
    assert {k: doc["lease"][k] for k in ("host", "pid", "live", "released", "expires")} == {
        "host": socket.gethostname(), "pid": os.getpid(), "live": False, "released": True,
        "expires": 0.0}
    bad = runner.invoke(main, ["watch", "status"])
    assert bad.exit_code == 2 and "--config" in bad.stderr


def test_status_page_in_headless_chromium(watched: Path, chromium: str, tmp_path: Path) -> None:
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "seawall", "serve", "--config", str(watched),
                               "--port", str(port)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_until(lambda: _up(url), 30, "seawall serve")
        dom = _dump_dom(chromium, url, tmp_path)
        release = re.search(r'href="/release/(\d+)"', dom)
        assert release is not None
        detail = _dump_dom(chromium, url + f"release/{release.group(1)}", tmp_path)
        assert httpx.get(url + "release/999999").status_code == 404
    finally:
        server.terminate()
        server.wait(timeout=10)
    packages = _table_text(dom, "packages")
    assert "pypi:leaky-demo" in packages
    assert "npm:&lt;b&gt;x&lt;/b&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in packages
    assert "<script" not in dom and "<b>" not in dom
    alerts = _table_text(dom, "alerts")
    assert "CRITICAL secret.anthropic-api-key in pypi:leaky-demo==1.0.1" in html.unescape(alerts)
    assert "2 scanned" in dom
    assert f"lease: free (last held by {socket.gethostname()} pid " in dom
    key = anthropic_key(11)
    assert key not in dom and key not in detail
    assert "pypi:leaky-demo==1.0.1" in detail
    assert f"{key[:4]}…{key[-4:]}" in html.unescape(detail)  # the redacted form only


def _up(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _dump_dom(chromium: str, url: str, tmp_path: Path) -> str:
    run = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu",
                          "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}",
                          "--dump-dom", url], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "<html" in run.stdout, run.stderr[-2000:]
    return run.stdout


def _table_text(dom: str, element_id: str) -> str:
    match = re.search(rf'<table id="{element_id}">(.*?)</table>', dom, re.S)
    assert match is not None, f"no table #{element_id} in the page"
    return match.group(1)
