from __future__ import annotations

import json
from pathlib import Path

import pytest

from seawall.findings import Finding, Severity
from seawall.policy import ConfigError, Ignore, Policy, find_config, from_mapping, load, read_baseline, write_baseline


def finding(rule: str = "file.env", path: str = "package/.env", severity: Severity = Severity.HIGH) -> Finding:
    return Finding(rule=rule, severity=severity, path=path, message="m")


def test_defaults_fail_on_medium() -> None:
    policy = Policy()
    assert policy.fails([finding(severity=Severity.MEDIUM)])
    assert not policy.fails([finding(severity=Severity.LOW)])


def test_disable_by_id_and_by_prefix() -> None:
    policy = from_mapping({"disable": ["file", "sourcemap.source-paths"]})
    kept, suppressed = policy.apply([
        finding("file.env"), finding("sourcemap.source-paths", "a.map"),
        finding("sourcemap.embedded-source", "a.map"), finding("filesystem.x", "b"),
    ])
    assert sorted(f.rule for f in kept) == ["filesystem.x", "sourcemap.embedded-source"]
    assert suppressed == 2


def test_severity_override_and_fail_on() -> None:
    policy = from_mapping({"fail-on": "critical", "severity": {"file.env": "critical"}})
    kept, _ = policy.apply([finding()])
    assert kept[0].severity is Severity.CRITICAL
    assert policy.fails(kept)


def test_ignore_paths_match_full_and_inner_paths() -> None:
    policy = from_mapping({"ignore-paths": ["package/test/**", "fixtures/"]})
    kept, suppressed = policy.apply([
        finding(path="package/test/.env"),
        finding(path="package/lib/a.zip!/fixtures/.env"),
        finding(path="package/.env"),
    ])
    assert [f.path for f in kept] == ["package/.env"]
    assert suppressed == 2


def test_ignore_entries_need_rule_or_path() -> None:
    policy = from_mapping({"ignore": [{"rule": "file.*", "path": "package/examples/*", "reason": "demo"}]})
    assert policy.ignores == (Ignore("file.*", "package/examples/*", "demo"),)
    kept, _ = policy.apply([finding(path="package/examples/.env"), finding(path="package/.env")])
    assert [f.path for f in kept] == ["package/.env"]
    with pytest.raises(ConfigError):
        from_mapping({"ignore": [{"reason": "no rule nor path"}]})


@pytest.mark.parametrize("bad", [
    {"fail-on": "severe"},
    {"unknown-key": 1},
    {"limits": {"max-depth": 0}},
    {"limits": {"max-bogus": 3}},
    {"disable": "file.env"},
])
def test_bad_config_is_a_clear_error(bad: dict) -> None:
    with pytest.raises(ConfigError):
        from_mapping(bad)


def test_limits_from_config() -> None:
    policy = from_mapping({"limits": {"max-depth": 3, "max-ratio": 50}})
    assert policy.limits.max_depth == 3 and policy.limits.max_ratio == 50


def test_config_discovery_prefers_seawall_toml_then_pyproject(tmp_path: Path) -> None:
    project = tmp_path / "proj"
    (project / "sub").mkdir(parents=True)
    (project / ".git").mkdir()
    (project / "pyproject.toml").write_text('[tool.seawall]\nfail-on = "high"\n')
    assert find_config(project / "sub") == project / "pyproject.toml"
    assert load(start=project / "sub").fail_on is Severity.HIGH
    (project / "seawall.toml").write_text('fail-on = "low"\n')
    assert load(start=project / "sub").fail_on is Severity.LOW


def test_pyproject_without_section_is_not_config(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    assert find_config(tmp_path) is None
    assert load(start=tmp_path) == Policy()


def test_broken_toml_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "seawall.toml"
    bad.write_text("fail-on = \n")
    with pytest.raises(ConfigError, match="seawall.toml"):
        load(bad)


def test_baseline_round_trip_suppresses_known_findings(tmp_path: Path) -> None:
    known, new = finding(path="package/.env"), finding(path="package/.env.production")
    out = tmp_path / "baseline.json"
    assert write_baseline([known], out, Policy()) == 1
    doc = json.loads(out.read_text())
    assert doc["findings"][0]["fingerprint"] == known.fingerprint
    policy = Policy(baseline=read_baseline(out))
    kept, suppressed = policy.apply([known, new])
    assert kept == [new] and suppressed == 1


def test_baseline_must_be_a_baseline(tmp_path: Path) -> None:
    bad = tmp_path / "b.json"
    bad.write_text("[1, 2]")
    with pytest.raises(ConfigError, match="not a seawall baseline"):
        read_baseline(bad)
