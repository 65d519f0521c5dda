"""Alerts: what leaked, in which release, the evidence, and what to do; signed and retried.

Webhook requests are JSON POSTs carrying two headers:

- ``X-Seawall-Alert-Id``: stable per (release, finding, channel); a receiver that stores the
  ids it has seen drops the rare duplicate a crash between "delivered" and "recorded" causes.
- ``X-Seawall-Signature: t=<unix seconds>,v1=<hex>`` where ``hex`` is
  HMAC-SHA256(secret, ``f"{t}."`` + raw body). Receivers recompute it over the raw body with the
  shared secret, compare in constant time, and reject a ``t`` too far from their clock
  (``verify`` below does exactly that).

Evidence comes from the findings, which never hold a secret: only a redacted form and a hash.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any, Mapping
from urllib.parse import urlsplit

import httpx

from seawall.detectors.base import catalogue
from seawall.fetch.http import FetchError, redact
from seawall.findings import Finding, Severity
from seawall.watch.config import Webhook
from seawall.watch.pipeline import spec

SIGNATURE_HEADER = "X-Seawall-Signature"
ID_HEADER = "X-Seawall-Alert-Id"
TOLERANCE = 300


def sign(secret: bytes, body: bytes, timestamp: int | None = None) -> str:
    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret, f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def verify(secret: bytes, header: str, body: bytes, *, tolerance: int = TOLERANCE,
           now: float | None = None) -> bool:
    """Check an ``X-Seawall-Signature`` header against the raw request body."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    t = parts.get("t", "")
    if not t.isdigit() or "v1" not in parts:
        return False
    if abs((time.time() if now is None else now) - int(t)) > tolerance:
        return False
    expected = hmac.new(secret, f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts["v1"])


def actions(ecosystem: str, name: str, version: str, finding: Finding) -> list[str]:
    """What the publisher should do now, most urgent first."""
    todo = []
    if finding.category == "secret":
        shown = finding.evidence.get("redacted", "")
        digest = finding.evidence.get("hash", "")
        todo.append(f"Rotate this credential now ({finding.rule}, shown as {shown}, {digest}): "
                    "assume it is compromised, since the release is public and mirrored.")
    if ecosystem == "npm":
        todo.append(f"Deprecate {name}@{version} (npm deprecate {name}@{version} \"leaked "
                    f"content\"), or unpublish it within 72 hours (npm unpublish {name}@{version}); "
                    "publish a fixed version.")
    else:
        todo.append(f"Yank {name} {version} on PyPI (project settings, or delete the files) "
                    "and publish a fixed release.")
    rule = catalogue().get(finding.rule)
    if rule is not None and (rule.fix or rule.help):
        todo.append(rule.fix or rule.help.split(". ")[0].rstrip(".") + ".")
    if finding.category in ("sourcemap", "file", "weights"):
        todo.append("Treat what was exposed as public: review it for credentials and rotate any.")
    return todo


def summary(ecosystem: str, name: str, version: str, finding: Finding) -> str:
    where = f" at {finding.path}" if finding.path else ""  # artifact-level findings have none
    return (f"{finding.severity.label.upper()} {finding.rule} in {spec(ecosystem, name, version)}"
            f"{where}: {finding.message}")


def payload(release: Mapping[str, Any], finding: Finding, registry: str) -> dict[str, Any]:
    eco, name, version = release["ecosystem"], release["name"], release["version"]
    return {
        "type": "seawall.leak",
        "summary": summary(eco, name, version, finding),
        "release": {"ecosystem": eco, "name": name, "version": version,
                    "spec": spec(eco, name, version), "previous": release.get("previous"),
                    "registry": redact(registry)},
        "finding": {"rule": finding.rule, "severity": finding.severity.label,
                    "path": finding.path, "message": finding.message,
                    "evidence": dict(finding.evidence), "fingerprint": finding.fingerprint,
                    "locations": [loc.to_dict() for loc in finding.locations]},
        "actions": actions(eco, name, version, finding),
    }


def slack(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A Slack incoming-webhook message (``text`` plus blocks) for the same alert."""
    finding = doc["finding"]
    evidence = ", ".join(f"{k}: {v}" for k, v in finding["evidence"].items())
    todo = "\n".join(f"• {a}" for a in doc["actions"])
    return {
        "text": f":rotating_light: {doc['summary']}",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": "Seawall: release leak"[:150]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": (
                f"*{finding['severity'].upper()}* `{finding['rule']}` in "
                f"`{doc['release']['spec']}`\n`{finding['path']}`\n{finding['message']}")}},
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*Evidence:* {evidence or '-'}"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*What to do:*\n{todo}"}},
        ],
    }


def body_for(hook: Webhook, doc: Mapping[str, Any], alert_id: str) -> bytes:
    message = slack(doc) if hook.format == "slack" else {**doc, "id": alert_id}
    return json.dumps(message, sort_keys=True).encode()


class DeliveryError(RuntimeError):
    """Not accepted; the message names the channel, never its URL (a Slack webhook URL is
    itself the credential, and errors end up in the log, the database and the status page)."""


def deliver(client: httpx.Client, hook: Webhook, doc: Mapping[str, Any], alert_id: str) -> None:
    """POST once; raises ``DeliveryError`` when not accepted (2xx)."""
    body = body_for(hook, doc, alert_id)
    headers = {"Content-Type": "application/json", ID_HEADER: alert_id}
    secret = hook.secret
    if secret:
        headers[SIGNATURE_HEADER] = sign(secret, body)
    try:
        response = client.post(hook.url, content=body, headers=headers)
    except (httpx.HTTPError, httpx.InvalidURL, FetchError) as exc:
        text = str(exc)
        try:
            path = urlsplit(hook.url).path
        except ValueError:
            path = hook.url
        if hook.url in text or (len(path) > 1 and path in text):
            text = "details withheld: they name the webhook URL"
        raise DeliveryError(f"{type(exc).__name__} posting to webhook {hook.name}: "
                            f"{text}") from None
    if not 200 <= response.status_code < 300:
        raise DeliveryError(f"HTTP {response.status_code} from webhook {hook.name}")


def wanted(finding: Finding, minimum: Severity) -> bool:
    return finding.severity >= minimum
