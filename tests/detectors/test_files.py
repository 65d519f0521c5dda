"""The ``file`` detector: every rule's own examples, then real artifacts in every format."""

from __future__ import annotations

import gzip
import tomllib
from pathlib import Path

import pytest
from builders import FORMATS, pack, tar_bytes
from maps import source_map

from seawall.artifacts.base import Content
from seawall.detectors.base import FileView, all_detectors
from seawall.detectors.files import (
    FILE_RULES,
    Example,
    FileDetector,
    glob_tokens,
    load_rule,
    may_match,
)
from seawall.engine import Engine, Target
from seawall.findings import Finding, Severity

RULES_TOML = Path(__file__).parents[2] / "src/seawall/rules/files.toml"
CLAUDE_CODE_2_1_87 = Path("/work/cache/npm/anthropic-ai-claude-code-2.1.87.tgz")


def detect_one(example: Example) -> set[str]:
    """Rule ids a fresh detector reports for a single file, folders included."""
    view = FileView(path=example.path, inner=example.path, content=Content(example.content),
                    size=len(example.content))
    detector = FileDetector()
    found = list(detector.scan(view)) if detector.wants(view) else []
    return {f.rule for f in [*found, *detector.finish()]}


def scan(path: Path) -> list[Finding]:
    """Scan with the file detector alone, so other detectors' work in progress cannot interfere."""
    others = frozenset(name for name in all_detectors() if name != "file")
    result = Engine(disabled_detectors=others).scan_target(Target("t", path=path))
    assert not result.errors
    return [f for f in result.findings if f.rule.startswith("file.")]


# -- the rules themselves ----------------------------------------------------------------------


@pytest.mark.parametrize("file_rule", FILE_RULES, ids=lambda fr: fr.rule.id)
def test_rule_examples(file_rule) -> None:
    rule_id = file_rule.rule.id
    for example in file_rule.examples["match"]:
        assert rule_id in detect_one(example), f"should match: {example.label()}"
    for example in file_rule.examples["no_match"]:
        assert rule_id not in detect_one(example), f"should not match: {example.label()}"


def test_rule_metadata() -> None:
    raw = tomllib.loads(RULES_TOML.read_text("utf-8"))["rule"]
    ids = [r["id"] for r in raw]
    assert len(ids) == len(set(ids)), "duplicate rule ids"
    assert {fr.rule.id for fr in FILE_RULES} == set(ids)
    for r in raw:
        assert r["id"].startswith("file.") and r["id"] == r["id"].lower(), r["id"]
        assert r["severity"] in {s.label for s in Severity}, r["id"]
        assert r["name"].strip() and r["help"].strip(), r["id"]
        assert "\n" not in r["summary"] and "|" not in r["summary"], f"{r['id']}: one table cell"
        assert len(r["examples"]["match"]) >= 2, r["id"]
        assert len(r["examples"]["no_match"]) >= 2, r["id"]
        assert r.get("tests_severity", "info") in {s.label for s in Severity}, r["id"]


def test_a_mistyped_matcher_is_an_error_not_a_silent_no_op() -> None:
    rule = {"id": "file.x", "name": "x", "severity": "low", "summary": "x", "help": "x"}
    with pytest.raises(ValueError, match="unknown keys"):
        load_rule({**rule, "name_globs": ["x"]})
    with pytest.raises(ValueError, match="single path component"):
        load_rule({**rule, "names": [".aws/credentials"]})


def test_detector_is_registered_with_its_rules() -> None:
    assert all_detectors()["file"] is FileDetector
    assert {rule.id for rule in FileDetector.rules} == {fr.rule.id for fr in FILE_RULES}


def test_globs_stay_within_one_path_component() -> None:
    assert "".join(glob_tokens("*.pem")) == r"[^/]*\.pem"
    assert "".join(glob_tokens("core.[0-9]*")) == r"core\.[0-9][^/]*"
    assert "".join(glob_tokens("[!.]x")) == r"[^.]x"
    assert may_match("home/u/.aws/credentials")
    assert not may_match("home/u/x.aws/credentials")
    assert not may_match("package/cli.js")


def test_precheck_never_misses_what_a_rule_matches() -> None:
    # The combined regex is a superset of the rules; an example that resolves must pass it.
    for file_rule in FILE_RULES:
        for example in file_rule.examples["match"]:
            assert may_match(example.path), example.path


# -- real artifacts ----------------------------------------------------------------------------

PRIVATE_KEY = b"-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----\n"
CERTIFICATE = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
NPM_TOKEN = b"npm_q8Zt3vLw9RkP2mXa7NcBw1Yh"

TREE = {
    "package/package.json": b'{"name": "demo", "version": "1.0.0"}',
    "package/index.js": b"module.exports = 1;\n",
    "package/.env": b"API_KEY=q8Zt3vLw9RkP2mXa7NcB\n",
    "package/.env.bak": b"API_KEY=q8Zt3vLw9RkP2mXa7NcB\n",
    "package/.env.example": b"API_KEY=your-api-key\n",
    "package/.npmrc": b"//registry.npmjs.org/:_authToken=" + NPM_TOKEN + b"\n",
    "package/.git/HEAD": b"ref: refs/heads/main\n",
    "package/.git/config": b"[core]\n",
    "package/.git/objects/ab/cdef": b"x\x01",
    "package/.claude/settings.local.json": b"{}",
    "package/.claude/commands/ship.md": b"ship it\n",
    "package/CLAUDE.md": b"# notes\n",
    "package/docs/claude.md": b"# using Claude\n",
    "package/certs/server.pem": CERTIFICATE + PRIVATE_KEY,
    "package/certs/ca.pem": CERTIFICATE,
    "package/prompts/system.md": b"You are...\n",
    "package/lib/prompts/input.js": b"module.exports = {};\n",
    "package/.DS_Store": b"\x00\x00\x00\x01Bud1",
    "package/config.json.bak": b"{}",
    "package/db/dump.sql.gz": gzip.compress(b"INSERT INTO users VALUES (1);\n", mtime=0),
    "package/vendor/bundle.tgz": gzip.compress(tar_bytes({"package/.env": b"X=1\n"}), mtime=0),
}

EXPECTED = {
    ("file.vcs-dir", "package/.git"),
    ("file.npmrc", "package/.npmrc"),
    ("file.env", "package/.env"),
    ("file.env", "package/.env.bak"),
    ("file.env", "package/vendor/bundle.tgz!/package/.env"),
    ("file.database-dump", "package/db/dump.sql.gz"),
    ("file.ai-local-settings", "package/.claude/settings.local.json"),
    ("file.ai-assistant-dir", "package/.claude"),
    ("file.ai-instructions", "package/CLAUDE.md"),
    ("file.prompt-dir", "package/prompts"),
    ("file.os-metadata", "package/.DS_Store"),
    ("file.backup", "package/config.json.bak"),
}


@pytest.mark.parametrize("fmt", FORMATS)
def test_fixture_tree_in_every_format(fmt: str, tmp_path: Path) -> None:
    findings = scan(pack(TREE, fmt, tmp_path))
    assert {(f.rule, f.path) for f in findings} == EXPECTED
    assert len(findings) == len(EXPECTED), "one finding per file or folder"
    git = next(f for f in findings if f.rule == "file.vcs-dir")
    assert git.severity is Severity.CRITICAL
    assert git.evidence == {"files": 3, "sample": ["HEAD", "config", "objects/ab/cdef"]}
    claude = next(f for f in findings if f.rule == "file.ai-assistant-dir")
    assert claude.evidence["files"] == 2
    for finding in findings:  # secret values never reach what users see
        assert NPM_TOKEN.decode() not in repr(finding.to_dict())
        assert "q8Zt3vLw9RkP2mXa7NcB" not in repr(finding.to_dict())


def test_env_template_names_variables_not_values(tmp_path: Path) -> None:
    env = b"PORT=3000\nSTRIPE_SECRET=q8Zt3vLw9RkP2mXa7NcB\nAPI_KEY=your-key\n"
    tree = {"package/.env.example": env}
    [finding] = scan(pack(tree, "tgz", tmp_path))
    assert finding.rule == "file.env-template"
    assert finding.evidence["variables"] == ["STRIPE_SECRET"]
    assert "q8Zt3vLw9RkP2mXa7NcB" not in repr(finding.to_dict())


def test_empty_vcs_folder_from_a_directory_entry(tmp_path: Path) -> None:
    root = pack({"package/index.js": b"1\n"}, "dir", tmp_path)
    (root / "package" / ".hg").mkdir()
    found = [(f.rule, f.path, f.evidence["files"]) for f in scan(root)]
    assert found == [("file.vcs-dir", "package/.hg", 0)]


def test_fixture_repositories_under_tests_are_low(tmp_path: Path) -> None:
    tree = {"package/tests/fixtures/repo/.git/HEAD": b"ref: refs/heads/main\n",
            "package/tests/.env": b"API_KEY=q8Zt3vLw9RkP2mXa7NcB\n"}
    findings = scan(pack(tree, "tgz", tmp_path))
    found = {(f.rule, f.path): (f.severity, f.evidence.get("in_tests")) for f in findings}
    assert found == {
        ("file.vcs-dir", "package/tests/fixtures/repo/.git"): (Severity.LOW, True),
        # integration tests often read real keys from tests/.env: no discount for env files
        ("file.env", "package/tests/.env"): (Severity.HIGH, None),
    }


def test_files_inside_a_source_map_are_left_to_the_sourcemap_detector(tmp_path: Path) -> None:
    embedded = source_map({
        "../.env": "API_KEY=q8Zt3vLw9RkP2mXa7NcB\n", "../.git/config": "[core]\n",
        "../CLAUDE.md": "# notes\n", "../src/main.ts": "export {};\n",
    })
    assert scan(pack({"package/cli.js.map": embedded}, "tgz", tmp_path)) == []


def test_clean_package_shapes_report_nothing(tmp_path: Path) -> None:
    benign = [  # names close to rules, all fine to ship
        "package/package.json", "package/README.md", "package/LICENSE", "package/bun.lock",
        "package/yarn.lock", "package/pnpm-lock.yaml", "package/index.d.ts", "package/src/env.ts",
        "package/lib/core.js", "package/lib/core/index.js", "package/lib/history.js",
        "package/lib/prompts/confirm.js", "package/docs/agents.md", "package/docs/claude.md",
        "package/keys.js", "package/.github/workflows/ci.yml", "package/.gitignore",
        "package/.npmignore", "package/migrations/0001_init.sql", "requests/__init__.py",
        "requests/certs.py", "requests-2.32.3.dist-info/RECORD", "package/vendor/ripgrep/COPYING",
    ]
    tree = dict.fromkeys(benign, b"x\n")
    tree["certifi/cacert.pem"] = CERTIFICATE * 50
    elf_executable = b"\x7fELF\x02\x01\x01\x00" + bytes(8) + b"\x02\x00"  # not a core
    tree["package/vendor/ripgrep/x64-linux/rg"] = tree["package/bin/core"] = elf_executable
    assert scan(pack(tree, "zip", tmp_path)) == []


@pytest.mark.skipif(not CLAUDE_CODE_2_1_87.exists(), reason="2.1.87 tarball not in the local cache")
def test_claude_code_2_1_87_is_clean() -> None:
    findings = scan(CLAUDE_CODE_2_1_87)
    assert [f for f in findings if f.severity >= Severity.MEDIUM] == []
