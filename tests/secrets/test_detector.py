"""The ``secret`` detector through the real engine: what it reads, where it says a secret
is, what it never prints, and that both keyword engines give the same findings."""

from __future__ import annotations

import base64
import hashlib
import json
import random
import tomllib
from pathlib import Path

import pytest
from builders import docker_save, pack, source_map, tar_bytes, write_tree, zip_bytes

from seawall.detectors import catalogue
from seawall.detectors import secrets as detector
from seawall.detectors.base import all_detectors
from seawall.engine import Engine, Target
from seawall.findings import Finding, redact, secret_hash
from seawall.policy import Policy
from seawall.report import json as json_report
from seawall.report import sarif, text
from seawall.scan import scan as scan_report
from seawall.secrets import matcher
from seawall.secrets import rules as secret_rules
from seawall.secrets.scanner import CHUNK, MAX_VALUES, Scanner
from seawall.secrets.validators import crc32_base62

ENGINES = ["python", pytest.param("hyperscan", marks=pytest.mark.skipif(
    "hyperscan" not in matcher.available(), reason="hyperscan is not installed"))]
API_KEY = "secret.anthropic-api-key"
TOKEN_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"


def anthropic_key(seed: int) -> str:
    rng = random.Random(seed)
    return "sk-ant-api03-" + "".join(rng.choice(TOKEN_CHARS) for _ in range(93)) + "AA"


KEY = anthropic_key(1)
OTHER = anthropic_key(2)


def scan(path: Path, engine: str | None = None) -> list[Finding]:
    """Findings of the secret detector alone (others' work in progress cannot interfere)."""
    others = frozenset(all_detectors()) - {"secret"}
    settings = {"secret": {"engine": engine}} if engine else {}
    result = Engine(settings=settings, disabled_detectors=others).scan_target(
        Target(path.name, path=path))
    assert not result.errors
    return result.findings


def where(findings: list[Finding]) -> list[tuple[str, str, int | None, int]]:
    return [(f.rule, f.path, f.line, f.evidence["column"]) for f in findings]


# -- rules as the catalogue shows them -----------------------------------------------------


def test_every_rule_and_active_pair_is_in_the_catalogue() -> None:
    ids = {r.id for r in secret_rules.load()} | {p.id for p in secret_rules.load_pairs()}
    shown = {i for i in catalogue() if i.startswith("secret.")}
    assert shown == ids
    assert {r.id for r in detector.SecretDetector.rules} == ids


def test_documented_examples_are_redacted() -> None:
    rules = catalogue()
    for rule in secret_rules.load():
        shown = " ".join(rules[rule.id].examples["match"])
        for example in rule.examples["match"]:
            for secret in rule.find_all(example):
                assert secret.decode() not in shown, rule.id


def test_active_pair_examples_hold() -> None:
    scanner = Scanner(secret_rules.load(), secret_rules.load_pairs())
    for pair in secret_rules.load_pairs():
        for example in pair.examples["match"]:
            assert [m.id for m in scanner.scan(example.encode())[0]] == [pair.id], example
        for example in pair.examples["no_match"]:
            assert pair.id not in [m.id for m in scanner.scan(example.encode())[0]], example


# -- what is read, and where a secret is said to be ----------------------------------------


@pytest.mark.parametrize("engine", ENGINES)
def test_secret_at_read_and_chunk_boundaries(tmp_path: Path, engine: str) -> None:
    """Keys straddling 64 KiB, 1 MiB and the keyword chunk, in a streamed tgz member."""
    size = 3 * CHUNK + 4096
    data = bytearray((b"x" * 99 + b"\n") * (size // 100))
    offsets = [64 * 1024 - 50, 1024 * 1024 - 7, CHUNK - 6, 2 * CHUNK - 100, 3 * CHUNK]
    keys = [anthropic_key(100 + i) for i in range(len(offsets))]
    for at, key in zip(offsets, keys):
        data[at - 1 : at + len(key) + 1] = b" " + key.encode() + b" "
    target = pack({"package/big.txt": bytes(data)}, "tgz", tmp_path)
    expected = sorted(
        (API_KEY, "package/big.txt", data.count(b"\n", 0, at) + 1, at - data.rfind(b"\n", 0, at))
        for at in offsets
    )
    assert sorted(where(scan(target, engine))) == expected


@pytest.mark.parametrize("engine", ENGINES)
def test_mapped_file_larger_than_the_read_in_limit(tmp_path: Path, engine: str) -> None:
    """A file on disk over 16 MiB is scanned as an mmap, across every chunk boundary."""
    lines = (b"y" * 63 + b"\n") * ((17 * 1024 * 1024) // 64)
    data = bytearray(lines)
    offsets = [CHUNK * n - 40 for n in (1, 2, 3, 4)] + [len(data) - 150]
    for i, at in enumerate(offsets):
        data[at - 1 : at + 109] = b" " + anthropic_key(200 + i).encode() + b" "
    (tmp_path / "tree").mkdir()
    (tmp_path / "tree" / "dump.bin").write_bytes(bytes(data))
    found = scan(tmp_path / "tree", engine)
    assert [(f.line, f.evidence["column"]) for f in found] == sorted(
        (data.count(b"\n", 0, at) + 1, at - data.rfind(b"\n", 0, at)) for at in offsets)


@pytest.mark.parametrize("engine", ENGINES)
def test_ten_megabyte_single_line(tmp_path: Path, engine: str) -> None:
    body = b"function a(b){return b+1};var c=a(2);" * (10 * 1024 * 1024 // 38)
    middle = len(body) // 2
    data = body[:middle] + f'"{KEY}"'.encode() + body[middle:] + f'x="{OTHER}"'.encode()
    found = scan(write_tree({"dist/app.min.js": data}, tmp_path / "tree"), engine)
    assert where(found) == [
        (API_KEY, "dist/app.min.js", 1, middle + 2),
        (API_KEY, "dist/app.min.js", 1, len(data) - len(OTHER)),
    ]


def test_empty_noise_and_invalid_utf8(tmp_path: Path) -> None:
    rng = random.Random(9)
    noise = rng.randbytes(300_000)
    tree = {
        "empty": b"",
        "noise.bin": noise,
        "latin1.txt": "clé=é\xff".encode("latin-1") + b"\xc3\x28\xa0\xa1",
        "hidden.bin": noise[:1000] + b"\xff\x00" + KEY.encode() + b"\x00\xfe" + noise[1000:],
    }
    found = scan(write_tree(tree, tmp_path / "tree"))
    assert [(f.rule, f.path) for f in found] == [(API_KEY, "hidden.bin")]


def test_order_is_deterministic_and_engines_agree(tmp_path: Path) -> None:
    rng = random.Random(4)
    tree = {f"src/{i}.js": b"\n".join(rng.randbytes(50) for _ in range(20)) for i in range(5)}
    tree["src/2.js"] += f"\nconst k = '{KEY}', j = '{OTHER}';\n".encode()
    tree["src/4.js"] = f"// {OTHER}\n".encode() + tree["src/4.js"]
    target = pack(tree, "zip", tmp_path)
    runs = [[f.to_dict() for f in scan(target, engine)] for engine in matcher.available() * 2]
    assert all(run == runs[0] for run in runs) and len(runs[0]) == 2


@pytest.mark.parametrize("engine", ENGINES)
def test_engines_agree_on_every_rule_example(tmp_path: Path, engine: str) -> None:
    tree: dict[str, bytes] = {}
    for rule in secret_rules.load():
        for kind in ("match", "no_match"):
            for i, example in enumerate(rule.examples[kind]):
                tree[f"{rule.id}/{kind}-{i}.txt"] = example.encode()
    tree["all.txt"] = b"\n".join(tree.values())
    found = scan(write_tree(tree, tmp_path / "tree"), engine)
    reference = scan(tmp_path / "tree", "python")
    assert [f.to_dict() for f in found] == [f.to_dict() for f in reference]
    places = {loc.path for f in found for loc in f.locations}
    assert {p for p in tree if "/match-" in p} <= places  # every match example, by some rule


# -- one secret, one finding; never its value ------------------------------------------------


def test_same_secret_in_three_files_is_one_finding(tmp_path: Path) -> None:
    tree = {
        "package/a.js": f"k='{KEY}'\n".encode(),
        "package/b/c.js": f"\n\nk='{KEY}'\n".encode(),
        "package/d.txt": f"{KEY}\n".encode(),
    }
    [finding] = scan(pack(tree, "tgz", tmp_path))
    assert finding.rule == API_KEY
    assert finding.path == "package/a.js" and finding.line == 1
    assert [(loc.path, loc.line) for loc in finding.locations] == [
        ("package/a.js", 1), ("package/b/c.js", 3), ("package/d.txt", 1)]
    assert finding.key == secret_hash(KEY)
    assert finding.message == f"Anthropic API key {redact(KEY)}"
    assert dict(finding.evidence) == {
        "redacted": redact(KEY), "hash": secret_hash(KEY), "length": len(KEY), "column": 4}


def test_secret_value_appears_in_no_output(tmp_path: Path) -> None:
    tree = {"package/index.js": f"export const key = '{KEY}';\n".encode(),
            "package/app.js.map": source_map({"../src/config.ts": f"const k = '{OTHER}';\n"})}
    report = scan_report([str(pack(tree, "tgz", tmp_path))], Policy())
    rules = catalogue()
    outputs = [json_report.render(report, rules), sarif.render(report, rules),
               text.render(report, rules)]
    secrets = {f.rule for f in report.findings if f.rule.startswith("secret.")}
    assert secrets == {API_KEY}
    for output in outputs:
        for value in (KEY, OTHER):
            assert value not in output and value[20:60] not in output
    doc = json.loads(outputs[0])
    assert any(f["evidence"].get("redacted") == redact(KEY) for f in doc["findings"])


# -- where secrets hide ---------------------------------------------------------------------


def test_secret_in_source_map_source_inside_tgz(tmp_path: Path) -> None:
    body = f"// config\nexport const config = {{\n  apiKey: \"{KEY}\",\n}};\n"
    tree = {"package/app.js": b"console.log(1)\n//# sourceMappingURL=app.js.map\n",
            "package/app.js.map": source_map({"../src/config.ts": body, "../src/a.ts": "1\n"})}
    [finding] = scan(pack(tree, "tgz", tmp_path))
    assert (finding.path, finding.line, finding.evidence["column"]) == (
        "package/app.js.map!/src/config.ts", 3, 12)
    assert len(finding.locations) == 1  # the map's JSON itself is not read again


def test_inline_map_and_its_script(tmp_path: Path) -> None:
    embedded = source_map({"../src/x.ts": f"\n'{OTHER}'\n"})
    script = (f"var k='{KEY}';\n//# sourceMappingURL=data:application/json;base64,"
              + base64.b64encode(embedded).decode() + "\n").encode()
    found = scan(pack({"package/app.js": script}, "tgz", tmp_path))
    assert where(found) == [
        (API_KEY, "package/app.js", 1, 8),
        (API_KEY, "package/app.js!/inline.map!/src/x.ts", 2, 2),
    ]


def test_map_without_embedded_sources_is_read_as_text(tmp_path: Path) -> None:
    unparsable = b'{"version":3,"sources":["a.ts"],"mappings":"AAAA","x":"' + KEY.encode() + b'"'
    listed = source_map({"../src/a.ts": None}, sourceRoot=KEY)
    [finding] = scan(write_tree({"a.js.map": unparsable, "b.js.map": listed}, tmp_path / "tree"))
    assert [loc.path for loc in finding.locations] == ["a.js.map", "b.js.map"]


def test_archive_members_are_read_once(tmp_path: Path) -> None:
    from zipfile import ZIP_STORED

    jar = zip_bytes({"app.properties": f"key={KEY}\n".encode()}, compression=ZIP_STORED)
    tree = {"package/lib/app.jar": jar, "package/nested.tar": tar_bytes({"x.env": KEY.encode()})}
    [finding] = scan(pack(tree, "tgz", tmp_path))
    assert [loc.path for loc in finding.locations] == [
        "package/lib/app.jar!/app.properties", "package/nested.tar!/x.env"]


def test_secret_in_whited_out_image_layer(tmp_path: Path) -> None:
    layers = [{"app/config.js": f"module.exports = '{KEY}';\n".encode()},
              {"app/.wh.config.js": b""}]
    target = tmp_path / "image.tar"
    target.write_bytes(docker_save(layers))
    [finding] = scan(target)
    layer = hashlib.sha256(tar_bytes(layers[0])).hexdigest()
    assert finding.path == f"{layer}/layer.tar!/app/config.js"
    assert finding.evidence["layer"] == 0 and finding.evidence["deleted_in_layer"] == 1
    assert finding.evidence["redacted"] == redact(KEY)


# -- pairs, overlaps, limits ------------------------------------------------------------------

TEST_RULES = '''
[[rule]]
id = "secret.test-key-id"
name = "Test key id"
severity = "medium"
description = "A test key id."
fix = "Rotate it."
keywords = ["tkid"]
pattern = \'\'\'\\bTKID[A-Z2-7]{16}\\b\'\'\'

[[rule]]
id = "secret.test-key-secret"
name = "Test key secret"
severity = "high"
description = "A test key secret."
fix = "Rotate it."
keywords = ["test_secret"]
pattern = \'\'\'(?i)test_secret\\s*[=:]\\s*(?P<secret>[A-Za-z0-9/+]{40})\'\'\'

[[rule]]
id = "secret.test-generic"
name = "Generic assignment"
severity = "low"
description = "Anything assigned to a name ending in key."
fix = "Check it."
keywords = ["key"]
pattern = \'\'\'(?i)key\\s*=\\s*['"]?(?P<secret>[A-Za-z0-9_\\-]{20,})\'\'\'

[[rule]]
id = "secret.test-checked"
name = "Checked token"
severity = "high"
description = "A token with a CRC32 in base62."
fix = "Revoke it."
keywords = ["tck_"]
pattern = \'\'\'\\btck_[A-Za-z0-9]{36}\\b\'\'\'
validator = "crc32-base62"

[[pair]]
id = "secret.test-key"
name = "Test key pair"
severity = "critical"
description = "A test key id with its secret."
fix = "Rotate it."
rules = ["secret.test-key-id", "secret.test-key-secret"]
within = 64
'''


@pytest.fixture
def test_rules(monkeypatch: pytest.MonkeyPatch) -> tuple[secret_rules.SecretRule, ...]:
    doc = tomllib.loads(TEST_RULES)
    rules = tuple(secret_rules.parse_rule(r, "test") for r in doc["rule"])
    rules += tuple(r for r in secret_rules.load() if r.id == API_KEY)
    pairs = secret_rules.active_pairs([secret_rules.parse_pair(p, "test") for p in doc["pair"]],
                                      rules)
    monkeypatch.setattr(detector, "SECRET_RULES", rules)
    monkeypatch.setattr(detector, "PAIRS", pairs)
    return rules


def key_id(seed: int) -> str:
    rng = random.Random(seed)
    return "TKID" + "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(16))


def key_secret(seed: int) -> str:
    rng = random.Random(seed)
    return "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/+")
                   for _ in range(40))


@pytest.mark.parametrize("engine", ENGINES)
def test_pair_side_by_side_is_one_finding(tmp_path: Path, engine: str, test_rules: object) -> None:
    ident, secret = key_id(1), key_secret(1)
    near = f"[default]\nid = {ident}\ntest_secret = {secret}\n"
    far = f"id = {key_id(2)}\n" + "#" * 100 + f"\ntest_secret = {key_secret(2)}\n"
    tree = {"near.ini": near.encode(), "copy.ini": near.encode(), "far.ini": far.encode()}
    found = scan(write_tree(tree, tmp_path / "tree"), engine)
    assert [(f.rule, f.path, [loc.path for loc in f.locations]) for f in found] == [
        ("secret.test-key", "copy.ini", ["copy.ini", "near.ini"]),
        ("secret.test-key-secret", "far.ini", ["far.ini"]),
        ("secret.test-key-id", "far.ini", ["far.ini"]),
    ]
    pair = found[0]
    assert pair.line == 2 and pair.message == f"Test key pair {redact(ident)} with {redact(secret)}"
    assert pair.key == secret_hash(f"{ident}\0{secret}")
    assert pair.evidence["parts"] == [
        {"rule": "secret.test-key-id", "line": 2, "redacted": redact(ident),
         "hash": secret_hash(ident), "length": 20, "column": 6},
        {"rule": "secret.test-key-secret", "line": 3, "redacted": redact(secret),
         "hash": secret_hash(secret), "length": 40, "column": 15},
    ]
    for value in (ident, secret):
        assert value not in json.dumps([f.to_dict() for f in found])


def test_pair_joins_each_id_to_the_nearest_secret(test_rules: object) -> None:
    pairs = detector.PAIRS
    scanner = Scanner(detector.SECRET_RULES, pairs, "python")
    ids, secrets = [key_id(i) for i in range(3)], [key_secret(i) for i in range(3)]
    data = (f"{ids[0]} test_secret={secrets[0]}\n{ids[1]}\n test_secret={secrets[1]} "
            f"{ids[2]}").encode()
    matches, _ = scanner.scan(data)
    joined = [tuple(p.secret.decode() for p in m.parts) for m in matches]
    assert joined == [(ids[0], secrets[0]), (ids[1], secrets[1]), (ids[2],)]


def test_pair_needs_both_rules_and_one_pair_per_rule(test_rules: object) -> None:
    doc = tomllib.loads(TEST_RULES)
    pair = secret_rules.parse_pair(doc["pair"][0], "test")
    assert secret_rules.active_pairs([pair], detector.SECRET_RULES[1:]) == ()
    twin = secret_rules.parse_pair({**doc["pair"][0], "id": "secret.test-twin"}, "test")
    with pytest.raises(secret_rules.RuleError, match="one pair"):
        secret_rules.active_pairs([pair, twin], detector.SECRET_RULES)
    with pytest.raises(secret_rules.RuleError, match="used twice or by a rule"):
        secret_rules.active_pairs([pair, pair], detector.SECRET_RULES)
    with pytest.raises(secret_rules.RuleError, match="two different rules"):
        secret_rules.parse_pair({**doc["pair"][0], "rules": ["secret.a"]}, "test")


def test_overlap_goes_to_the_more_severe_rule(tmp_path: Path, test_rules: object) -> None:
    generic = "ABCDEFGHIJKLMNOPQRSTUVWXYZ_1234"
    data = f"api_key = '{KEY}'\nother_key = '{generic}'\n".encode()
    found = scan(write_tree({"a.py": data}, tmp_path / "tree"))
    assert [(f.rule, f.line) for f in found] == [(API_KEY, 1), ("secret.test-generic", 2)]


@pytest.mark.parametrize("engine", ENGINES)
def test_too_many_values_in_one_file(tmp_path: Path, engine: str, test_rules: object) -> None:
    data = "\n".join(key_id(i) for i in range(MAX_VALUES + 5)).encode()
    result = Engine(settings={"secret": {"engine": engine}},
                    disabled_detectors=frozenset(all_detectors()) - {"secret"}).scan_target(
        Target("t", path=write_tree({"ids.txt": data}, tmp_path / "tree")))
    rules = [f.rule for f in result.findings]
    assert rules.count("secret.test-key-id") == MAX_VALUES
    assert rules.count("anomaly.limit") == 1


def test_checksum_decides_and_is_recorded(tmp_path: Path, test_rules: object) -> None:
    body = "Q" * 10 + "".join(random.Random(5).choice(TOKEN_CHARS[:62]) for _ in range(20))
    good = f"tck_{body}{crc32_base62(body)}"
    bad = f"tck_{body[::-1]}{crc32_base62(body)}"
    found = scan(write_tree({"a.env": f"T={good}\nU={bad}\n".encode()}, tmp_path / "tree"))
    assert [(f.rule, f.line, f.evidence.get("validated")) for f in found] == [
        ("secret.test-checked", 1, "crc32-base62")]


def test_unknown_engine_is_an_error_not_a_silent_fallback(tmp_path: Path) -> None:
    result = Engine(settings={"secret": {"engine": "re2"}}).scan_target(
        Target("t", path=write_tree({"a": KEY.encode()}, tmp_path / "tree")))
    assert result.errors


def test_key_in_a_test_folder_is_low_and_elsewhere_critical(tmp_path: Path) -> None:
    from seawall.findings import Severity
    from seawall.secrets import rules as secret_rules

    # A freshly generated key from the rule's own must-match examples.
    [rule] = [r for r in secret_rules.load() if r.id == "secret.private-key-pkcs8"]
    key = rule.examples["match"][0].encode()
    target = pack({"pkg/tests/certs/server.key.txt": key, "pkg/deploy/server.key.txt": key}, "tgz", tmp_path)
    result = Engine().scan_target(Target("t", path=target))
    [merged] = [f for f in result.findings if f.rule == "secret.private-key-pkcs8"]
    # One key, two places: one finding, rated and placed by its worst place.
    assert (merged.path, merged.severity) == ("pkg/deploy/server.key.txt", Severity.CRITICAL)
    assert [loc.path for loc in merged.locations] == ["pkg/deploy/server.key.txt",
                                                      "pkg/tests/certs/server.key.txt"]
    by_path = {}
    for place in ("pkg/tests/certs/server.key.txt", "pkg/deploy/server.key.txt"):
        only = pack({place: key}, "tgz", tmp_path / place.split("/")[1])
        [finding] = [f for f in Engine().scan_target(Target("t", path=only)).findings
                     if f.rule == "secret.private-key-pkcs8"]
        by_path[place] = finding.severity
    assert by_path == {"pkg/tests/certs/server.key.txt": Severity.LOW,
                       "pkg/deploy/server.key.txt": Severity.CRITICAL}
