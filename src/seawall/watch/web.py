"""``seawall serve``: a small read-only page over the watcher's database (stdlib http.server).

GET only; everything shown is HTML-escaped and already redacted (see ``status``). A strict
Content-Security-Policy forbids scripts altogether: the page is plain HTML that refreshes
itself every 30 seconds. Bound to a loopback address, it answers only requests whose ``Host``
names loopback, so a web page the operator visits cannot read it through DNS rebinding.
"""

from __future__ import annotations

import html
import json
import re
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sqlalchemy.engine import Engine

from seawall import __version__
from seawall.watch.status import ago, gather, lease_text, release_findings

STYLE = """body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin-bottom:2em}td,th{border:1px solid #ccc;padding:4px 8px;
text-align:left;vertical-align:top}th{background:#f4f4f4}.critical{color:#fff;background:#a00}
.high{color:#fff;background:#d60}.medium{background:#fc3}.low,.info{background:#eee}
code{font-size:90%}"""
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def page(title: str, body: str) -> str:
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8>"
            f"<meta http-equiv=refresh content=30><title>{e(title)}</title>"
            f"<style>{STYLE}</style></head><body><h1>{e(title)}</h1>{body}"
            f"<p><small>seawall {e(__version__)}</small></p></body></html>")


def table(caption: str, element_id: str, heads: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{e(h)}</th>" for h in heads)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    empty = f"<tr><td colspan={len(heads)}>none</td></tr>" if not rows else ""
    return (f"<h2>{e(caption)}</h2><table id={element_id}><thead><tr>{head}</tr></thead>"
            f"<tbody>{body}{empty}</tbody></table>")


def sev(label: str) -> str:
    return f"<span class={e(label)}>{e(label.upper())}</span>"


def index_html(status: dict[str, Any]) -> str:
    now = status["now"]
    b = status["backlog"]
    lease = f"<p id=lease>{e(lease_text(status.get('lease'), now))}</p>"
    summary = (f"<p id=backlog>{b['pending_releases']} release(s) pending, "
               f"{b['retrying_releases']} retrying, {b['unsent_alerts']} alert(s) unsent, "
               f"{b['failed_alerts']} failed, {b['scanned_releases']} scanned.</p>")
    pkgs = table("Watched packages", "packages", ["package", "origin", "last poll", "error"], [
        [f"<code>{e(p['ecosystem'])}:{e(p['name'])}</code>", e(p["origin"]),
         e(ago(p["last_poll"], now)), e(p["last_error"] or "")] for p in status["packages"]])
    alerts = table("Recent alerts", "alerts", ["severity", "alert", "channel", "state"], [
        [sev(a["severity"]), f"<a href=/release/{int(a['release_id'])}>{e(a['summary'])}</a>",
         e(a["channel"]), e(a["state"])] for a in status["recent_alerts"]])
    releases = table("Recent releases", "releases", ["release", "state", "new findings", "error"], [
        [f"<a href=/release/{int(r['id'])}><code>{e(r['spec'])}</code></a>", e(r["state"]),
         e(r["new_findings"]), e(r["error"] or "")] for r in status["recent_releases"]])
    return page("Seawall watch", lease + summary + alerts + pkgs + releases)


def release_html(release: dict[str, Any], found: list[dict[str, Any]]) -> str:
    rows = [[sev(f["severity"]), f"<code>{e(f['rule'])}</code>", f"<code>{e(f['path'])}</code>",
             e(f["message"]), "<code>" + e(json.dumps(f["evidence"], sort_keys=True)) + "</code>"]
            for f in found]
    facts = (f"<p>state: {e(release['state'])}; previous: {e(release['previous'] or 'none')}; "
             f"files scanned: {e(release['scanned_files'])}"
             + (f"; error: {e(release['error'])}" if release["error"] else "") + "</p>")
    return page(release["spec"], facts + table(
        "New findings", "findings", ["severity", "rule", "path", "message", "evidence"], rows)
        + "<p><a href=/>back</a></p>")


LOOPBACK = ("127.0.0.1", "localhost", "[::1]", "::1")


def make_handler(engine: Engine, hosts: frozenset[str] | None = None
                 ) -> type[BaseHTTPRequestHandler]:
    """``hosts``: the ``Host`` header values to answer (None: any)."""

    class Handler(BaseHTTPRequestHandler):
        server_version = f"seawall/{__version__}"

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            path = self.path.split("?", 1)[0]
            if hosts is not None and (self.headers.get("Host") or "").lower() not in hosts:
                self._send(421, page("Misdirected request", "<p>unknown host</p>"), "text/html")
            elif path == "/":
                self._send(200, index_html(gather(engine)), "text/html; charset=utf-8")
            elif path == "/status.json":
                self._send(200, json.dumps(gather(engine), default=str), "application/json")
            elif match := re.fullmatch(r"/release/(\d{1,12})", path):
                release, found = release_findings(engine, int(match.group(1)))
                if release is None:
                    self._send(404, page("Not found", "<p>no such release</p>"), "text/html")
                else:
                    self._send(200, release_html(release, found), "text/html; charset=utf-8")
            else:
                self._send(404, page("Not found", "<p>not found</p>"), "text/html")

        def _send(self, code: int, text: str, kind: str) -> None:
            body = text.encode()
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            for key, value in HEADERS.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass  # quiet: a status page polled every 30 s would flood the log

    return Handler


def make_server(engine: Engine, host: str, port: int) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer((host, port), make_handler(engine))
    if host in LOOPBACK:
        bound = server.server_address[1]
        names = {f"{name}:{bound}" for name in ("127.0.0.1", "localhost", "[::1]")}
        server.RequestHandlerClass = make_handler(engine, frozenset(names))
    server.daemon_threads = True
    return server
