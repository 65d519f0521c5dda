"""A directory on disk as a tree of entries. Links are reported, never followed.

Files are classified by ``lstat`` here and opened by the engine without following links
(``Content.from_file``), so a file swapped for a link or a FIFO mid-scan is refused.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path

from seawall.artifacts.base import Entry, Kind, normalize_member


def walk_directory(root: Path) -> Iterator[Entry]:
    """Entries in a stable order (sorted names, depth first).

    A ``.git`` folder directly under the root is the checkout's own history, not part
    of what ships, and is skipped; one deeper down (``dist/.git``) is content.
    """
    stack: list[tuple[Path, str]] = [(root, "")]
    while stack:
        folder, prefix = stack.pop()
        try:
            names = sorted(os.listdir(folder))
        except OSError as exc:
            yield Entry(
                path=normalize_member(prefix.rstrip("/")) or ".",
                kind=Kind.DIR,
                error=f"cannot list: {exc.strerror}",
            )
            continue
        subdirs: list[tuple[Path, str]] = []
        for name in names:
            if not prefix and name == ".git":
                continue
            full = folder / name
            rel = prefix + name
            entry = _entry(full, rel)
            if entry.kind is Kind.DIR and entry.error is None:
                subdirs.append((full, rel + "/"))
            yield entry
        stack.extend(reversed(subdirs))


def _entry(full: Path, rel: str) -> Entry:
    """One path, classified by ``lstat``: a link is reported as a link, never followed."""
    shown = normalize_member(rel)  # undecodable names reach reports escaped
    try:
        st = full.lstat()
        link = os.readlink(full) if stat.S_ISLNK(st.st_mode) else None
    except OSError as exc:
        return Entry(path=shown, error=f"cannot read: {exc.strerror}")
    if link is not None:
        return Entry(path=shown, kind=Kind.SYMLINK, link=normalize_member(link))
    if stat.S_ISDIR(st.st_mode):
        return Entry(path=shown, kind=Kind.DIR)
    if stat.S_ISREG(st.st_mode):
        return Entry(path=shown, size=st.st_size, attrs={"disk_path": full})
    return Entry(path=shown, kind=Kind.SPECIAL)


def list_directory(root: Path, paths: Iterable[str], prefix: str = "") -> Iterator[Entry]:
    """Entries for chosen files of a directory (POSIX paths relative to ``root``), named
    ``prefix + path``, each parent folder listed once before its first file. Like
    ``walk_directory``, links are reported, never followed."""
    seen: set[str] = set()
    for rel in sorted(paths):
        parts = (prefix + rel).split("/")
        for i in range(1, len(parts)):
            folder = "/".join(parts[:i])
            if folder not in seen:
                seen.add(folder)
                yield Entry(path=normalize_member(folder), kind=Kind.DIR)
        entry = _entry(root / rel, prefix + rel)
        # A chosen path is a file; one that turned into a folder is not descended into.
        yield entry if entry.kind is not Kind.DIR else Entry(path=entry.path, kind=Kind.SPECIAL)
