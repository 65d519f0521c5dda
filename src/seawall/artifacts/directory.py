"""A directory on disk as a tree of entries. Links are reported, never followed."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Iterator

from seawall.artifacts.base import Entry, Kind


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
            yield Entry(path=prefix.rstrip("/") or ".", kind=Kind.SPECIAL, attrs={"error": str(exc)})
            continue
        subdirs: list[tuple[Path, str]] = []
        for name in names:
            full = folder / name
            rel = prefix + name
            if not prefix and name == ".git":
                continue
            try:
                st = full.lstat()
            except OSError as exc:
                yield Entry(path=rel, kind=Kind.SPECIAL, attrs={"error": str(exc)})
                continue
            if stat.S_ISLNK(st.st_mode):
                yield Entry(path=rel, kind=Kind.SYMLINK, link=os.readlink(full))
            elif stat.S_ISDIR(st.st_mode):
                yield Entry(path=rel, kind=Kind.DIR)
                subdirs.append((full, rel + "/"))
            elif stat.S_ISREG(st.st_mode):
                yield Entry(path=rel, size=st.st_size, attrs={"disk_path": full})
            else:
                yield Entry(path=rel, kind=Kind.SPECIAL)
        stack.extend(reversed(subdirs))
