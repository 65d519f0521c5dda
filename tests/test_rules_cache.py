"""Rule files parsed once and remembered: the same data, whatever the cache holds."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from seawall import rules


def test_parsed_rules_are_remembered_by_content(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                ) -> None:
    monkeypatch.setenv("SEAWALL_CACHE_DIR", str(tmp_path))
    text = '[[rule]]\nid = "x"\nkeywords = ["a", "b"]\nentropy = 3.5\n'
    first = rules.parse_toml(text)
    assert first == tomllib.loads(text)
    [cached] = list((tmp_path / "parsed-rules").iterdir())

    def no_parsing(_text: str) -> None:
        raise AssertionError("parsed again")

    monkeypatch.setattr(rules.tomllib, "loads", no_parsing)
    assert rules.parse_toml(text) == first  # from the cache
    monkeypatch.undo()
    monkeypatch.setenv("SEAWALL_CACHE_DIR", str(tmp_path))

    edited = text.replace('"x"', '"y"')
    assert rules.parse_toml(edited)["rule"][0]["id"] == "y"  # a new key, parsed afresh

    cached.write_bytes(b"\xc1 not msgpack")  # damaged: parsed again and rewritten
    assert rules.parse_toml(text) == first
    assert rules.parse_toml(text) == first


def test_an_unwritable_cache_is_not_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("SEAWALL_CACHE_DIR", str(blocker))
    assert rules.parse_toml('a = 1\n') == {"a": 1}
