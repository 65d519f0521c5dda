"""The keyword matchers: Hyperscan and pure Python find exactly the same hits, whatever
the input and however it is cut into ranges; the scanner built on them gives the same values."""

from __future__ import annotations

import dataclasses
import mmap
import random
import re
import tomllib
from pathlib import Path

import pytest

from seawall.secrets import matcher as matchers
from seawall.secrets import rules as secret_rules
from seawall.secrets.matcher import Hits, Matcher, PythonMatcher
from seawall.secrets.scanner import Scanner

ROOT = Path(__file__).parents[2]
RULES_DIR = ROOT / "src/seawall/rules/secrets"
HAVE_HYPERSCAN = "hyperscan" in matchers.available()
needs_hyperscan = pytest.mark.skipif(not HAVE_HYPERSCAN, reason="hyperscan is not installed")

TRICKY = [b"aa", b"aaa", b"key", b"api_key", b"apikey", b"sk-", b"sk-ant-", b"sk-ant-api03-",
          b"-----begin", b"\x00\xff", "clé".encode(), b"ghp_", b"token", b"en"]
"""Overlapping, nested, non-ASCII and NUL-bearing keywords."""


def all_keywords() -> list[bytes]:
    return sorted({k for r in secret_rules.load() for k in r.keywords} | set(TRICKY))


def engines(keywords: list[bytes]) -> list[Matcher]:
    made: list[Matcher] = [PythonMatcher(keywords)]
    if HAVE_HYPERSCAN:
        made.append(matchers.HyperscanMatcher(keywords))
    return made


def brute_force(data: bytes, keywords: list[bytes]) -> Hits:
    lowered = data.lower()
    hits: Hits = {}
    for i, keyword in enumerate(keywords):
        starts = [at for at in range(len(data)) if lowered.startswith(keyword, at)]
        if starts:
            hits[i] = starts
    return hits


def noise(rng: random.Random, size: int, keywords: list[bytes]) -> bytes:
    """Random bytes, text and keywords (in mixed case, glued together and overlapping)."""
    parts: list[bytes] = []
    while sum(map(len, parts)) < size:
        kind = rng.random()
        if kind < 0.3:
            keyword = rng.choice(keywords)
            parts.append(bytes(c ^ 0x20 if 97 <= c <= 122 and rng.random() < 0.5 else c
                               for c in keyword))
        elif kind < 0.6:
            parts.append(rng.randbytes(rng.randrange(1, 40)))
        else:
            parts.append(bytes(rng.choice(b"aAkKeEyY-_n ") for _ in range(rng.randrange(1, 20))))
    return b"".join(parts)[:size]


def corpus() -> list[bytes]:
    """Every rule example, the test sources, the rule files, and seeded noise."""
    texts: list[bytes] = []
    for path in sorted(RULES_DIR.glob("*.toml")):
        texts.append(path.read_bytes())
        doc = tomllib.loads(path.read_text("utf-8"))
        for raw in [*doc.get("rule", []), *doc.get("pair", [])]:
            for kind in ("match", "no_match"):
                texts += [e.encode() for e in raw.get("examples", {}).get(kind, ())]
    texts += [p.read_bytes() for p in sorted((ROOT / "tests").rglob("*.py"))]
    rng = random.Random(3)
    keywords = all_keywords()
    texts += [noise(rng, rng.randrange(0, 5000), keywords) for _ in range(60)]
    return texts


def test_python_matcher_is_exact() -> None:
    rng = random.Random(7)
    keywords = sorted(set(TRICKY))
    for _ in range(200):
        data = noise(rng, rng.randrange(0, 300), keywords)
        assert PythonMatcher(keywords).find(data) == brute_force(data, keywords)


@needs_hyperscan
def test_engines_find_identical_hits_on_the_corpus() -> None:
    python, hyper = engines(all_keywords())
    for text in corpus():
        assert python.find(text) == hyper.find(text), text[:80]


@needs_hyperscan
def test_engines_give_identical_values_on_the_corpus() -> None:
    rules, pairs = secret_rules.load(), secret_rules.load_pairs()
    python, hyper = Scanner(rules, pairs, "python"), Scanner(rules, pairs, "hyperscan")
    found = 0
    for text in corpus():
        ours, theirs = python.scan(text), hyper.scan(text)
        assert ours == theirs, text[:80]
        found += len(ours[0])
    assert found >= len(rules)  # every rule's match examples are in the corpus


@pytest.mark.parametrize("engine", ["python", "hyperscan"])
def test_ranges_find_everything_whatever_the_boundaries(engine: str) -> None:
    if engine == "hyperscan" and not HAVE_HYPERSCAN:
        pytest.skip("hyperscan is not installed")
    keywords = sorted(set(TRICKY))
    m = PythonMatcher(keywords) if engine == "python" else matchers.HyperscanMatcher(keywords)
    data = noise(random.Random(11), 3000, keywords)
    whole = m.find(data)
    for step in (1, 2, 3, 7, 13, 64, 1000):
        merged: Hits = {}
        for start in range(0, len(data), step):
            for keyword, starts in m.find(data, start, start + step).items():
                merged.setdefault(keyword, []).extend(starts)
        assert merged == whole, f"cut every {step} bytes"


def test_keywords_inside_and_at_the_start_of_others() -> None:
    """Every keyword at a place is found, not just the longest: prefixes, infixes, repeats."""
    keywords = [b"k", b"key", b"keys", b"api_key", b"my_api_key_", b"sk-", b"sk-ant-api03-", b"e"]
    m = PythonMatcher(keywords)
    assert len(m.passes) == 5  # one per first byte: a, e, k, m, s
    rare = b"x" * 5000 + b"MY_API_KEY_=sk-ant-api03-1 and keys"
    common = b"key;" * 2000 + b"Api_Key sk-ANT-api03-KEYSkeyS"
    for data in (rare, common, b"k", b"kkkk", b""):
        assert m.find(data) == brute_force(data, keywords)
        for other in engines(keywords)[1:]:
            assert other.find(data) == m.find(data)


def test_mmap_and_bytes_give_the_same_hits(tmp_path: Path) -> None:
    keywords = sorted(set(TRICKY))
    data = noise(random.Random(5), 20000, keywords)
    path = tmp_path / "blob"
    path.write_bytes(data)
    with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        for m in engines(keywords):
            assert m.find(mapped) == m.find(data)
            assert m.find(mapped, 4096, 8192) == m.find(data, 4096, 8192)


def test_empty_and_out_of_range() -> None:
    for m in engines([b"key"]):
        assert m.find(b"") == {}
        assert m.find(b"key", 3) == {}
        assert m.find(b"key", 0, 0) == {}
        assert m.find(b"akey", 1, 2) == {0: [1]}


def test_keywords_must_be_unique_lower_case_literals() -> None:
    for bad in ([], [b""], [b"Key"], [b"key", b"key"]):
        with pytest.raises(ValueError):
            PythonMatcher(bad)


def test_engine_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(matchers.ENV, "python")
    assert matchers.choose() == "python"
    assert matchers.choose("auto") == matchers.available()[0]
    monkeypatch.delenv(matchers.ENV)
    assert matchers.choose() == matchers.available()[0]
    with pytest.raises(ValueError, match="unknown secret engine"):
        matchers.choose("re2")
    monkeypatch.setattr(matchers, "available", lambda: ("python",))
    with pytest.raises(ValueError, match="not installed"):
        matchers.choose("hyperscan")


# -- where a rule's pattern is tried ------------------------------------------------------------


@pytest.mark.parametrize(("pattern", "keywords", "offset"), [
    (rb"sk-ant-api03-[A-Za-z0-9]{93}AA", [b"sk-ant-api03-"], 0),
    (rb"(?<![A-Za-z0-9])(?:[Tt]oken|TOKEN)\s*=", [b"token"], 0),
    (rb"(?i)\b(?:ghp|gho)_[A-Za-z0-9]{36}", [b"ghp_", b"gho_"], 0),
    (rb"-----BEGIN RSA PRIVATE KEY-----", [b"begin rsa private key"], 5),
    (rb"(?:api\.telegram\.org/bot|(?i:telegram|bot)[-_]?)[0-9]{8,10}:", [b"telegram", b"bot"], 4),
    (rb"(?:https?|ftp)://[^:]+:(?P<secret>[^@]+)@", [b"://"], 5),
    (rb"api[_\-]?key\s*=", [b"api_key", b"api-key", b"apikey"], 0),
    (rb"[A-Za-z]{0,8}_?token=", [b"token"], 9),
    (rb"(?:x|y)?sk_live_", [b"sk_live_"], 1),
])
def test_keyword_offset_is_read_off_the_pattern(pattern: bytes, keywords: list[bytes],
                                                offset: int) -> None:
    assert secret_rules.keyword_offset(re.compile(pattern), keywords) == offset


@pytest.mark.parametrize(("pattern", "keywords"), [
    (rb"[MNO][A-Za-z0-9]{20}\.", [b"mta"]),  # the keyword is likely, not certain
    (rb"(?:bot\s)?[0-9]{8}:", [b"bot"]),  # the keyword is optional
    (rb"[A-Za-z]+token=", [b"token"]),  # unbounded before the keyword
    (rb"(?P<q>x)?(?(q)token|tok)", [b"token"]),  # a construct it does not read
    (rb"tok(?:en|ens|e)", [b"token"]),  # one way through holds only part of the keyword
])
def test_keyword_offset_says_unknown_when_unsure(pattern: bytes, keywords: list[bytes]) -> None:
    assert secret_rules.keyword_offset(re.compile(pattern), keywords) is None


def test_line_anchored_patterns_are_recognised() -> None:
    assert secret_rules.starts_lines(re.compile(rb"(?m)^\s*password\s*=")) is True
    assert secret_rules.starts_lines(re.compile(rb"^\s*password\s*=", re.MULTILINE)) is True
    assert secret_rules.starts_lines(re.compile(rb"^password")) is False  # string start only
    assert secret_rules.starts_lines(re.compile(rb"(?m)x|^password")) is False


def test_shortcuts_find_what_a_full_window_search_finds() -> None:
    """Trying a rule only where a match can begin changes its cost, never its values."""
    rules = secret_rules.load()
    keywords = sorted({k for r in rules for k in r.keywords})
    find = PythonMatcher(keywords).find
    texts = corpus()
    texts += [b"\n".join(texts[i : i + 40]) for i in range(0, len(texts), 40)]
    found = [(text, find(text)) for text in texts]
    shortcut = 0
    for rule in rules:
        full = dataclasses.replace(rule, before=rule.max_length, line_start=False)
        shortcut += rule._shape != full._shape
        mine = {i for i, k in enumerate(keywords) if k in rule.keywords}
        for text, hits_by_keyword in found:
            hits = sorted((at, at + len(keywords[k])) for k, starts in hits_by_keyword.items()
                          if k in mine for at in starts)
            if hits:
                fast, slow = set(rule.scan(text, hits)), set(full.scan(text, hits))
                assert fast == slow, (rule.id, text[:80])
    assert shortcut > len(rules) // 2


def test_line_starts_near_hits_whichever_way_they_are_walked() -> None:
    rng = random.Random(8)
    for _ in range(300):
        data = bytes(rng.choice(b"ab\n") for _ in range(rng.randrange(1, 120)))
        firsts = sorted(rng.sample(range(len(data)), rng.randrange(1, min(len(data), 30) + 1)))
        hits = [(at, at + 1) for at in firsts]
        back = rng.randrange(0, 20)
        expected = [p for p in range(len(data)) if (p == 0 or data[p - 1] == 10)
                    and any(p <= at <= p + back for at in firsts)]
        assert secret_rules._line_starts(data, hits, back) == expected


@needs_hyperscan
def test_one_matcher_serves_many_threads_at_once() -> None:
    # The watch service scans releases on several threads with one set of rules.
    from concurrent.futures import ThreadPoolExecutor

    keywords = [b"ghp_", b"password"]
    matcher = matchers.HyperscanMatcher(keywords)
    data = (b"x" * 1000 + b"ghp_" + b"y" * 1000 + b"password") * 2000
    expected = matcher.find(data)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: matcher.find(data), range(64)))
    assert all(r == expected for r in results)
    assert len(expected[0]) == 2000
