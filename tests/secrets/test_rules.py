"""Every secret rule carries examples that must and must not match; all of them hold."""

from __future__ import annotations

import pytest

from seawall.secrets import rules as secret_rules
from seawall.secrets.validators import VALIDATORS, crc32_base62

RULES = secret_rules.load()


def test_rule_ids_are_namespaced_and_unique() -> None:
    ids = [r.id for r in RULES]
    assert len(ids) == len(set(ids))
    assert all(i.startswith("secret.") and i == i.lower() for i in ids)


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.id)
def test_rule_has_examples_and_metadata(rule: secret_rules.SecretRule) -> None:
    assert len(rule.examples["match"]) >= 2, "at least two examples that must match"
    assert len(rule.examples["no_match"]) >= 2, "at least two examples that must not match"
    assert rule.name and rule.description and rule.fix


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.id)
def test_examples_hold(rule: secret_rules.SecretRule) -> None:
    for text in rule.examples["match"]:
        assert rule.find_all(text), f"{rule.id} must match: {text!r}"
    for text in rule.examples["no_match"]:
        assert not rule.find_all(text), f"{rule.id} must not match: {text!r}"


def test_crc32_base62_checksum() -> None:
    body = "a" * 30
    token = f"ghp_{body}{crc32_base62(body)}"
    assert VALIDATORS["crc32-base62"](token)
    assert not VALIDATORS["crc32-base62"](token[:-1] + ("0" if token[-1] != "0" else "1"))


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.id)
def test_pattern_compiles(rule: secret_rules.SecretRule) -> None:
    # Patterns compile lazily at scan time; a broken one must fail here, not in a user's scan.
    assert rule.regex.pattern == rule.pattern.pattern
    for allow in rule.allow:
        assert allow.compiled().pattern == allow.pattern


def test_built_in_rules_pass_the_load_time_check() -> None:
    # A scan loads the built-in rules unchecked (parsing 300 patterns is most of the load
    # time); the same tables, checked, must give the same rules.
    checked = [secret_rules.parse_rule(raw, family)
               for family, doc in secret_rules._documents() for raw in doc.get("rule", [])]
    assert [r.id for r in checked] == [r.id for r in RULES]


def test_bad_allow_pattern_is_a_rule_error() -> None:
    raw = {"id": "secret.x", "name": "x", "severity": "low", "description": "d",
           "keywords": ["x"], "pattern": "x+", "allow": ["[unclosed"]}
    with pytest.raises(secret_rules.RuleError, match="bad pattern"):
        secret_rules.parse_rule(raw, "test")


def test_bad_pattern_is_a_rule_error() -> None:
    raw = {"id": "secret.x", "name": "x", "severity": "low", "description": "d",
           "keywords": ["x"], "pattern": "x(unclosed"}
    with pytest.raises(secret_rules.RuleError, match="bad pattern"):
        secret_rules.parse_rule(raw, "test")
