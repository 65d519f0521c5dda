"""End to end: index a private project, hunt its copies in real artifacts built here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from builders import compress, tar_bytes, write_tree, zip_bytes
from hunt.fixtures import (
    index_tree,
    BILLING_TS,
    CONSTANTS_TS,
    PRIVATE,
    TOKENS_PY,
    UNRELATED_JS,
    billing_renamed,
    bundle,
    tokens_renamed,
)
from seawall.cli import main

pytest.importorskip("tree_sitter")
pytest.importorskip("numpy")


def run(*args: str) -> Any:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hunt")
    index = index_tree(PRIVATE, root / "private", root / "private.idx", "zephyrine")
    leak = {
        "package/lib/invoice.ts": BILLING_TS.encode(),
        "package/lib/invoice-renamed.ts": billing_renamed().encode(),
        "package/dist/bundle.js": bundle().encode(),
        "package/lib/sort.js": UNRELATED_JS.encode(),
        "package/lib/consts.ts": CONSTANTS_TS.replace('"', "'").encode(),
    }
    (root / "leak.tgz").write_bytes(compress(tar_bytes(leak), "gz"))
    (root / "leak.whl").write_bytes(zip_bytes({"zeph/auth.py": tokens_renamed().encode(),
                                               "zeph/__init__.py": b""}))
    (root / "control.tgz").write_bytes(compress(tar_bytes({
        "package/index.js": UNRELATED_JS.encode(),
        "package/retry.js": b"export async function retry(f) { for (;;) { try { return await f(); }"
                            b" catch (e) { if (e.fatal) throw e; } } }\n",
    }), "gz"))
    return {"root": root, "index": index}


def hunt_json(*args: str) -> tuple[int, dict[str, Any]]:
    result = run("hunt", *args, "--format", "json")
    return result.exit_code, json.loads(result.output)


def copies(doc: dict[str, Any]) -> list[tuple[Any, ...]]:
    out = []
    for f in doc["findings"]:
        if f["rule"] != "leak.code-copy":
            continue
        e = f["evidence"]
        out.append((f["path"], e["original"], e["label"], e["kind"], e["original_lines"],
                    e["suspect_lines"]))
    return sorted(out)


def test_finds_each_kind_of_copy_in_a_tarball(built: dict[str, Path]) -> None:
    code, doc = hunt_json(str(built["root"] / "leak.tgz"), "--index", str(built["index"]))
    assert code == 1
    assert copies(doc) == [
        # the original's tokens run from line 11 (imports and types never count) to 44
        ("package/dist/bundle.js", "src/billing/invoice.ts", "zephyrine", "transpiled",
         [[11, 44]], [[1, 1]]),
        ("package/dist/bundle.js", "src/net/retry.js", "zephyrine", "transpiled",
         [[3, 27]], [[1, 1]]),
        ("package/lib/consts.ts", "src/constants.ts", "zephyrine", "verbatim",
         [[1, 3]], [[1, 3]]),
        # reformatted: the class starts on line 16 of the copy, and ends on line 63
        ("package/lib/invoice-renamed.ts", "src/billing/invoice.ts", "zephyrine", "renamed",
         [[11, 44]], [[16, 63]]),
        ("package/lib/invoice.ts", "src/billing/invoice.ts", "zephyrine", "verbatim",
         [[11, 44]], [[11, 44]]),
    ]
    by_path = {(f["path"], f["evidence"].get("original")): f for f in doc["findings"]}
    verbatim = by_path["package/lib/invoice.ts", "src/billing/invoice.ts"]["evidence"]
    assert verbatim["coverage_original"] == 1.0 and verbatim["coverage_suspect"] == 1.0
    assert verbatim["matched"] == 84  # `new` before `Error` is not a token (minifiers drop it)
    bundled = by_path["package/dist/bundle.js", "src/billing/invoice.ts"]["evidence"]
    assert bundled["coverage_original"] == 1.0  # all of it, though transpiled and mangled
    assert bundled["coverage_suspect"] < 0.5  # most of the bundle is something else
    small = by_path["package/lib/consts.ts", "src/constants.ts"]["evidence"]
    assert small["channels"] == ["whole-file"] and small["matched"] == 0
    [artifact] = [f for f in doc["findings"] if f["rule"] == "leak.code-copy-artifact"]
    assert artifact["evidence"]["originals"] == 3
    assert artifact["evidence"]["labels"] == {"zephyrine": 3}
    assert all(f["path"] != "package/lib/sort.js" for f in doc["findings"])


def test_finds_a_renamed_python_module_in_a_wheel(built: dict[str, Path]) -> None:
    code, doc = hunt_json(str(built["root"] / "leak.whl"), "--index", str(built["index"]))
    assert code == 1
    # the rename also hit words inside two string literals ("token", "signature"): the
    # k-grams over them differ, and the one k-gram left between them (lines 26-29) is a
    # lone hit, which never counts, so the matched passage ends on line 26
    assert copies(doc) == [("zeph/auth.py", "server/tokens.py", "zephyrine", "renamed",
                            [[1, 26]], [[1, 26]])]


def test_unrelated_artifact_is_clean(built: dict[str, Path]) -> None:
    code, doc = hunt_json(str(built["root"] / "control.tgz"), "--index", str(built["index"]))
    assert code == 0
    assert doc["findings"] == []


def test_from_list_in_parallel_matches_the_serial_run(built: dict[str, Path]) -> None:
    root = built["root"]
    listing = root / "targets.txt"
    names = ["leak.tgz", "control.tgz", "leak.whl"]
    listing.write_text("# artifacts to hunt\n" + "".join(f"{root / n}\n" for n in names))
    code, parallel = hunt_json("--from-list", str(listing), "--jobs", "2",
                               "--index", str(built["index"]))
    assert code == 1
    _, serial = hunt_json(*(str(root / n) for n in names), "--index", str(built["index"]))
    assert [t["target"] for t in parallel["targets"]] == [str(root / n) for n in names]
    assert copies(parallel) == copies(serial)
    assert len(copies(parallel)) == 6


def test_scan_runs_the_detector_only_with_an_index(built: dict[str, Path]) -> None:
    """``scan`` with ``[detectors.codecopy] index`` finds the copies; without it the
    detector costs nothing: not even the hunt modules are imported."""
    config = built["root"] / "seawall.toml"
    config.write_text(f'[detectors.codecopy]\nindex = "{built["index"]}"\n')
    result = run("scan", str(built["root"] / "leak.whl"), "--config", str(config),
                 "--format", "json")
    doc = json.loads(result.output)
    assert [f["evidence"]["original"] for f in doc["findings"]
            if f["rule"] == "leak.code-copy"] == ["server/tokens.py"]
    probe = (
        "import sys\n"
        "from seawall.engine import Engine, Target\n"
        "from pathlib import Path\n"
        f"r = Engine().scan_target(Target('t', Path({str(built['root'] / 'leak.tgz')!r})))\n"
        "assert not [f for f in r.findings if f.rule.startswith('leak.code-copy')]\n"
        "print(sorted(m for m in sys.modules if m.startswith(('seawall.hunt', 'tree_sitter'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONPATH": ""})
    assert out.stdout.strip() == "[]"


PROMPT_TS = '''export const REVIEW_PROMPT = `You are the release warden for the Zephyrine
platform. Before any package ships, list every file that embeds credentials, every
source map that carries original code, and every model checkpoint larger than the
agreed budget, then explain in two sentences why each one must be removed.`;

export function reviewPrompt(extra: string): string {
  return REVIEW_PROMPT + "\\n" + extra;
}
'''

PROMPT_PY = '''REVIEW_PROMPT = (
    "You are the release warden for the Zephyrine platform. Before any package ships, "
    "list every file that embeds credentials, every source map that carries original "
    "code, and every model checkpoint larger than the agreed budget, then explain in "
    "two sentences why each one must be removed."
)


def review_prompt(extra):
    return REVIEW_PROMPT + "\\n" + extra
'''


def test_a_port_to_another_language_is_found_by_its_strings(tmp_path: Path) -> None:
    write_tree({"src/prompts.ts": PROMPT_TS.encode()}, tmp_path / "private")
    index = tmp_path / "idx"
    assert run("index", "add", str(tmp_path / "private"), "--index", str(index)).exit_code == 0
    write_tree({"warden/prompts.py": PROMPT_PY.encode(),
                "warden/other.py": TOKENS_PY.replace("zephyrine", "other").encode()},
               tmp_path / "port")
    code, doc = hunt_json(str(tmp_path / "port"), "--index", str(index))
    assert code == 1
    [finding] = [f for f in doc["findings"] if f["rule"] == "leak.code-copy"]
    assert finding["path"] == "warden/prompts.py"
    assert finding["severity"] == "medium"
    evidence = finding["evidence"]
    assert evidence["kind"] == "string-only" and evidence["original"] == "src/prompts.ts"
    # 46 words: 39 shingles of 8 (they run across the port's four literals); the token
    # channel matches too, as the words are most of both token streams, and its k-grams
    # start at the name assigned on line 1 of each
    assert evidence["string_shingles"] == 39
    assert evidence["channels"] == ["tokens", "strings"]
    assert evidence["original_lines"] == [[1, 4]] and evidence["suspect_lines"] == [[1, 5]]


def test_hostile_members_cost_no_findings_and_no_errors(built: dict[str, Path]) -> None:
    """Empty, invalid UTF-8, noise without NULs, unbalanced nesting and a 2 MB single line
    of minified code: each is read, none is a copy, none breaks the scan."""
    import random

    rng = random.Random(7)
    noise = bytes(rng.randrange(1, 256) for _ in range(64 * 1024))
    line = ";".join(f"var a{i}=function(b){{return b.k{i % 97}+{i}}}" for i in range(60000))
    tree = {
        "package/empty.js": b"",
        "package/bad.ts": b"const a = '\xff\xfe'; \xc3( export {",
        "package/noise.js": noise,
        "package/nested.py": b"x = " + b"(" * 50000 + b"1" + b")" * 50000 + b"\n",
        "package/min.js": line.encode(),
    }
    target = built["root"] / "hostile.tgz"
    target.write_bytes(compress(tar_bytes(tree), "gz"))
    code, doc = hunt_json(str(target), "--index", str(built["index"]))
    assert code == 0, doc
    assert doc["findings"] == [] and doc["targets"][0]["error"] is None
    assert doc["targets"][0]["files"] == 5


QUOTE_TS = '''export class QuoteBuilder {
  private lines: Array<{ quantity: number; unitCents: number }> = [];

  subtotal(): number {
    let total: number = 0;
    for (const line of this.lines) {
      total += line.quantity * line.unitCents;
    }
    return total;
  }

  taxFor(region: string): number {
    const rate = region === "DE" ? 19 : region === "FR" ? 20 : 0;
    return Math.round((this.subtotal() * rate) / 100);
  }

  validUntil(days: number): Date {
    const expiry = new Date(Date.now() + days * 86400000);
    expiry.setUTCHours(23, 59, 59, 0);
    return expiry;
  }

  describe(customer: string): string {
    return `Quote for ${customer}: ${this.lines.length} lines, valid ${this.validUntil(30).toISOString()}`;
  }
}
'''
"""A sibling of BILLING_TS: two of its methods are the same code."""


def test_a_copy_does_not_also_report_the_originals_siblings(tmp_path: Path) -> None:
    write_tree({"src/invoice.ts": BILLING_TS.encode(), "src/quote.ts": QUOTE_TS.encode()},
               tmp_path / "private")
    index = tmp_path / "idx"
    assert run("index", "add", str(tmp_path / "private"), "--index", str(index)).exit_code == 0
    both = BILLING_TS + "\n" + QUOTE_TS.split("  validUntil", 1)[1].join(["class Extra {\n  validUntil", ""])
    write_tree({"copy.ts": BILLING_TS.encode(), "both.ts": both.encode()}, tmp_path / "leak")
    code, doc = hunt_json(str(tmp_path / "leak"), "--index", str(index))
    found = sorted((f["path"], f["evidence"]["original"]) for f in doc["findings"]
                   if f["rule"] == "leak.code-copy")
    # copy.ts shares subtotal() and taxFor() with quote.ts, but those are explained by
    # invoice.ts; both.ts also holds quote.ts's own methods, so it holds both originals
    assert found == [("both.ts", "src/invoice.ts"), ("both.ts", "src/quote.ts"),
                     ("copy.ts", "src/invoice.ts")]


def test_type_only_files_are_found_by_their_text(tmp_path: Path) -> None:
    """A declarations-only file has no code tokens; a verbatim (or re-indented) copy is
    still found by the hash of its text without whitespace. A short one never is."""
    types = ("export interface LedgerEntry {\n  label: string;\n  gross: number;\n"
             "  lines: number;\n}\n\nexport type Region = 'DE' | 'FR' | 'NL';\n")
    write_tree({"src/types.ts": types.encode(), "src/tiny.ts": b"export type Id = string;\n"},
               tmp_path / "private")
    index = tmp_path / "idx"
    assert run("index", "add", str(tmp_path / "private"), "--index", str(index)).exit_code == 0
    write_tree({"a/types.ts": types.replace("  ", "    ").encode(),
                "a/id.ts": b"export type Id = string;\n",
                "a/other.ts": types.replace("LedgerEntry", "Entry").encode()}, tmp_path / "leak")
    code, doc = hunt_json(str(tmp_path / "leak"), "--index", str(index))
    assert [(f["path"], f["evidence"]["original"], f["evidence"]["kind"],
             f["evidence"]["channels"], f["evidence"]["original_lines"])
            for f in doc["findings"] if f["rule"] == "leak.code-copy"] == [
        ("a/types.ts", "src/types.ts", "verbatim", ["file-text"], [[1, 7]])]
