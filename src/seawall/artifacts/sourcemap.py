"""Source maps are containers: every ``sourcesContent`` entry is a virtual file.

A map is recognised by content (whatever its name, key order or size) and parsed once;
the parse is shared with the ``sourcemap`` detector through ``load``. Index maps
(``sections``) are flattened. A JS/CSS file that ends in an inline ``data:`` URI map
is a container holding that map.
"""

from __future__ import annotations

import base64
import binascii
import re
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import msgspec

from seawall.artifacts.base import Content, Entry, Opener, Source

XSSI_PREFIX = b")]}'"


class _Map(msgspec.Struct):
    version: Any = None
    file: Any = None
    sourceRoot: Any = None
    sources: Any = None
    sourcesContent: Any = None
    sections: Any = None
    # "mappings" and "names" are deliberately not decoded: they are most of a map's bytes.


@dataclass
class SourceMap:
    sources: list[str] = field(default_factory=list)
    contents: list[str | None] = field(default_factory=list)
    source_root: str | None = None
    file: str | None = None


def _strip(data: Any) -> Any:
    view = memoryview(data)
    start = 0
    if bytes(view[:3]) == b"\xef\xbb\xbf":
        start = 3
    while start < len(view) and view[start] in b" \t\r\n":
        start += 1
    if bytes(view[start : start + 4]) == XSSI_PREFIX:
        nl = bytes(view[start : start + 16]).find(b"\n")
        start += nl + 1 if nl >= 0 else 4
    return view[start:]


def looks_like_map(head: bytes, content: Content | None) -> bool:
    body = bytes(_strip(head[:64]))
    if not body.startswith(b"{") or content is None:
        return False
    data = content.data
    return data.find(b'"sources"') >= 0 and (
        data.find(b'"mappings"') >= 0 or data.find(b'"sections"') >= 0
    )


def parse(data: Any) -> SourceMap | None:
    """Decode a map, or return None when it is not one."""
    raw = _decode(_strip(data))
    if raw is None:
        return None
    result = SourceMap(file=_text(raw.file), source_root=_text(raw.sourceRoot))
    if isinstance(raw.sections, list):
        for section in raw.sections:
            inner = section.get("map") if isinstance(section, dict) else None
            if isinstance(inner, dict):
                _add(result, inner.get("sources"), inner.get("sourcesContent"))
        return result
    if not isinstance(raw.sources, list):
        return None
    _add(result, raw.sources, raw.sourcesContent)
    return result


def _decode(body: Any) -> _Map | None:
    try:
        return msgspec.json.decode(body, type=_Map)
    except UnicodeDecodeError:
        # Browsers and tools read maps leniently; one invalid byte must not hide a map.
        return _decode(bytes(body).decode("utf-8", "replace"))
    except (msgspec.DecodeError, RecursionError):
        return None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _add(result: SourceMap, sources: Any, contents: Any) -> None:
    if not isinstance(sources, list):
        return
    contents = contents if isinstance(contents, list) else []
    for i, src in enumerate(sources):
        result.sources.append(src if isinstance(src, str) else "")
        body = contents[i] if i < len(contents) else None
        result.contents.append(body if isinstance(body, str) else None)


def load(content: Content, memo: dict[str, Any]) -> SourceMap | None:
    """Parse once per member; the opener and the detector share the result."""
    if "sourcemap" not in memo:
        memo["sourcemap"] = parse(content.data)
    return memo["sourcemap"]


_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://+")


def virtual_path(source: str) -> str:
    """How an embedded source is named in a path: ``../src/a.ts`` -> ``src/a.ts``."""
    path = _SCHEME.sub("", source.replace("\\", "/"))
    parts = [p for p in path.split("/") if p not in ("", ".", "..")]
    return "/".join(parts) or "(unnamed)"


class SourceMapOpener(Opener):
    name: ClassVar[str] = "sourcemap"
    priority: ClassVar[int] = 60

    @classmethod
    def sniff(cls, head: bytes, name: str, content: Content | None) -> bool:
        return looks_like_map(head, content)

    def entries(self, source: Source) -> Iterator[Entry]:
        assert source.content is not None
        smap = load(source.content, self.memo)
        if smap is None:
            return
        seen: dict[str, int] = {}
        for src, body in zip(smap.sources, smap.contents):
            if body is None:
                continue
            path = virtual_path(src)
            count = seen.get(path, 0)
            seen[path] = count + 1
            if count:
                path = f"{path}~{count + 1}"
            yield Entry(
                path=path, data=body.encode("utf-8", "surrogatepass"), attrs={"source": src}
            )


_MARKER = b"sourceMappingURL=data:"
_COMMENT = re.compile(rb"[#@][ \t]*$")
# Bounded media type and parameters, and the scan resumes after each payload: a file
# stuffed with markers costs one pass, not one pass per marker.
_DATA_URI = re.compile(
    rb"(?P<mime>[^,;\s]{0,128})(?P<params>(?:;[^,;\s]{0,128}){0,8}),(?P<payload>[^\s*'\"`]*)"
)


def inline_maps(data: Any) -> list[bytes]:
    """Decode every inline ``data:`` URI map in a JS/CSS file.

    The payload is matched to its end however long it is: an inline map is routinely
    megabytes of base64 on the last line of a bundle.
    """
    found: list[bytes] = []
    at = data.find(_MARKER)
    while at >= 0:
        resume = at + len(_MARKER)
        uri = (
            _DATA_URI.match(data, resume)
            if _COMMENT.search(bytes(data[max(at - 8, 0) : at]))
            else None
        )
        if uri is not None:
            resume = uri.end()
            decoded = _decode_uri(uri)
            if decoded is not None and bytes(_strip(decoded[:64])).startswith(b"{"):
                found.append(decoded)
        at = data.find(_MARKER, resume)
    return found


def _decode_uri(uri: re.Match[bytes]) -> bytes | None:
    payload = uri.group("payload")
    try:
        if b";base64" in uri.group("params").lower():
            return base64.b64decode(payload + b"=" * (-len(payload) % 4), validate=False)
        return urllib.parse.unquote_to_bytes(payload)
    except (ValueError, binascii.Error):
        return None


class InlineMapOpener(Opener):
    name: ClassVar[str] = "inline-sourcemap"
    priority: ClassVar[int] = 70

    @classmethod
    def sniff(cls, head: bytes, name: str, content: Content | None) -> bool:
        return content is not None and content.data.find(b"sourceMappingURL=data:") >= 0

    def entries(self, source: Source) -> Iterator[Entry]:
        assert source.content is not None
        maps = inline_maps(source.content.data)
        for i, decoded in enumerate(maps):
            name = "inline.map" if len(maps) == 1 else f"inline-{i + 1}.map"
            yield Entry(path=name, data=decoded, attrs={"inline": True})
