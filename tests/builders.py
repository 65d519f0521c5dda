"""Build real artifacts in memory from a tree of ``{path: bytes}``.

Every fixture is made in code, so a test shows exactly what it scans. ``pack`` writes
the same tree as any supported format; detectors are tested through each of them. The
hostile builders (bombs, lying zips, odd tar members) write the formats byte by byte
where the standard library refuses to.
"""

from __future__ import annotations

import bz2
import functools
import gzip
import hashlib
import io
import json
import lzma
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zstandard

from seawall.detectors.base import all_detectors
from seawall.engine import Engine, Target, TargetResult
from seawall.findings import Finding
from seawall.limits import Limits

Tree = Mapping[str, bytes]
MiB = 1024 * 1024
GiB = 1024 * MiB


# -- archives ------------------------------------------------------------------------
def tar_bytes(tree: Tree, *, prefix: str = "", format: int = tarfile.PAX_FORMAT) -> bytes:
    return tar_of([file_info(prefix + path, data) for path, data in tree.items()], format=format)


def file_info(name: str, data: bytes = b"") -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 499162500  # npm's fixed 1985-10-26 timestamp
    return info, data


def special_info(name: str, kind: bytes, link: str = "") -> tuple[tarfile.TarInfo, None]:
    """A link (``tarfile.SYMTYPE``/``LNKTYPE``), device or FIFO member."""
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.mtime = 499162500
    return info, None


def tar_of(
    members: Iterable[tuple[tarfile.TarInfo, bytes | None]], *, format: int = tarfile.PAX_FORMAT
) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=format) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def zip_bytes(tree: Tree, *, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=compression) as zf:
        for path, data in tree.items():
            zf.writestr(path, data)
    return buf.getvalue()


def compress(data: bytes, fmt: str) -> bytes:
    if fmt == "gz":
        return gzip.compress(data, mtime=0)
    if fmt == "bz2":
        return bz2.compress(data)
    if fmt == "xz":
        return lzma.compress(data)
    if fmt == "zst":
        return zstandard.ZstdCompressor().compress(data)
    raise ValueError(fmt)


def asar_bytes(tree: Tree, *, extra: Mapping[str, Any] | None = None) -> bytes:
    """An Electron archive exactly as @electron/asar lays it out (see artifacts/asar.py).

    ``extra`` adds raw header nodes (links, unpacked files) at the root.
    """
    root: dict[str, Any] = {"files": {}}
    blobs: list[bytes] = []
    offset = 0
    for path, data in tree.items():
        node = root
        *folders, name = path.split("/")
        for folder in folders:
            node = node["files"].setdefault(folder, {"files": {}})
        node["files"][name] = {"size": len(data), "offset": str(offset)}
        blobs.append(data)
        offset += len(data)
    root["files"].update(extra or {})
    header = json.dumps(root, separators=(",", ":")).encode()
    string_pickle = struct.pack("<I", len(header)) + header + b"\0" * (-len(header) % 4)
    header_pickle = struct.pack("<I", len(string_pickle)) + string_pickle
    size_pickle = struct.pack("<II", 4, len(header_pickle))
    return size_pickle + header_pickle + b"".join(blobs)


# -- source maps ---------------------------------------------------------------------
def source_map(sources: Mapping[str, str | None], **fields: Any) -> bytes:
    """A v3 map; ``None`` content lists a source without embedding it."""
    body: dict[str, Any] = {"version": 3, "sources": list(sources), "names": [], "mappings": "AAAA"}
    if any(text is not None for text in sources.values()):
        body["sourcesContent"] = list(sources.values())
    body.update(fields)
    return json.dumps(body).encode()


FIRST_PARTY_MAP = source_map(
    {
        "../src/utils/crypto.ts": "export const key = derive();\n",
        "../src/main.ts": "import './utils/crypto';\n",
    }
)


# -- container images ----------------------------------------------------------------
def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def blob_path(data: bytes) -> str:
    return "blobs/sha256/" + hashlib.sha256(data).hexdigest()


def docker_save(layers: Sequence[Tree]) -> bytes:
    """A legacy ``docker save`` tarball: layers first, manifest.json last (as docker writes it)."""
    members: list[tuple[tarfile.TarInfo, bytes | None]] = []
    names: list[str] = []
    for layer in layers:
        blob = tar_bytes(layer)
        layer_id = hashlib.sha256(blob).hexdigest()
        names.append(f"{layer_id}/layer.tar")
        members += [
            file_info(f"{layer_id}/VERSION", b"1.0"),
            file_info(f"{layer_id}/json", b"{}"),
            file_info(f"{layer_id}/layer.tar", blob),
        ]
    config = json.dumps({"rootfs": {"type": "layers"}}).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = [{"Config": config_name, "RepoTags": ["example.test/demo:1"], "Layers": names}]
    members += [
        file_info(config_name, config),
        file_info("manifest.json", json.dumps(manifest).encode()),
        file_info("repositories", b'{"example.test/demo":{"1":"x"}}'),
    ]
    return tar_of(members)


def oci_layout(
    layers: Sequence[Tree], *, compressed: bool = True, docker_manifest: bool = False
) -> dict[str, bytes]:
    """The files of an OCI image layout. ``docker_manifest`` adds the manifest.json that
    Docker >= 25 writes beside the layout (with uncompressed layers, as it does)."""
    files: dict[str, bytes] = {}
    descriptors = []
    for layer in layers:
        blob = tar_bytes(layer)
        blob = compress(blob, "gz") if compressed else blob
        files[blob_path(blob)] = blob
        media = "application/vnd.oci.image.layer.v1.tar" + ("+gzip" if compressed else "")
        descriptors.append({"mediaType": media, "digest": _digest(blob), "size": len(blob)})
    config = json.dumps({"architecture": "amd64", "os": "linux"}).encode()
    files[blob_path(config)] = config
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": _digest(config),
                "size": len(config),
            },
            "layers": descriptors,
        }
    ).encode()
    files[blob_path(manifest)] = manifest
    files["index.json"] = json.dumps(
        {
            "schemaVersion": 2,
            "manifests": [
                {
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": _digest(manifest),
                    "size": len(manifest),
                    "annotations": {"org.opencontainers.image.ref.name": "1"},
                }
            ],
        }
    ).encode()
    files["oci-layout"] = b'{"imageLayoutVersion":"1.0.0"}'
    if docker_manifest:
        files["manifest.json"] = json.dumps(
            [
                {
                    "Config": blob_path(config),
                    "RepoTags": ["example.test/demo:1"],
                    "Layers": [
                        blob_path(files_blob) for files_blob in _layer_blobs(files, descriptors)
                    ],
                }
            ]
        ).encode()
    return files


def _layer_blobs(files: Mapping[str, bytes], descriptors: list[dict[str, Any]]) -> list[bytes]:
    by_digest = {_digest(data): data for data in files.values()}
    return [by_digest[d["digest"]] for d in descriptors]


# -- bombs and hostile zips ----------------------------------------------------------
@functools.cache
def zeros_deflate(size: int) -> tuple[bytes, int]:
    """A raw deflate stream of ``size`` zero bytes (a multiple of 1 MiB) and its CRC-32.

    After a full flush deflate keeps no history, so every 1 MiB block compresses to the
    same bytes: the stream is built from one block, in milliseconds.
    """
    assert size % MiB == 0
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = packer.compress(bytes(MiB)) + packer.flush(zlib.Z_FULL_FLUSH)
    stream = block * (size // MiB) + packer.flush(zlib.Z_FINISH)
    return stream, _zeros_crc(size)


def _zeros_crc(size: int, crc: int = 0) -> int:
    zeros = bytes(MiB)
    for _ in range(size // MiB):
        crc = zlib.crc32(zeros, crc)
    return crc


@dataclass
class RawMember:
    """A zip member written as-is: sizes, flags and method may say anything."""

    name: str
    payload: bytes
    crc: int
    file_size: int
    compress_size: int | None = None
    method: int = zipfile.ZIP_DEFLATED
    flags: int = 0


def raw_zip(members: Sequence[RawMember]) -> bytes:
    """A zip (no zip64) written by hand, so that a test controls every declared field."""
    out = io.BytesIO()
    central = []
    for m in members:
        offset = out.tell()
        name = m.name.encode()
        compress_size = len(m.payload) if m.compress_size is None else m.compress_size
        fields = (20, m.flags, m.method, 0, 0x21, m.crc, compress_size, m.file_size, len(name))
        out.write(
            struct.pack("<4s5HIIIHH", b"PK\x03\x04", *fields[:5], *fields[5:], 0) + name + m.payload
        )
        central.append(
            struct.pack(
                "<4s6HIIIHHHHHII",
                b"PK\x01\x02",
                20,
                *fields[:5],
                *fields[5:],
                0,
                0,
                0,
                0,
                0,
                offset,
            )
            + name
        )
    start = out.tell()
    directory = b"".join(central)
    out.write(directory)
    out.write(
        struct.pack(
            "<4s4HIIH", b"PK\x05\x06", 0, 0, len(members), len(members), len(directory), start, 0
        )
    )
    return out.getvalue()


def zip_bomb(size: int = GiB, name: str = "zeros.bin") -> bytes:
    stream, crc = zeros_deflate(size)
    return raw_zip([RawMember(name, stream, crc, size)])


def tgz_bomb(size: int = GiB, before: Tree | None = None) -> bytes:
    """A gzip'd tar whose member ``zeros.bin`` expands to ``size`` bytes of zeros,
    after the members of ``before``. Written as one deflate stream, in milliseconds."""
    lead = b"".join(_tar_member(path, data) for path, data in (before or {}).items())
    bomb = tarfile.TarInfo("zeros.bin")
    bomb.size = size
    lead += bomb.tobuf(tarfile.PAX_FORMAT)
    tail = bytes(1024)  # end-of-archive
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    opening = packer.compress(lead) + packer.flush(zlib.Z_FULL_FLUSH)
    block = packer.compress(bytes(MiB)) + packer.flush(zlib.Z_FULL_FLUSH)
    closing = packer.compress(tail) + packer.flush(zlib.Z_FINISH)
    crc = zlib.crc32(tail, _zeros_crc(size, zlib.crc32(lead)))
    total = len(lead) + size + len(tail)
    deflated = opening + block * (size // MiB) + closing
    return (
        b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
        + deflated
        + struct.pack("<II", crc, total & 0xFFFFFFFF)
    )


def _tar_member(path: str, data: bytes) -> bytes:
    info, _ = file_info(path, data)
    return info.tobuf(tarfile.PAX_FORMAT) + data + bytes(-len(data) % 512)


# -- protobuf ------------------------------------------------------------------------
def varint(n: int) -> bytes:
    """The protobuf base-128 varint of a non-negative ``n`` (low 7 bits first)."""
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def pb(number: int, value: int | bytes) -> bytes:
    """One protobuf field: an int as a varint (wire type 0), bytes length-delimited (2)."""
    if isinstance(value, int):
        return varint(number << 3) + varint(value)
    return varint(number << 3 | 2) + varint(len(value)) + value


# -- packing and scanning ------------------------------------------------------------
FORMATS = ("dir", "tar", "tgz", "tar.bz2", "tar.xz", "tar.zst", "zip")


def write_tree(tree: Tree, root: Path) -> Path:
    for path, data in tree.items():
        file = root / path
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_bytes(data)
    return root


def pack(tree: Tree, fmt: str, dest: Path) -> Path:
    """Write ``tree`` as ``fmt`` under ``dest`` and return the target path to scan."""
    dest.mkdir(parents=True, exist_ok=True)
    if fmt == "dir":
        return write_tree(tree, dest / "tree")
    if fmt == "zip":
        out = dest / "artifact.zip"
        out.write_bytes(zip_bytes(tree))
        return out
    raw = tar_bytes(tree)
    out = dest / f"artifact.{fmt}"
    if fmt == "tar":
        out.write_bytes(raw)
    elif fmt == "tgz":
        out.write_bytes(compress(raw, "gz"))
    else:
        out.write_bytes(compress(raw, fmt.split(".", 1)[1]))
    return out


OPENER_DETECTORS = frozenset({"anomaly", "sourcemap"})


def opener_engine(**limits: int) -> Engine:
    """An engine running only the detectors the opener tests assert on, so that their
    exact expectations do not move when another detector is added."""
    others = frozenset(all_detectors()) - OPENER_DETECTORS
    return Engine(limits=Limits(**limits), disabled_detectors=others)


def scan_path(path: Path, name: str | None = None, **limits: int) -> TargetResult:
    return opener_engine(**limits).scan_target(Target(name or path.name, path))


def found(result: TargetResult | Sequence[Finding]) -> list[tuple[str, str]]:
    """(rule, path) of every finding, in report order."""
    findings = result.findings if isinstance(result, TargetResult) else result
    return [(f.rule, f.path) for f in findings]


def listing(path: Path, **limits: int) -> list[str]:
    """Every file the engine read, in walk order (containers read forward-only excepted)."""
    seen: list[str] = []
    engine = opener_engine(**limits)
    engine.progress = lambda member, _n: seen.append(member)
    engine.scan_target(Target(path.name, path))
    return seen
