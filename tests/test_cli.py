"""The command line as users run it: real processes, real archives, exact exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from builders import compress, pack, tar_bytes
from maps import FIRST_PARTY, source_map

CLEAN = {"package/package.json": b'{"name": "demo", "version": "1.0.0"}', "package/index.js": b"module.exports = 1;\n"}
LEAKY = {**CLEAN, "package/index.js.map": FIRST_PARTY}


def seawall(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "seawall", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=120)


def test_clean_package_exits_0(tmp_path: Path) -> None:
    target = pack(CLEAN, "tgz", tmp_path)
    run = seawall("scan", str(target), "--format", "json")
    assert run.returncode == 0, run.stderr
    doc = json.loads(run.stdout)
    assert doc["findings"] == []
    assert doc["targets"] == [{"target": str(target), "files": 2, "bytes": 56, "error": None}]


def test_leaky_package_exits_1_with_the_finding(tmp_path: Path) -> None:
    target = pack(LEAKY, "tgz", tmp_path)
    run = seawall("scan", str(target), "--format", "json")
    assert run.returncode == 1, run.stderr
    doc = json.loads(run.stdout)
    assert set(doc) == {"seawall_version", "targets", "summary", "findings"}
    [finding] = doc["findings"]
    assert finding["rule"] == "sourcemap.embedded-source"
    assert finding["category"] == "sourcemap"
    assert finding["severity"] == "critical"
    assert finding["path"] == "package/index.js.map"
    assert finding["evidence"]["first_party_sources"] == 2
    assert finding["evidence"]["first_party_lines"] == 4
    assert finding["evidence"]["third_party_sources"] == 1
    assert finding["locations"] == [{"path": "package/index.js.map", "line": None}]
    assert len(finding["fingerprint"]) == 32


def test_fail_on_raises_the_bar(tmp_path: Path) -> None:
    paths_only = {"package/a.js.map": source_map({"../src/a.ts": None})}
    target = pack(paths_only, "tgz", tmp_path)
    assert seawall("scan", str(target)).returncode == 0  # low finding, default fail-on medium
    assert seawall("scan", str(target), "--fail-on", "low").returncode == 1


def test_truncated_gzip_exits_2_and_other_targets_are_still_scanned(tmp_path: Path) -> None:
    good = pack(LEAKY, "tgz", tmp_path / "good")
    blob = compress(tar_bytes({"package/big.js": bytes(range(256)) * 4000, **LEAKY}), "gz")
    broken = tmp_path / "broken.tgz"
    broken.write_bytes(blob[: len(blob) // 2])
    run = seawall("scan", str(broken), str(good), "--format", "json")
    assert run.returncode == 2
    assert "Traceback" not in run.stderr
    doc = json.loads(run.stdout)
    errors = {t["target"]: t["error"] for t in doc["targets"]}
    assert errors[str(good)] is None
    assert str(broken) in errors[str(broken)] and "truncated" in errors[str(broken)]
    assert [f["path"] for f in doc["findings"] if f["target"] == str(good)] == ["package/index.js.map"]


def test_missing_target_and_bad_arguments_exit_2(tmp_path: Path) -> None:
    assert seawall("scan", str(tmp_path / "nope.tgz")).returncode == 2
    assert seawall("scan", "--format", "yaml", str(tmp_path)).returncode == 2
    assert seawall("scan").returncode == 2
    bad = tmp_path / "seawall.toml"
    bad.write_text("fail-on = 'never'\n")
    run = seawall("scan", str(tmp_path), "--config", str(bad))
    assert run.returncode == 2 and "never" in run.stderr


def test_text_report_is_grouped_and_says_what_to_do(tmp_path: Path) -> None:
    target = pack(LEAKY, "tgz", tmp_path)
    out = seawall("scan", str(target)).stdout
    assert " CRITICAL (1) " in out
    assert "sourcemap.embedded-source  package/index.js.map" in out
    assert "→ Stop emitting sourcesContent" in out
    assert out.rstrip().splitlines()[-1].startswith("FAIL: 1 finding(s) at or above medium")


def test_output_file_and_baseline_workflow(tmp_path: Path) -> None:
    target = pack(LEAKY, "tgz", tmp_path)
    base = tmp_path / "baseline.json"
    made = seawall("baseline", str(target), "--output", str(base))
    assert made.returncode == 0 and "wrote 1 finding" in made.stderr
    report = tmp_path / "report.json"
    run = seawall("scan", str(target), "--baseline", str(base), "--format", "json", "--output", str(report))
    assert run.returncode == 0 and run.stdout == ""
    doc = json.loads(report.read_text())
    assert doc["findings"] == [] and doc["summary"]["suppressed"] == 1


def test_config_in_pyproject_is_found_from_cwd(tmp_path: Path) -> None:
    target = pack(LEAKY, "tgz", tmp_path)
    (tmp_path / ".git").mkdir()
    (tmp_path / "pyproject.toml").write_text('[tool.seawall]\ndisable = ["sourcemap.embedded-source"]\n')
    assert seawall("scan", str(target), cwd=tmp_path).returncode == 0


def test_rules_lists_the_catalogue() -> None:
    run = seawall("rules", "--format", "json")
    rules = {r["id"]: r for r in json.loads(run.stdout)}
    assert rules["sourcemap.embedded-source"]["severity"] == "critical"
    assert rules["anomaly.bomb"]["severity"] == "high"
    assert all(r["summary"] and r["help"] for r in rules.values())


def test_help_names_every_target_kind() -> None:
    out = seawall("scan", "--help").stdout
    for word in ("npm:NAME", "pypi:NAME", "--fail-on", "--baseline", "--format", "sarif"):
        assert word in out


def test_rule_docs_are_generated_from_the_catalogue() -> None:
    docs = Path(__file__).parent.parent / "docs" / "rules.md"
    assert docs.read_text() == seawall("rules", "--format", "markdown").stdout, (
        "docs/rules.md is stale: run `seawall rules --format markdown > docs/rules.md`")


def test_npm_command_scans_what_publish_would_send_without_running_scripts(tmp_path: Path) -> None:
    project = tmp_path / "proj"
    (project / "dist").mkdir(parents=True)
    marker = tmp_path / "prepare-ran"
    (project / "package.json").write_text(json.dumps({
        "name": "demo", "version": "1.0.0",
        "scripts": {"prepare": f"touch {marker} && exit 1"},
    }))
    (project / ".env").write_text("API_TOKEN=abc\n")
    (project / "dist" / "index.js").write_text("module.exports = 1;\n")
    (project / "dist" / "index.js.map").write_bytes(FIRST_PARTY)
    (project / ".npmrc").write_text("//registry.npmjs.org/:_authToken=${NPM_TOKEN}\n")
    listing = seawall("npm", str(project), "--list")
    assert listing.stdout.split() == [".env", "dist/index.js", "dist/index.js.map", "package.json"]
    run = seawall("npm", str(project), "--format", "json")
    assert run.returncode == 1, run.stderr
    found = {(f["rule"], f["path"]) for f in json.loads(run.stdout)["findings"]}
    assert found == {("file.env", "package/.env"),
                     ("sourcemap.embedded-source", "package/dist/index.js.map")}
    assert not marker.exists()


def test_plugin_commands_are_listed_only_when_their_module_exists(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from seawall import cli

    monkeypatch.setattr(cli, "PLUGINS", {
        "absent": "seawall.no_such_package.commands:absent",
        "present": "seawall.cli:rules",  # any importable click command
    })
    runner = CliRunner()
    listed = runner.invoke(cli.main, ["--help"]).output
    assert "present" in listed and "absent" not in listed
    missing = runner.invoke(cli.main, ["absent"])
    assert missing.exit_code == 2 and "No such command 'absent'" in missing.output
