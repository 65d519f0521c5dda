"""`seawall diff`: two releases built in code, compared both ways."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from builders import pack
from maps import FIRST_PARTY
from seawall.diff import diff
from seawall.findings import Severity
from seawall.policy import Policy

V1 = {
    "package/package.json": b'{"name": "demo", "version": "1.0.0"}',
    "package/index.js": b"module.exports = 1;\n" * 60_000,
    "package/README.md": b"# demo\n",
}
V2 = {
    "package/package.json": b'{"name": "demo", "version": "1.0.1"}',
    "package/index.js": b"module.exports = 1;\n" * 60_000,
    "package/index.js.map": FIRST_PARTY + b" " * 2_000_000,
}


OLD_BYTES = sum(map(len, V1.values()))  # unpacked size: the sum of the members' sizes
NEW_BYTES = sum(map(len, V2.values()))


def releases(tmp_path: Path) -> tuple[Path, Path]:
    return pack(V1, "tgz", tmp_path / "v1"), pack(V2, "tgz", tmp_path / "v2")


def test_files_and_new_findings(tmp_path: Path) -> None:
    old, new = releases(tmp_path)
    result = diff(str(old), str(new), Policy())
    assert [c.path for c in result.added] == ["package/index.js.map"]
    assert [c.path for c in result.removed] == ["package/README.md"]
    assert [c.path for c in result.changed] == ["package/package.json"]
    assert result.changed[0].old.sha256 != result.changed[0].new.sha256  # same size, new bytes
    assert (result.old_bytes, result.new_bytes) == (OLD_BYTES, NEW_BYTES) == (1_200_043, 3_200_342)
    found = {(f.rule, f.path, f.severity) for f in result.report.findings}
    assert found == {
        ("sourcemap.embedded-source", "package/index.js.map", Severity.CRITICAL),
        ("anomaly.size-growth", "package/index.js.map", Severity.MEDIUM),
    }
    growth = next(f for f in result.report.findings if f.rule == "anomaly.size-growth")
    assert growth.evidence["ratio"] == round(NEW_BYTES / OLD_BYTES, 3)
    assert result.exit_code == 1 and result.resolved == ()


def test_reverse_direction_reports_removal_and_nothing_new(tmp_path: Path) -> None:
    old, new = releases(tmp_path)
    result = diff(str(new), str(old), Policy())
    assert [c.path for c in result.removed] == ["package/index.js.map"]
    assert result.report.findings == ()
    assert [f.rule for f in result.resolved] == ["sourcemap.embedded-source"]
    assert result.exit_code == 0


def test_a_finding_present_in_both_is_not_new(tmp_path: Path) -> None:
    old = pack(V2, "tgz", tmp_path / "a")
    newer = pack({**V2, "package/package.json": b'{"version": "1.0.2"}'}, "tgz", tmp_path / "b")
    result = diff(str(old), str(newer), Policy())
    assert result.report.findings == () and result.exit_code == 0


def test_large_addition_threshold_follows_the_limit(tmp_path: Path) -> None:
    from dataclasses import replace

    from seawall.limits import Limits

    old, new = releases(tmp_path)
    policy = replace(Policy(), limits=Limits(large_file_bytes=1_000_000))
    rules = {f.rule for f in diff(str(old), str(new), policy).report.findings}
    assert "anomaly.large-addition" in rules


def test_cli_json_and_exit_codes(tmp_path: Path) -> None:
    old, new = releases(tmp_path)
    run = subprocess.run([sys.executable, "-m", "seawall", "diff", str(old), str(new), "--format", "json"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 1, run.stderr
    doc = json.loads(run.stdout)
    assert [a["path"] for a in doc["added"]] == ["package/index.js.map"]
    assert doc["unpacked_bytes"] == {"old": OLD_BYTES, "new": NEW_BYTES, "change": NEW_BYTES - OLD_BYTES}
    assert {f["rule"] for f in doc["new_findings"]} == {"sourcemap.embedded-source", "anomaly.size-growth"}
    back = subprocess.run([sys.executable, "-m", "seawall", "diff", str(new), str(old)],
                          capture_output=True, text=True, timeout=120)
    assert back.returncode == 0 and "NOTHING NEW IS EXPOSED" in back.stdout
    missing = subprocess.run([sys.executable, "-m", "seawall", "diff", str(old), str(tmp_path / "nope")],
                             capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2


def test_markdown_summary_names_the_added_file_and_the_new_exposure(tmp_path: Path) -> None:
    from seawall.detectors import catalogue
    from seawall.report.diff import render_markdown

    old, new = releases(tmp_path)
    text = render_markdown(diff(str(old), str(new), Policy()), catalogue())
    assert text.startswith("### ❌ Blocked: Seawall release diff")
    assert "| added | `package/index.js.map` |" in text
    assert "| removed | `package/README.md` |" in text
    assert "| 🔴 critical | `sourcemap.embedded-source` | `package/index.js.map` |" in text
