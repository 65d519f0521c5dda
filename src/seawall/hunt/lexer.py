"""Turn source into the normalised token stream that fingerprints are made of.

A real parser (tree-sitter) decides what every byte is, so regex literals, nested
template strings and JSX never throw the tokens out of sync, as a regex lexer does on
minified lines. The stream is built to look the same before and after the changes a
copy goes through on its way into a release:

* identifiers become ``I`` (renaming, mangling), property names and keywords are kept
  (minifiers cannot rename them), ``undefined``/``true``/``false``/numbers become ``N``
  (``void 0``, ``!0``);
* TypeScript types are dropped as whole subtrees (what ``tsc``/``esbuild`` remove);
* string literals become one token per word, whatever their quotes or escapes;
* punctuation, comments and declaration keywords (``var/let/const/export/import``...,
  which bundlers hoist and merge) vanish, so reformatting changes nothing;
* object shorthand ``{a, b}`` is expanded to ``.a I .b I`` (minifiers write ``{a:x}``);
* JSX is reduced to what it compiles to: tag, attribute names, values, text.

A second, "exact" stream keeps identifier names: comparing the two tells a verbatim copy
from a renamed one.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable, Iterable

import numpy as np

LANGUAGES = {
    ".ts": "typescript", ".mts": "typescript", ".cts": "typescript",
    ".tsx": "tsx",
    ".js": "javascript", ".mjs": "javascript", ".cjs": "javascript", ".jsx": "javascript",
    ".py": "python", ".pyi": "python",
    ".go": "go",
    ".rs": "rust",
    ".java": "java",
    ".c": "c", ".h": "c",
    ".cc": "cpp", ".cpp": "cpp", ".cxx": "cpp", ".c++": "cpp",
    ".hh": "cpp", ".hpp": "cpp", ".hxx": "cpp", ".h++": "cpp", ".ipp": "cpp", ".tpp": "cpp",
}
"""File suffix -> grammar. JavaScript's grammar parses JSX too; a ``.h`` header is read
as C (tree-sitter recovers locally where a header is really C++)."""

NORMALISER = 4
"""Bump when the token stream changes: every fingerprint changes with it, so an index
made by another normaliser is refused (rebuild it) instead of silently finding nothing.
(Adding a language changes no existing stream, so it needs no bump.) 4: escapes inside a
string fragment (Python's grammar keeps them there) read as spaces, as the other
grammars' fragments end at them."""

FAMILY = {"typescript": "ts", "tsx": "ts", "javascript": "js", "python": "py",
          "go": "go", "rust": "rs", "java": "java", "c": "c", "cpp": "c"}
"""Languages whose files are the same code in another form (TypeScript compiles to
JavaScript; a C file is often copied into a C++ project)."""

_GRAMMARS = {
    "typescript": ("tree_sitter_typescript", "language_typescript"),
    "tsx": ("tree_sitter_typescript", "language_tsx"),
    "javascript": ("tree_sitter_javascript", "language"),
    "python": ("tree_sitter_python", "language"),
    "go": ("tree_sitter_go", "language"),
    "rust": ("tree_sitter_rust", "language"),
    "java": ("tree_sitter_java", "language"),
    "c": ("tree_sitter_c", "language"),
    "cpp": ("tree_sitter_cpp", "language"),
}
"""Grammar -> (PyPI module, function returning the compiled grammar)."""

WORD = re.compile(r"[^\W_]+", re.UNICODE)
_NUL = re.compile("\0")
"""A word of a string literal: letters and digits; quotes, escapes and separators go."""

WEB = frozenset({"typescript", "tsx", "javascript", "python"})
"""The languages a bundler or a compiler rewrites on their way into a release; the
others (Go, Rust, Java, C/C++) leak as source, renamed and reformatted at most."""


@dataclass(frozen=True)
class Kinds:
    """Which node kinds of one grammar become which tokens."""

    ident: tuple[str, ...] = ("identifier", "type_identifier")
    """Names a copier may rename: read as ``I``."""
    prop: tuple[str, ...] = ("property_identifier", "private_property_identifier")
    """Member names, which renaming and minifying leave alone: kept as ``.name``."""
    short: tuple[str, ...] = ("shorthand_property_identifier",
                              "shorthand_property_identifier_pattern")
    frag: tuple[str, ...] = ("string_fragment", "jsx_text", "string_content")
    """The text of string literals: one token per word."""
    num: tuple[str, ...] = ("number", "integer", "float", "true", "false", "undefined",
                            "none")
    """Literals a minifier rewrites (``!0``, ``void 0``): all read as ``N``."""
    literal: tuple[str, ...] = ("null", "this", "super", "ellipsis")
    """Named leaves kept by their kind."""
    text: tuple[str, ...] = ()
    """Named leaves kept by their text (a C ``primitive_type`` is ``int`` or ``char``)."""
    skip: tuple[str, ...] = ()
    """Subtrees that vanish whole: comments, imports, and what a compiler strips."""
    patterns: tuple[str, ...] = ()
    """Further query patterns, for what a node kind alone cannot say."""


WEB_SKIP = (
    # comments
    "comment", "hash_bang_line", "html_comment",
    # TypeScript types, removed whole the way a compiler removes them
    "type_annotation", "type_arguments", "type_parameters", "interface_declaration",
    "type_alias_declaration", "implements_clause", "accessibility_modifier",
    "override_modifier", "ambient_declaration", "abstract_method_signature",
    "function_signature", "index_signature", "opting_type_annotation",
    "omitting_type_annotation", "adding_type_annotation", "asserts_annotation",
    "type_predicate_annotation", "predefined_type", "generic_type", "union_type",
    "intersection_type", "object_type", "array_type", "tuple_type", "literal_type",
    "function_type", "readonly_type", "lookup_type", "index_type_query", "type_query",
    "conditional_type", "parenthesized_type", "nested_type_identifier",
    "template_literal_type", "infer_type", "constructor_type", "existential_type",
    "this_type", "import_alias",
    # the closing tag has no counterpart in compiled JSX
    "jsx_closing_element",
    # Python annotations
    "type",
    # imports vanish when a bundler hoists and merges modules
    "import_statement", "import_from_statement", "future_import_statement",
)
_NATIVE_NUM = (
    "int_literal", "float_literal", "imaginary_literal", "rune_literal",  # Go
    "integer_literal", "char_literal", "boolean_literal", "negative_literal",  # Rust, C
    "decimal_integer_literal", "hex_integer_literal", "octal_integer_literal",  # Java
    "binary_integer_literal", "decimal_floating_point_literal",
    "hex_floating_point_literal", "character_literal",
    "number_literal", "true", "false",  # C/C++
)
_NATIVE_SKIP = (
    "comment", "line_comment", "block_comment",
    # imports and package lines: a copy into another project rewrites them
    "import_declaration", "package_clause", "package_declaration", "use_declaration",
    "extern_crate_declaration", "preproc_include",
)
_KINDS: dict[str, Kinds] = {
    **{lang: Kinds(skip=WEB_SKIP) for lang in WEB},
    "go": Kinds(
        prop=("field_identifier", "package_identifier"),
        frag=("interpreted_string_literal_content", "raw_string_literal_content"),
        num=_NATIVE_NUM, literal=("nil", "iota"), skip=_NATIVE_SKIP),
    "rust": Kinds(
        prop=("field_identifier",), short=("shorthand_field_identifier",),
        frag=("string_content",), num=_NATIVE_NUM,
        literal=("self", "super", "crate"), text=("primitive_type",), skip=_NATIVE_SKIP,
        # a path's last segment names an item of another module (`Vec::new`, `fs::read`)
        patterns=("(scoped_identifier name: (identifier) @prop)",
                  "(shorthand_field_initializer (identifier) @short)")),
    "java": Kinds(
        prop=(), frag=("string_fragment", "multiline_string_fragment"), num=_NATIVE_NUM,
        literal=("null_literal", "this", "super"), skip=_NATIVE_SKIP,
        # Java has no member-name node: methods called and fields read are named by place
        patterns=("(method_invocation name: (identifier) @prop)",
                  "(field_access field: (identifier) @prop)")),
    "c": Kinds(
        prop=("field_identifier",), frag=("string_content",), num=_NATIVE_NUM,
        text=("primitive_type",), skip=_NATIVE_SKIP),
    "cpp": Kinds(
        prop=("field_identifier", "namespace_identifier"),
        frag=("string_content", "raw_string_content"), num=_NATIVE_NUM,
        literal=("null", "this", "nullptr"), text=("primitive_type",),
        skip=(*_NATIVE_SKIP, "raw_string_delimiter"),
        patterns=("(qualified_identifier name: (identifier) @prop)",)),
}
_DROP_WORDS = {
    "var", "let", "const", "export", "import", "from", "as", "default", "void", "type",
    "declare", "readonly", "public", "private", "protected", "abstract", "override",
    "satisfies", "enum", "namespace", "module", "keyof", "infer", "is", "asserts",
}
_NUMBER_WORDS = {"number", "integer", "float", "true", "false", "undefined", "none"}
_KEEP_SYMBOLS = {"..."}
_NEW_OPTIONAL = ("Error", "TypeError", "RangeError", "SyntaxError", "ReferenceError",
                 "EvalError", "URIError", "AggregateError", "Array", "Object")
"""Constructors a minifier calls without ``new`` (same result)."""


@dataclass
class Tokens:
    """The two token streams of one file, with the byte offset where each token starts."""

    norm: list[str] = field(default_factory=list)
    exact: list[str] = field(default_factory=list)
    starts: list[int] = field(default_factory=list)
    words: list[str] = field(default_factory=list)
    """The words of string literals alone (the channel that survives a port)."""
    word_starts: list[int] = field(default_factory=list)
    errors: bool = False
    """The parser had to recover from syntax errors somewhere."""
    fragments: list[tuple[int, int]] = field(default_factory=list)
    """Byte spans of the string literals' text (``tokenize(..., fragments=True)``)."""
    dropped: list[tuple[int, int]] = field(default_factory=list)
    """Byte spans of what the stream leaves out whole: comments, imports, types (with
    ``fragments=True``)."""
    norm_hash: Any = None
    exact_hash: Any = None
    words_hash: Any = None
    """With a ``hasher`` (``tokenize(..., hasher=)``): the three streams as arrays of token
    hashes instead of lists (``starts``/``word_starts`` are arrays then too); hashing
    before putting tokens in source order lets numpy reorder them, not Python."""


def language_for(path: str) -> str | None:
    name = path.rsplit("/", 1)[-1].lower()
    if name.endswith(".d.ts") or name.endswith(".d.mts") or name.endswith(".d.cts"):
        return None  # declarations only: nothing that survives compilation
    dot = name.rfind(".")
    return LANGUAGES.get(name[dot:]) if dot >= 0 else None


@lru_cache(maxsize=None)
def _grammar(language: str) -> Any:
    """The parser language of a grammar (loaded once)."""
    import importlib

    import tree_sitter

    module, function = _GRAMMARS[language]
    return tree_sitter.Language(getattr(importlib.import_module(module), function)())


def _keyword(kind: str) -> bool:
    """An anonymous node that is a word of the language (``return``, ``func``), kept as
    itself, unless bundlers add, drop or rewrite it."""
    if kind in _KEEP_SYMBOLS:
        return True
    return kind.isidentifier() and kind not in _DROP_WORDS and kind not in _NUMBER_WORDS


MAX_TEMPLATE_DEPTH = 256
"""More single ``<`` than this in one C++ statement is not real code, and tree-sitter-cpp
takes time that grows with about the 2.6th power of template nesting (39 CPU s for
10,000 levels in a 30 KB file): such a file is read as having no tokens."""


class TooDeep(ValueError):
    """The source would cost the parser far more than its size."""


def parse(source: bytes, language: str) -> Any:
    import tree_sitter

    if language == "cpp" and _template_depth(source) > MAX_TEMPLATE_DEPTH:
        raise TooDeep(f"more than {MAX_TEMPLATE_DEPTH} template brackets in one statement")
    return tree_sitter.Parser(_grammar(language)).parse(source)


def _template_depth(source: bytes) -> int:
    """An upper bound of template nesting: the most single ``<`` (not ``<<``, ``<=`` or
    ``</``) in one statement (``;``, ``{`` and ``}`` end one). A ``>`` never lowers it, so
    nothing written before the brackets can hide them; shifts and comparisons chained in
    one statement do not add up. Memory grows with the number of brackets, not bytes."""
    if source.count(b"<") <= MAX_TEMPLATE_DEPTH:
        return 0
    buf = np.frombuffer(source, dtype=np.uint8)
    at = np.flatnonzero(buf == 60)
    after = buf[np.minimum(at + 1, len(buf) - 1)]
    single = at[((after != 60) & (after != 61) & (after != 47)) | (at + 1 == len(buf))]
    single = single[(single == 0) | (buf[np.maximum(single - 1, 0)] != 60)]
    if len(single) <= MAX_TEMPLATE_DEPTH:
        return int(len(single))
    ends = np.flatnonzero((buf == 59) | (buf == 123) | (buf == 125))
    return int(np.bincount(np.searchsorted(ends, single)).max())


def tokenize(source: bytes, language: str,
             hasher: Callable[[list[str]], np.ndarray] | None = None, *,
             fragments: bool = False) -> Tokens:
    """One parse, then one query that captures only the leaves that become tokens.

    The query runs in C, so the millions of punctuation leaves and inner nodes of a
    minified bundle never become Python objects. Measured on the 13 MB bundle (CPU s on
    a loaded machine): parse 2.5-2.9, query 2.5-4, the Python around it ~3; a tree-cursor
    walk of every node cost about as much, with more code. Captures are put back in
    source order with numpy; whatever lies inside a dropped subtree (a type, a closing
    JSX tag) or is re-read as a property or a JSX tag name is filtered out by range.
    """
    import tree_sitter

    lang, query = _query(language)
    try:
        tree = parse(source, language)
    except TooDeep:
        return _no_tokens(hasher)
    out = Tokens(errors=tree.root_node.has_error)
    caps = tree_sitter.QueryCursor(query).captures(tree.root_node)

    def begins(nodes: Any) -> np.ndarray:
        return np.array([n.start_byte for n in nodes], dtype=np.int64)

    def spans(name: str) -> tuple[np.ndarray, np.ndarray]:
        nodes = caps.get(name, ())
        return begins(nodes), np.array([n.end_byte for n in nodes], dtype=np.int64)

    def texts(nodes: Any) -> list[str]:
        """Decode many short slices at once (one C call, not one per token)."""
        pieces = [source[n.start_byte:n.end_byte] for n in nodes]
        joined = b"\0".join(pieces).decode("utf-8", "replace").split("\0")
        if len(joined) != len(pieces):  # a NUL inside a token: decode one by one
            joined = [p.decode("utf-8", "replace") for p in pieces]
        return joined

    skip_s, skip_e = spans("skip")
    if fragments:
        out.dropped = list(zip(skip_s.tolist(), skip_e.tolist()))
    drop_s, drop_e = spans("drop")
    if len(drop_s):  # what minifiers write differently (`new Error`, compiled JSX's callee)
        skip_s, skip_e = np.concatenate([skip_s, drop_s]), np.concatenate([skip_e, drop_e])
    jsx_s, jsx_e = spans("jsx")
    prop_nodes = caps.get("prop", ())
    prop_starts = set(begins(prop_nodes).tolist())
    starts: list[np.ndarray] = []
    groups: list[tuple[int, list[str] | str, list[str] | None]] = []

    def add(nodes: Any, norms: list[str] | str, exacts: list[str] | None = None) -> None:
        """One kind of token; ``norms`` is one string when all of them read the same
        (then it is hashed once), ``exacts`` None when names are the tokens themselves."""
        starts.append(begins(nodes))
        groups.append((len(starts[-1]), norms, exacts))

    def outside_jsx(nodes: Any) -> list[Any]:
        """A JSX tag name is one token: drop the names and properties it is made of."""
        if not len(jsx_s):
            return list(nodes)
        inside = _inside(begins(nodes), jsx_s, jsx_e)
        return [n for n, drop in zip(nodes, inside.tolist()) if not drop]

    prop_nodes = outside_jsx(prop_nodes)
    shorts = caps.get("short", ())
    if shorts and language == "rust":  # `S { x }`: a name that is also the field's
        prop_starts |= set(begins(shorts).tolist())
    idents = outside_jsx([n for n in caps.get("ident", ()) if n.start_byte not in prop_starts])
    names = texts(idents)
    if "undefined" in names:
        add(idents, ["N" if t == "undefined" else "I" for t in names],
            ["N" if t == "undefined" else t for t in names])
    else:
        add(idents, "I", names)
    imported = _package_imports(source, caps.get("imp", ()))
    if imported:
        # a name imported from a package is read, once bundled, as a member of the
        # package's module object (`useState` -> `R.useState`): `I .useState` on both sides
        # only where it is called (`useState(...)`, `useState<T>(...)`): a minifier
        # reuses a mangled import name for inner locals (`o` twice)
        opens = (b"(", b"<") if language in ("typescript", "tsx") else (b"(",)
        via = [(n, "." + imported[t]) for n, t in zip(idents, names)
               if t in imported and _next_byte(source, n.end_byte) in opens]
        add([n for n, _ in via], [m for _, m in via])
    props = ["." + t for t in texts(prop_nodes)]
    # `#name` (an ES private member) is renamed by minifiers (`#q`), like a local
    add(prop_nodes, [".#" if t[1:2] == "#" else t for t in props], props)
    keywords = caps.get("kw", ())
    if language not in WEB and keywords:
        # C's `NULL` is a `null` node over a `NULL` word: one token at one place, the
        # word (captures of one place come in either order from one parse to the next)
        seen: set[int] = set()
        keywords = [n for n in sorted(keywords, key=lambda n: (n.start_byte, n.is_named))
                    if n.start_byte not in seen and not seen.add(n.start_byte)]
    add(keywords, [n.type for n in keywords])
    numbers = caps.get("num", ())
    add(numbers, "N")
    regexes = caps.get("regex", ())
    add(regexes, texts(regexes))
    leaves = caps.get("text", ())
    add(leaves, texts(leaves))
    jsx = caps.get("jsx", ())
    tags = texts(jsx)
    add(jsx, [t if t[:1].islower() and "." not in t else "I" for t in tags], tags)
    short_names = texts(shorts)
    add(shorts, ["." + t for t in short_names], ["." + t for t in short_names])
    add(shorts, "I", short_names)  # `{a}` reads as `.a I`, like `{a: x}`
    if fragments:
        out.fragments = [(n.start_byte, n.end_byte) for n in caps.get("frag", ())]
    escapes = caps.get("esc", ())  # read as spaces, as other grammars' cuts are
    literal_text = blank(source, [(n.start_byte, n.end_byte) for n in escapes]) \
        if escapes else source
    w_pos, w_tok = _words(literal_text, caps.get("frag", ()))
    starts.append(w_pos)
    groups.append((len(w_pos), w_tok, None))

    pos = np.concatenate(starts) if starts else np.zeros(0, np.int64)
    keep = ~_inside(pos, skip_s, skip_e)
    order = np.flatnonzero(keep)
    order = order[np.argsort(pos[order], kind="stable")]
    wpos = w_pos
    wkeep = np.flatnonzero(~_inside(wpos, skip_s, skip_e))
    wkeep = wkeep[np.argsort(wpos[wkeep], kind="stable")]  # captures come by pattern
    if hasher is not None:
        norm_h, exact_h = [], []
        for count, norms, exacts in groups:
            h = np.full(count, hasher([norms])[0], dtype=np.uint64) if isinstance(norms, str) \
                else hasher(norms)
            norm_h.append(h)
            exact_h.append(h if exacts is None else hasher(exacts))
        out.starts, out.word_starts = pos[order], wpos[wkeep]
        out.norm_hash = np.concatenate(norm_h)[order]
        out.exact_hash = np.concatenate(exact_h)[order]
        out.words_hash = norm_h[-1][wkeep]  # the last group: the words of strings
        return out
    norm: list[str] = []
    exact: list[str] = []
    for count, norms, exacts in groups:
        norm.extend([norms] * count if isinstance(norms, str) else norms)
        exact.extend(norm[len(exact):] if exacts is None else exacts)
    out.starts = pos[order].tolist()
    out.norm = [norm[i] for i in order.tolist()]
    out.exact = [exact[i] for i in order.tolist()]
    out.words = [w_tok[i] for i in wkeep.tolist()]
    out.word_starts = wpos[wkeep].tolist()
    return out


def blank(source: bytes, spans: Iterable[tuple[int, int]]) -> bytes:
    """``source`` with every byte of ``spans`` a space: same length, so offsets stay."""
    text = bytearray(source)
    for start, end in spans:
        end = min(end, len(text))
        if end > start:
            text[start:end] = b" " * (end - start)
    return bytes(text)


def _no_tokens(hasher: Callable[[list[str]], np.ndarray] | None) -> Tokens:
    out = Tokens(errors=True)
    if hasher is not None:
        none = np.zeros(0, dtype=np.uint64)
        out.norm_hash = out.exact_hash = out.words_hash = none
        out.starts = out.word_starts = np.zeros(0, dtype=np.int64)
    return out


def _next_byte(source: bytes, at: int) -> bytes:
    """The first non-blank byte at or after ``at``."""
    return source[at:at + 64].lstrip()[:1]


_MODULE_OBJECT_PACKAGES = frozenset({b"react", b"react-dom"})
"""Packages that ship CommonJS, which bundlers (esbuild, bun) keep as one module object:
``import { useState } from "react"`` is emitted as ``R.useState``. ESM packages, relative
modules and the runtime's own (``node:fs``) are hoisted or kept as imports instead, and
their names stay plain identifiers; measured on a real bundle, extending the rule to every
package lost more matches than it gained."""


def _bundled_package(spec: bytes) -> bool:
    return spec.split(b"/", 1)[0] in _MODULE_OBJECT_PACKAGES


def _package_imports(source: bytes, statements: Any) -> dict[str, str]:
    """Local name -> imported name, for the named imports of packages (bare specifiers).

    Relative imports are first-party modules that a bundler hoists into one scope (their
    names become plain identifiers); a package is often kept as a module object."""
    out: dict[str, str] = {}
    for node in statements:
        src = node.child_by_field_name("source")
        spec = source[src.start_byte + 1:src.end_byte - 1] if src is not None else b"."
        if not _bundled_package(spec) or any(c.type == "type" for c in node.children):
            continue
        for clause in node.named_children:
            if clause.type != "import_clause":
                continue
            for part in clause.named_children:
                if part.type != "named_imports":
                    continue
                for item in part.named_children:
                    name, alias = item.child_by_field_name("name"), \
                        item.child_by_field_name("alias")
                    if name is None or any(c.type == "type" for c in item.children):
                        continue
                    local = alias or name
                    out[source[local.start_byte:local.end_byte].decode("utf-8", "replace")] = \
                        source[name.start_byte:name.end_byte].decode("utf-8", "replace")
    return out


def _inside(pos: np.ndarray, s: np.ndarray, e: np.ndarray) -> np.ndarray:
    """Which positions fall inside one of the ranges [s, e)."""
    if len(s) == 0 or len(pos) == 0:
        return np.zeros(len(pos), dtype=bool)
    order = np.argsort(s, kind="stable")
    s, e = s[order], np.maximum.accumulate(e[order])
    at = np.searchsorted(s, pos, side="right") - 1
    ok = at >= 0
    inside = np.zeros(len(pos), dtype=bool)
    inside[ok] = pos[ok] < e[at[ok]]
    return inside


@lru_cache(maxsize=None)
def _query(language: str) -> tuple[Any, Any]:
    """The capture query of a grammar, built from its own list of node kinds."""
    import tree_sitter

    lang = _grammar(language)
    kinds = _KINDS[language]
    named: set[str] = set()
    words: set[str] = set()
    for kid in range(lang.node_kind_count):  # one name may be a node and a keyword
        kind = lang.node_kind_for_id(kid) or ""
        if not lang.node_kind_is_visible(kid) or kind.startswith("_"):
            continue
        if lang.node_kind_is_named(kid):
            named.add(kind)
        elif _keyword(kind):
            words.add(kind)
    keywords = sorted(words)

    def some(capture: str, *wanted: str) -> str:
        return " ".join(f"({k}) @{capture}" for k in wanted if k in named)

    parts = [
        some("ident", *kinds.ident),
        some("prop", *kinds.prop),
        some("short", *kinds.short),
        some("frag", *kinds.frag),
        some("num", *sorted(kinds.num)),
        some("regex", "regex"),
        some("kw", *kinds.literal),
        some("text", *kinds.text),
        "[" + " ".join(json.dumps(k) for k in keywords) + "] @kw" if keywords else "",
        some("skip", *sorted(kinds.skip)),
        *kinds.patterns,
    ]
    if language not in WEB:
        return lang, tree_sitter.Query(lang, "\n".join(p for p in parts if p))
    if "as_expression" in named:
        parts.append("(as_expression (_) (_) @skip)")
    if "satisfies_expression" in named:
        parts.append("(satisfies_expression (_) (_) @skip)")
    if "import_statement" in named:
        parts.append("(import_statement) @imp")
    if "new_expression" in named:
        # minifiers drop `new` before the built-ins that need none (`throw Error(...)`)
        parts.append('(new_expression "new" @drop constructor: (identifier) @_ctor'
                     f' (#any-of? @_ctor {" ".join(json.dumps(n) for n in _NEW_OPTIONAL)}))')
    if "jsx_opening_element" in named:
        parts.append("(jsx_opening_element name: (_) @jsx)")
        parts.append("(jsx_self_closing_element name: (_) @jsx)")
    if "call_expression" in named and "member_expression" in named:
        # compiled JSX: `R.default.createElement(Tag, null, ...)` is `<Tag>...</Tag>`
        jsx_calls = '"createElement" "jsx" "jsxs" "jsxDEV"'
        parts.append("(call_expression function: (member_expression property: "
                     f"(property_identifier) @_jsx_call) @drop (#any-of? @_jsx_call {jsx_calls}))")
        parts.append("(call_expression function: (member_expression property: "
                     "(property_identifier) @_jsx_call) arguments: (arguments . (_) . (null) @drop)"
                     f" (#any-of? @_jsx_call {jsx_calls}))")
    if language == "python":
        # Python's grammar keeps escapes inside a fragment's text; the others end it there
        parts.append("(string_content (escape_sequence) @esc)")
        parts.append("(attribute attribute: (identifier) @prop)")
        parts.append("(keyword_argument name: (identifier) @prop)")
    return lang, tree_sitter.Query(lang, "\n".join(p for p in parts if p))


def _words(source: bytes, fragments: Any) -> tuple[np.ndarray, list[str]]:
    """The lower-cased words of string fragments, with (close to) their byte offsets.

    All fragments are decoded and searched in one go; a word's offset is its fragment's
    start plus its offset in the fragment, in bytes (for non-ASCII text, from the UTF-8
    length of the characters before it)."""
    if not fragments:
        return np.zeros(0, dtype=np.int64), []
    begin = np.array([n.start_byte for n in fragments], dtype=np.int64)
    text = b"\0".join([source[n.start_byte:n.end_byte] for n in fragments]).decode(
        "utf-8", "replace").lower()
    seps = np.array([m.start() for m in _NUL.finditer(text)], dtype=np.int64)
    words: list[str] = []
    at: list[int] = []
    for match in WORD.finditer(text):
        words.append(match.group())
        at.append(match.start())
    where = np.asarray(at, dtype=np.int64)
    piece = np.searchsorted(seps, where)  # which fragment each word is in
    piece_start = np.concatenate([[0], seps + 1])[piece]
    piece = np.minimum(piece, len(begin) - 1)
    if not text.isascii():  # character offsets -> byte offsets (line numbers stay right)
        points = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        size = 1 + (points >= 0x80) + (points >= 0x800) + (points >= 0x10000)
        byte_at = np.concatenate([[0], np.cumsum(size)])
        where, piece_start = byte_at[where], byte_at[piece_start]
    return begin[piece] + (where - piece_start), words
