"""A small private codebase, and the copies a leak makes of it, written out in code.

The transformations are the test's own (plain string edits), not seawall's, so a test
checks seawall against an independent idea of "the same code".
"""

from __future__ import annotations

import re
from pathlib import Path

BILLING_TS = '''\
import { Ledger } from "./book";

export interface InvoiceLine {
  sku: string;
  quantity: number;
  unitCents: number;
}

export type Currency = "EUR" | "USD";

export class InvoiceBuilder<T extends InvoiceLine> {
  private lines: T[] = [];
  private readonly currency: Currency;

  constructor(currency: Currency, private ledger: Ledger) {
    this.currency = currency;
  }

  add(line: T): this {
    if (line.quantity <= 0) {
      throw new Error("quantity must be positive for sku " + line.sku);
    }
    this.lines.push(line);
    return this;
  }

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

  render(region: string): string {
    const gross = this.subtotal() + this.taxFor(region);
    const label = `Zephyrine invoice in ${this.currency} for ${region}`;
    this.ledger.record({ label, gross, lines: this.lines.length });
    return label + ": " + (gross / 100).toFixed(2);
  }
}
'''
"""46 lines; lines 1-10 are an import and types, which compilers remove and the lexer
drops, so its tokens run from line 11 (``class``) to line 44 (``toFixed(2)``)."""

BILLING_TS_TYPES = [
    ("export interface InvoiceLine {\n  sku: string;\n  quantity: number;\n  unitCents: number;\n}\n",
     ""),
    ('export type Currency = "EUR" | "USD";\n', ""),
    ("<T extends InvoiceLine>", ""), (": T[]", ""), (": Currency", ""), (": Ledger", ""),
    (": T", ""), ("): this", ")"), ("): number", ")"), ("): string", ")"), (": number", ""),
    (": string", ""), ("private readonly ", ""), ("private ", ""),
    ('import { Ledger } from "./book";\n', ""),
]
"""What a TypeScript compiler removes from BILLING_TS, as plain text edits."""

RETRY_JS = '''\
"use strict";

const DEFAULT_ATTEMPTS = 5;

function sleepFor(milliseconds) {
  return new Promise((resolve) => setTimeout(resolve, milliseconds));
}

async function withRetry(operation, options) {
  const attempts = options && options.attempts ? options.attempts : DEFAULT_ATTEMPTS;
  let lastError = null;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    try {
      return await operation(attempt);
    } catch (error) {
      lastError = error;
      if (error && error.code === "EQUOTA_KRAKEN") {
        break;
      }
      const backoff = Math.min(30000, 250 * 2 ** attempt);
      await sleepFor(backoff + Math.floor(Math.random() * 100));
    }
  }
  throw new Error("gave up after " + attempts + " tries: " + lastError);
}

module.exports = { withRetry, sleepFor };
'''

TOKENS_PY = '''\
"""Session tokens for the zephyrine control plane."""

import hashlib
import hmac
import time


class TokenMinter:
    def __init__(self, secret_key, lifetime=3600):
        self.secret_key = secret_key
        self.lifetime = lifetime

    def mint(self, subject, scopes):
        issued = int(time.time())
        payload = f"{subject}|{','.join(sorted(scopes))}|{issued + self.lifetime}"
        signature = hmac.new(self.secret_key, payload.encode(), hashlib.sha256).hexdigest()
        return payload + "|" + signature

    def verify(self, token, now=None):
        parts = token.split("|")
        if len(parts) != 4:
            raise ValueError("malformed zephyrine token")
        payload = "|".join(parts[:3])
        expected = hmac.new(self.secret_key, payload.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, parts[3]):
            raise ValueError("bad zephyrine signature")
        expires = int(parts[2])
        if (now or time.time()) > expires:
            raise ValueError("expired zephyrine token")
        return parts[0], parts[1].split(",")
'''

CONSTANTS_TS = '''\
export const REGION_CODES = ["DE", "FR", "NL"];
export const SUPPORT_MAILBOX = "quill-ops@zephyrine.example";
export const MAX_BATCH = 250;
'''
"""Too small for k-grams (11 tokens): only the whole-file channel can find it."""

UNRELATED_JS = '''\
function quicksort(items, compare) {
  if (items.length < 2) {
    return items.slice();
  }
  const pivot = items[items.length >> 1];
  const left = items.filter((x) => compare(x, pivot) < 0);
  const middle = items.filter((x) => compare(x, pivot) === 0);
  const right = items.filter((x) => compare(x, pivot) > 0);
  return quicksort(left, compare).concat(middle, quicksort(right, compare));
}

export function byName(a, b) {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

export default quicksort;
'''

PRIVATE = {
    "src/billing/invoice.ts": BILLING_TS,
    "src/net/retry.js": RETRY_JS,
    "server/tokens.py": TOKENS_PY,
    "src/constants.ts": CONSTANTS_TS,
}


def rename(source: str, names: dict[str, str]) -> str:
    """Rename whole-word identifiers (what a refactoring tool or a minifier does)."""
    # not after a dot: property names survive renaming and mangling
    pattern = re.compile(r"(?<!\.)\b(" + "|".join(map(re.escape, names)) + r")\b")
    return pattern.sub(lambda m: names[m.group(1)], source)


def reformat(source: str) -> str:
    """Another code style: tabs, blank lines between statements."""
    out = []
    for line in source.splitlines():
        stripped = line.lstrip(" ")
        depth = (len(line) - len(stripped)) // 2
        out.append("\t" * depth + stripped)
        if stripped.endswith(";"):
            out.append("")
    return "\n".join(out) + "\n"


def strip_types(source: str) -> str:
    for old, new in BILLING_TS_TYPES:
        assert old in source, old
        source = source.replace(old, new)
    return source.replace("export class", "class")


def minify(source: str) -> str:
    """All on one line, indentation and line breaks gone."""
    lines = [line.strip() for line in source.splitlines()]
    return " ".join(line for line in lines if line)


BILLING_RENAMES = {"lines": "lines", "line": "ln", "total": "acc", "region": "rg",
                   "rate": "pct", "gross": "g", "label": "lbl", "currency": "cur",
                   "ledger": "led"}
"""Locals and parameters only: property names survive a rename (``this.lines`` stays)."""

MANGLE_BILLING = {"line": "a", "total": "b", "region": "c", "rate": "d", "gross": "e",
                  "InvoiceBuilder": "f"}
MANGLE_RETRY = {"DEFAULT_ATTEMPTS": "q", "sleepFor": "r", "milliseconds": "s", "resolve": "t",
                "withRetry": "u", "operation": "v", "options": "w", "attempts": "x",
                "lastError": "y", "attempt": "z", "error": "A", "backoff": "B"}


def billing_renamed() -> str:
    """Locals renamed, then reformatted."""
    names = {k: v for k, v in BILLING_RENAMES.items() if k != "lines"}
    text = rename(BILLING_TS, names)
    # `this.ln` must stay `this.lines` / `line.sku` keeps `.sku`: restore property names
    text = text.replace("{ lbl, g,", "{ label: lbl, gross: g,")
    text = text.replace("readonly cur:", "readonly currency:").replace("private led:", "private ledger:")
    return reformat(text)


def bundle() -> str:
    """A minified bundle: unrelated code around the transpiled, mangled billing module
    and the mangled retry helper."""
    billing_js = rename(strip_types(BILLING_TS), MANGLE_BILLING)
    billing_js = billing_js.replace("{ label, e,", "{ label, gross: e,")
    retry = rename(RETRY_JS, MANGLE_RETRY).replace('"use strict";', "")
    retry = retry.replace("module.exports = { u, r };", "var C = { withRetry: u, sleepFor: r };")
    unrelated = UNRELATED_JS.replace("export default quicksort;\n", "").replace("export ", "")
    return ";".join([minify(unrelated), minify(billing_js),
                     minify(retry)]) + "\n"


def tokens_renamed() -> str:
    return rename(TOKENS_PY, {"subject": "who", "scopes": "grants", "issued": "t0",
                              "payload": "body", "signature": "sig", "parts": "fields",
                              "expected": "want", "expires": "deadline", "token": "tok"})


def index_tree(tree: dict[str, str], folder: Path, index: Path, label: str | None = None
               ) -> Path:
    """Write ``tree`` into ``folder`` and index it with ``seawall index add`` (the CLI, as a
    user does); the index path is returned."""
    from click.testing import CliRunner

    from builders import write_tree
    from seawall.cli import main

    write_tree({k: v.encode() for k, v in tree.items()}, folder)
    args = ["index", "add", str(folder), "--index", str(index)]
    result = CliRunner().invoke(main, args + (["--label", label] if label else []),
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return index
