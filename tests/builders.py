"""Build real artifacts in memory from a tree of ``{path: bytes}``.

Every fixture is made in code, so a test shows exactly what it scans. ``pack`` writes
the same tree as any supported format; detectors are tested through each of them.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import tarfile
import zipfile
from pathlib import Path
from typing import Mapping

import zstandard

Tree = Mapping[str, bytes]


def tar_bytes(tree: Tree, *, prefix: str = "") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, data in tree.items():
            info = tarfile.TarInfo(prefix + path)
            info.size = len(data)
            info.mtime = 499162500  # npm's fixed 1985-10-26 timestamp
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def zip_bytes(tree: Tree) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
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


FORMATS = ("dir", "tar", "tgz", "tar.bz2", "tar.xz", "tar.zst", "zip")


def pack(tree: Tree, fmt: str, dest: Path) -> Path:
    """Write ``tree`` as ``fmt`` under ``dest`` and return the target path to scan."""
    dest.mkdir(parents=True, exist_ok=True)
    if fmt == "dir":
        root = dest / "tree"
        for path, data in tree.items():
            file = root / path
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_bytes(data)
        return root
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
