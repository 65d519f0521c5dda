"""The normalised token stream: the same for a file before and after the changes a leak
makes to it, different for different code."""

from __future__ import annotations

import pytest

pytest.importorskip("tree_sitter")

from seawall.hunt.lexer import language_for, tokenize  # noqa: E402


def norm(source: str, language: str) -> list[str]:
    return tokenize(source.encode(), language).norm


def test_types_imports_and_formatting_vanish() -> None:
    ts = """import { Thing } from "./thing";
export interface Shape { area(): number }
export function area<T extends Shape>(items: T[], scale: number = 2): number {
  const total = items.reduce((sum: number, s: T) => sum + s.area(), 0) as number;
  return total * scale!;
}
"""
    js = "function q(a,b=2){let c=a.reduce((d,e)=>d+e.area(),0);return c*b}"
    assert norm(ts, "typescript") == norm(js, "javascript") == [
        "function", "I", "I", "I", "N", "I", "I", ".reduce", "I", "I", "I", "I", ".area",
        "N", "return", "I", "I"]


def test_minifier_rewrites_are_absorbed() -> None:
    """``undefined``/``void 0``, ``true``/``!0``, shorthand/explicit keys, quote styles."""
    a = "const o = { width, height: h, label: 'it is done' }; f(undefined, true);"
    b = 'var o={width:w,height:h,label:"it is done"};f(void 0,!0)'
    assert norm(a, "javascript") == norm(b, "javascript") == [
        "I", ".width", "I", ".height", "I", ".label", "it", "is", "done", "I", "N", "N"]


def test_jsx_reads_as_the_call_it_compiles_to() -> None:
    tsx = '<Panel title="Usage"><b>{count}</b> calls</Panel>'
    js = ('R.default.createElement(P, {title: "Usage"}, R.default.createElement("b", null, c),'
          ' " calls")')
    assert norm(tsx, "tsx") == norm(js, "javascript") == [
        "I", ".title", "usage", "b", "I", "calls"]


def test_regex_and_template_literals_keep_the_lexer_in_sync() -> None:
    src = "x = a / b / c; y = /[/`]+/g.test(`v ${n / 2} /* not a comment */`); z = '//'"
    assert norm(src, "javascript") == [
        "I", "I", "I", "I", "I", "/[/`]+/g", ".test", "v", "I", "N", "not", "a", "comment",
        "I"]


def test_python_attributes_and_keywords_are_kept() -> None:
    src = 'def f(x: int) -> str:\n    return x.name.upper(key=1) or None  # note\n'
    assert norm(src, "python") == [
        "def", "I", "I", "return", "I", ".name", ".upper", ".key", "N", "or", "N"]


def test_identifier_names_survive_in_the_exact_stream() -> None:
    tokens = tokenize(b"const total = price * qty;", "javascript")
    assert tokens.norm == ["I", "I", "I"]
    assert tokens.exact == ["total", "price", "qty"]


def test_language_by_file_name() -> None:
    assert language_for("src/a.tsx") == "tsx"
    assert language_for("pkg/index.d.ts") is None  # declarations only
    assert language_for("lib/x.mjs") == "javascript"
    assert language_for("app/main.py") == "python"
    assert language_for("README.md") is None


def test_what_a_bundler_rewrites_reads_the_same() -> None:
    """Measured on a real bun bundle: private ``#names`` are mangled, `new` before Error is
    dropped, and a named import of React (CommonJS) becomes a member of its module object."""
    tsx = """import { useState as useLocal, useEffect } from 'react'
import { z } from 'zod'
import { helper } from './helper'
class Store {
  #items = new Map()
  add(v: string) { if (!v) throw new Error('empty'); this.#items.set(v, z.string()) }
}
export function useStore() {
  const [store] = useLocal<Store | null>(null)
  useEffect(() => helper(store), [])
}
"""
    js = ("class q{#a=new Map;add(v){if(!v)throw Error(`empty`);this.#a.set(v,K.string())}}"
          "function Y(){let[s]=R.useState(null);R.useEffect(()=>_(s),[])}")
    assert norm(tsx, "tsx") == norm(js, "javascript") == [
        "class", "I", ".#", "new", "I", ".add", "I", "if", "I", "throw", "I", "empty",
        "this", ".#", ".set", "I", "I", ".string", "function", "I", "I", "I", ".useState",
        "null", "I", ".useEffect", "I", "I"]
    exact = tokenize(tsx.encode(), "tsx").exact
    assert ".#items" in exact and "useLocal" in exact  # names stay in the exact stream


def test_only_calls_of_a_react_import_are_rewritten() -> None:
    """A minifier reuses a mangled import name for inner locals, and relative or ESM
    imports are hoisted into plain names: neither gains a member token."""
    js = ('import { useState as o } from "react"; import { a } from "./a";'
          "function s(){const [x] = o(1); a(x); const f = (o) => o + 1}")
    assert norm(js, "javascript") == [
        "function", "I", "I", "I", ".useState", "N", "I", "I", "I", "I", "I", "N"]
