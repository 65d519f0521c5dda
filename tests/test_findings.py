from __future__ import annotations

from seawall.findings import Finding, Location, Severity, redact, secret_hash


def test_fingerprint_ignores_line_and_target() -> None:
    a = Finding("secret.x", Severity.HIGH, "package/a.js", "m", line=3, target="t1", key="sha256:1")
    b = Finding("secret.x", Severity.HIGH, "package/a.js", "other words", line=90, target="t2", key="sha256:1")
    c = Finding("secret.x", Severity.HIGH, "package/a.js", "m", key="sha256:2")
    moved = Finding("secret.x", Severity.HIGH, "package/b.js", "m", key="sha256:1")
    assert a.fingerprint == b.fingerprint == moved.fingerprint != c.fingerprint


def test_unkeyed_findings_are_identified_by_path() -> None:
    a = Finding("file.env", Severity.HIGH, "package/.env", "m")
    b = Finding("file.env", Severity.HIGH, "package/app/.env", "m")
    assert a.fingerprint != b.fingerprint


def test_default_location_is_the_finding_itself() -> None:
    f = Finding("file.env", Severity.HIGH, "package/.env", "m", line=None)
    assert f.locations == (Location("package/.env", None),)
    assert f.to_dict()["locations"] == [{"path": "package/.env", "line": None}]
    assert f.category == "file"


def test_redaction_never_shows_the_middle() -> None:
    value = "sk-ant-api03-" + "A" * 80 + "xyzw"
    shown = redact(value)
    assert shown.startswith("sk-a") and shown.endswith("xyzw") and len(shown) < 12
    assert redact("abc") == "ab…"
    assert secret_hash(value) == secret_hash(value.encode()) != secret_hash(value + "x")


def test_severity_parse_and_order() -> None:
    assert Severity.parse("CRITICAL") > Severity.parse("high") > Severity.parse(" medium ")
    assert [s.label for s in sorted(Severity)] == ["info", "low", "medium", "high", "critical"]
