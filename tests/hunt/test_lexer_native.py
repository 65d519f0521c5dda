"""The token streams of Go, Rust, Java, C and C++: what each keeps, what vanishes, and
that renaming locals and restyling a file leave the normalised stream as it was."""

from __future__ import annotations

import pytest

pytest.importorskip("tree_sitter")

from hunt.native_sources import (  # noqa: E402
    CONFIG_JAVA,
    CONFIG_JAVA_RENAMES,
    FRAME_C,
    FRAME_C_RENAMES,
    LEDGER_CPP,
    LEDGER_CPP_RENAMES,
    LIMITER_GO,
    LIMITER_GO_RENAMES,
    RING_RS,
    RING_RS_RENAMES,
    renamed,
)
from seawall.hunt.lexer import FAMILY, language_for, tokenize  # noqa: E402


def norm(source: str, language: str) -> list[str]:
    return tokenize(source.encode(), language).norm


def test_go_keeps_selectors_and_drops_package_and_imports() -> None:
    src = '''// Package meter counts calls.
package meter

import "fmt"

/* Hit records n calls. */
func (m *Meter) Hit(name string, n int) bool {
\tif m == nil { return false } // nothing to count
\tm.hits[name] += n
\tfmt.Printf("hit %s now\\n", name, 'x', 2.5)
\treturn m.limit > 0x10 && n <= iota
}
'''
    # Go's grammar has no primitive-type node: `string`, `int`, `bool` are type names (I)
    assert norm(src, "go") == [
        "func", "I", "I", ".Hit", "I", "I", "I", "I", "I",
        "if", "I", "nil", "return", "N",
        "I", ".hits", "I", "I",
        "I", ".Printf", "hit", "s", "now", "I", "N", "N",
        "return", "I", ".limit", "N", "I", "iota"]


def test_rust_keeps_fields_and_path_ends_and_drops_use_lines() -> None:
    src = '''use std::fmt;
extern crate serde;

/// Scales every value.
pub fn scale(v: &mut Vec<u32>, by: u32) -> Option<usize> {
    // a line comment
    let p = Point { x, y: 1.5 };
    let w = Vec::with_capacity(8); /* a block comment */
    self.total += p.x as u32;
    v.push(by * 2);
    println!("scaled {} items", true);
    None
}
'''
    # `let`, `mut`, `as` and punctuation vanish; `{ x }` is `.x I` like `{ x: x }`
    assert norm(src, "rust") == [
        "pub", "fn", "I", "I", "I", "u32", "I", "u32", "I", "usize",
        "I", "I", ".x", "I", ".y", "N",
        "I", "I", ".with_capacity", "N",
        "self", ".total", "I", ".x", "u32",
        "I", ".push", "I", "N",
        "I", "scaled", "items", "N",
        "I"]


def test_java_keeps_called_methods_and_read_fields() -> None:
    src = '''package com.zephyrine.meter;

import java.util.List;

/** Counts hits. */
public class Meter {
    private long hits = 0L;
    // a line comment
    public boolean hit(String name, int n) {
        this.hits += n; /* a block comment */
        System.out.println("hit by " + name);
        return n > 'a' && names.contains(name) || name == null;
    }
}
'''
    # access modifiers vanish (as in TypeScript); a declared method's name is a name (I);
    # `boolean` vanishes too: it is a `boolean_type` node, which Kinds.text does not list,
    # while `int` and `long` are keywords under `integral_type` (reported as a gap)
    assert norm(src, "java") == [
        "class", "I",
        "long", "I", "N",
        "I", "I", "I", "int", "I",
        "this", ".hits", "I",
        "I", ".out", ".println", "hit", "by", "I",
        "return", "I", "N", "I", ".contains", "I", "I", "null_literal"]


def test_c_keeps_fields_and_primitive_types_and_drops_includes() -> None:
    src = '''#include <stdio.h>
#include "meter.h"

/* a block comment */
struct meter { unsigned int hits; char *name; };

int meter_hit(struct meter *m, const char *who) {
    // a line comment
    m->hits += 2;
    printf("hit by %s\\n", who);
    return m->name != 0 && sizeof(*m) > 1.5;
}
'''
    # `const` vanishes, as in JavaScript (adding or dropping it changes no behaviour)
    assert norm(src, "c") == [
        "struct", "I", "unsigned", "int", ".hits", "char", ".name",
        "int", "I", "struct", "I", "I", "char", "I",
        "I", ".hits", "N",
        "I", "hit", "by", "s", "I",
        "return", "I", ".name", "N", "sizeof", "I", "N"]


def test_cpp_keeps_namespaces_and_qualified_names() -> None:
    src = '''#include <string>
// a line comment
namespace zeph {
class Meter {
 public:
  bool hit(const std::string& who) {
    hits_ += 1; /* a block comment */
    long most = std::max(hits_, limit_);
    return this->limit_ > 0 && who != "no one" && most != 'x';
  }
 private:
  long hits_ = 0;
};
}
'''
    # `namespace`, `public:`, `private:` and `const` vanish; a field declared in a class is
    # a member (`.hits_`), the same field used in a method body a name (`I`)
    assert norm(src, "cpp") == [
        ".zeph", "class", "I",
        "bool", ".hit", ".std", "I", "I",
        "I", "N",
        "long", "I", ".std", ".max", "I", "I",
        "return", "this", ".limit_", "N", "I", "no", "one", "I", "N",
        "long", ".hits_", "N"]


def test_identifier_names_survive_in_the_exact_stream() -> None:
    tokens = tokenize(b"func area(w, h int) int { return w * h }", "go")
    assert tokens.norm == ["func", "I", "I", "I", "I", "I", "return", "I", "I"]
    assert tokens.exact == ["func", "area", "w", "h", "int", "int", "return", "w", "h"]
    tokens = tokenize(b"fn area(w: u32, h: u32) -> u32 { w * h }", "rust")
    assert tokens.norm == ["fn", "I", "I", "u32", "I", "u32", "u32", "I", "I"]
    assert tokens.exact == ["fn", "area", "w", "u32", "h", "u32", "u32", "w", "h"]


RENAMED = [
    pytest.param(LIMITER_GO, "go", LIMITER_GO_RENAMES, False, id="go"),
    pytest.param(RING_RS, "rust", RING_RS_RENAMES, True, id="rust"),
    pytest.param(CONFIG_JAVA, "java", CONFIG_JAVA_RENAMES, True, id="java"),
    pytest.param(FRAME_C, "c", FRAME_C_RENAMES, True, id="c"),
    pytest.param(LEDGER_CPP, "cpp", LEDGER_CPP_RENAMES, True, id="cpp"),
]


@pytest.mark.parametrize("source,language,names,allman", RENAMED)
def test_renaming_and_restyling_leave_the_normalised_stream(
        source: str, language: str, names: dict[str, str], allman: bool) -> None:
    copy = renamed(source, names, allman)
    assert copy.count("\n") > source.count("\n") + 10  # restyled: many more lines
    before, after = tokenize(source.encode(), language), tokenize(copy.encode(), language)
    assert not before.errors and not after.errors
    assert after.norm == before.norm
    assert after.exact != before.exact
    changed = {(a, b) for a, b in zip(before.exact, after.exact) if a != b}
    assert changed == set(names.items())  # exactly the renamed names, nothing else


@pytest.mark.parametrize("source,language,expected", [
    ("int f(void) { return p != NULL; }\n", "c", ["int", "I", "void", "return", "I", "NULL"]),
    ("int f(void)\n{\n  return p != NULL;\n}\n", "c",
     ["int", "I", "void", "return", "I", "NULL"]),
    ("int f() { return p != NULL; }\n", "cpp", ["int", "I", "return", "I", "NULL"]),
    ("bool f() { return p != nullptr; }\n", "cpp", ["bool", "I", "return", "I", "nullptr"]),
], ids=["c-NULL", "c-NULL-three-lines", "cpp-NULL", "cpp-nullptr"])
def test_null_is_one_token_the_same_every_time(source: str, language: str,
                                               expected: list[str]) -> None:
    """A `null` node and the `NULL`/`nullptr` word under it start at one byte: one token,
    the word. The lexer once kept whichever capture came first, and tree-sitter returned
    the two in an order that changed from one parse to the next (with memory layout), so
    an index and a hunt could read one file two ways."""
    assert [norm(source, language) for _ in range(20)] == [expected] * 20


def test_a_c_file_reads_the_same_as_cpp() -> None:
    """A C file copied into a C++ project (one family) keeps its stream."""
    assert FAMILY["c"] == FAMILY["cpp"]
    assert norm(FRAME_C, "cpp") == norm(FRAME_C, "c")


def test_language_by_file_name() -> None:
    assert {s: language_for("src/x" + s) for s in (
        ".go", ".rs", ".java", ".c", ".h", ".cc", ".cpp", ".cxx", ".c++", ".hh", ".hpp",
        ".hxx", ".h++", ".ipp", ".tpp")} == {
        ".go": "go", ".rs": "rust", ".java": "java", ".c": "c", ".h": "c",
        ".cc": "cpp", ".cpp": "cpp", ".cxx": "cpp", ".c++": "cpp", ".hh": "cpp",
        ".hpp": "cpp", ".hxx": "cpp", ".h++": "cpp", ".ipp": "cpp", ".tpp": "cpp"}
    assert language_for("Main.JAVA") == "java"  # suffixes are case-blind
    assert language_for("lib/ring.rs.orig") is None
    assert language_for("go.mod") is None and language_for("Cargo.toml") is None
    assert language_for("include/ring") is None


def test_deep_template_nesting_is_refused_before_the_parser_spends_minutes() -> None:
    """tree-sitter-cpp's time grows with about the 2.6th power of nested `<` depth (39 CPU
    s at 10,000 in 30 KB): such a file reads as no tokens, at once."""
    import time

    deep = b"using T = " + b"A<" * 10_000 + b"1" + b">" * 10_000 + b";\n"
    started = time.process_time()
    tokens = tokenize(deep, "cpp")
    assert tokens.norm == [] and tokens.errors
    assert time.process_time() - started < 1.0
    # real code: comparisons in many statements, and a template a few levels deep
    line = ["bool", "I", "int", "I", "int", "I", "return", "I", "I", "I", "N"]
    real = b"bool f(int a, int b) { return a < b && b < 9; }\n" * 400 + \
        b"std::map<int, std::vector<std::pair<int, long>>> m;\n"
    assert tokenize(real, "cpp").norm == line * 400 + [
        ".std", "I", "int", ".std", "I", ".std", "I", "int", "long", "I"]
