"""Rules kept as data: TOML files shipped in this package, and the globs they are written in."""

from __future__ import annotations

import hashlib
import os
import re
import tomllib
from collections.abc import Iterable, Sequence
from importlib import resources
from typing import Any


def load(filename: str) -> dict[str, Any]:
    """Parse ``seawall/rules/<filename>``; works from a wheel, a zipapp or an editable install."""
    text = resources.files(__name__).joinpath(filename).read_text(encoding="utf-8")
    try:
        return parse_toml(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"seawall/rules/{filename}: {exc}") from None


def parse_toml(text: str) -> dict[str, Any]:
    """``tomllib.loads``, remembered by content hash in the cache folder as MessagePack.

    Parsing the rule files with the pure-Python TOML reader is most of a scan's start-up
    on a small release; decoding the same data from MessagePack takes a millisecond. The
    key is the text's hash, so an edited rule file is parsed again, and a cache that
    cannot be read or written is simply not used.
    """
    import msgspec

    from seawall.cachedir import cache_root

    key = hashlib.sha256(text.encode()).hexdigest()[:32]
    path = cache_root() / "parsed-rules" / f"{key}.msgpack"
    try:
        doc = msgspec.msgpack.decode(path.read_bytes())
        if isinstance(doc, dict):
            return doc
    except (OSError, msgspec.DecodeError):
        pass
    doc = tomllib.loads(text)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_suffix(f".{os.getpid()}.tmp")
        temp.write_bytes(msgspec.msgpack.encode(doc))
        os.replace(temp, path)  # whole or not at all, even with scans running side by side
    except (OSError, TypeError, msgspec.EncodeError):
        pass
    return doc


def glob_tokens(glob: str) -> list[str]:
    """A glob as regex tokens that never cross a ``/``: ``*``, ``?``, ``[a-z]``, ``[!a-z]``.

    Tokens rather than one string, so a glob can be reversed (see ``trie``'s callers).
    """
    out, i = [], 0
    while i < len(glob):
        char = glob[i]
        end = glob.find("]", i + 2) if char == "[" else -1  # "[]a]": a leading "]" is literal
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif end > 0:
            body = glob[i + 1 : end].replace("\\", "\\\\")
            out.append("[^" + body[1:] + "]" if body.startswith("!") else "[" + body + "]")
            i = end
        else:
            out.append(re.escape(char))
        i += 1
    return out


def trie(sequences: Iterable[Sequence[str]]) -> str:
    """One regex alternation of token sequences, shared leading tokens factored out.

    Python's ``re`` tries alternatives one by one; factored, a path that matches nothing is
    rejected after a character or two instead of once per glob.
    """
    root: dict[str, Any] = {}
    for tokens in sequences:
        node = root
        for token in tokens:
            node = node.setdefault(token, {})
        node[""] = {}  # a sequence ends here

    def emit(node: dict[str, Any]) -> str:
        branches = sorted(token + emit(child) for token, child in node.items() if token)
        if "" in node:
            branches.append("")  # last: the regex backtracks into it if a longer branch fails
        return branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"

    return emit(root)
