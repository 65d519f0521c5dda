"""Weaker evidence that counts only in a bundle: part of a large original, and an
original found by its own string literals next to other private code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from builders import write_tree
from hunt.fixtures import BILLING_TS, UNRELATED_JS, bundle, minify
from seawall.cli import main

pytest.importorskip("tree_sitter")
pytest.importorskip("numpy")

PADDING = "\n".join(
    f"export function settle{i}(acct: Account): number {{\n"
    f"  return acct.opening{i} + acct.credits{i} * acct.rate{i} - acct.fees{i}.reduce("
    f"(s, f) => s + f.amount{i}, 0) / acct.periods{i}.length;\n}}\n" for i in range(12))
"""Private code of the large original that the bundle leaves out (unused exports)."""

HELP_TS = '''\
const INTRO = "zephyrine keeps your ledgers balanced across every region you trade in";
const OUTRO = "run zephyrine doctor when an invoice total looks wrong or a tax rate is missing";
export function helpText(verbose: boolean): string {
  return verbose ? INTRO + "\\n" + OUTRO : INTRO;
}
'''


def hunt(root: Path, leak: dict[str, str], private: dict[str, str]) -> list[tuple[Any, ...]]:
    write_tree({k: v.encode() for k, v in private.items()}, root / "private")
    index = root / "idx"
    runner = CliRunner()
    assert runner.invoke(main, ["index", "add", str(root / "private"), "--index",
                                str(index)]).exit_code == 0
    write_tree({k: v.encode() for k, v in leak.items()}, root / "leak")
    result = runner.invoke(main, ["hunt", str(root / "leak"), "--index", str(index),
                                  "--format", "json"], catch_exceptions=False)
    doc = json.loads(result.output)
    return sorted((f["path"], f["evidence"]["original"], f["evidence"]["kind"],
                   f["evidence"]["channels"]) for f in doc["findings"]
                  if f["rule"] == "leak.code-copy")


def test_a_few_percent_of_a_large_original_in_a_bundle_is_found(tmp_path: Path) -> None:
    """The bundle emits one method of a large file (about 6% of its k-grams, below the
    20% a whole original needs); its property names and string words make it specific."""
    render = BILLING_TS.split("  render(region: string): string {", 1)[1].rsplit("}", 1)[0]
    method = ("function zR(c){const e=this.subtotal()+this.taxFor(c);"
              "const label=`Zephyrine invoice in ${this.currency} for ${c}`;"
              "this.ledger.record({label,gross:e,lines:this.lines.length});"
              'return label+": "+(e/100).toFixed(2)}')
    assert "toFixed(2)" in render
    private = {"src/billing.ts": BILLING_TS + PADDING}
    leak = {"dist/app.js": minify(UNRELATED_JS.replace("export ", "")) + ";" + method + "\n"}
    assert hunt(tmp_path / "part", leak, private) == [
        ("dist/app.js", "src/billing.ts", "transpiled", ["tokens"])]
    # the same passage inside unrelated code, without its property names, is not enough
    generic = method.replace(".subtotal", ".a").replace(".taxFor", ".b").replace(
        "Zephyrine invoice in", "x").replace(".ledger.record", ".c.d").replace(".toFixed", ".e")
    assert hunt(tmp_path / "generic", {"dist/app.js": generic}, private) == []


def test_an_original_is_found_by_its_strings_in_a_bundle(tmp_path: Path) -> None:
    """The bundler inlined the constants: no 14-token run survives, the sentences do."""
    inlined = ('function h(v){return v?"zephyrine keeps your ledgers balanced across every '
               'region you trade in\\nrun zephyrine doctor when an invoice total looks wrong '
               'or a tax rate is missing":"zephyrine keeps your ledgers balanced across '
               'every region you trade in"}')
    private = {"src/billing.ts": BILLING_TS, "src/help.ts": HELP_TS}
    found = hunt(tmp_path / "bundle", {"dist/app.js": bundle().rstrip("\n") + ";" + inlined},
                 private)
    assert found == [("dist/app.js", "src/billing.ts", "transpiled", ["tokens"]),
                     ("dist/app.js", "src/help.ts", "string-only", ["strings"])]
    # a sentence alone (no private code around it) is not a copy: a port needs more
    alone = 'console.log("zephyrine keeps your ledgers balanced across every region you trade in")'
    assert hunt(tmp_path / "alone", {"dist/help.js": alone}, private) == []
    # ...and next to a file's own copy, the strings of its sibling are explained by it
    copy = BILLING_TS + "\n" + inlined + "\n"
    assert hunt(tmp_path / "copy", {"lib/billing.ts": copy}, private) == [
        ("lib/billing.ts", "src/billing.ts", "verbatim", ["tokens"])]
