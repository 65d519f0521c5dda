"""Container images: ``docker save`` tarballs and OCI image layouts.

Every layer is an ordinary nested tar, so the engine already opens each one and scans
it. What an image adds is order: a file deleted by a later layer's whiteout is gone from
the running container but still shipped in the earlier layer's blob. ``ImageAssembler``
watches one container level, learns the layer order from ``manifest.json`` (docker save)
and ``index.json`` (OCI; Docker >= 25 writes both), and afterwards tells which findings
sit in which layer and which were whited out later. The documents usually come after
the layers in a ``docker save`` tarball, which is why this happens once the level is done.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
_SMALL = 1024 * 1024
_MAX_INDEX_DEPTH = 8


@dataclass
class ImageAssembler:
    documents: dict[str, Any] = field(default_factory=dict)
    whiteouts: dict[str, list[str]] = field(default_factory=dict)
    """layer member path -> whiteout marker paths inside that layer."""

    def observe(self, member: str, data: Any) -> None:
        """Keep the small JSON documents an image is described by."""
        if len(data) > _SMALL:
            return
        if member in ("manifest.json", "index.json", "oci-layout") or (
            member.startswith("blobs/") and bytes(data[:1]) == b"{"
        ):
            try:
                self.documents[member] = msgspec.json.decode(bytes(data))
            except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
                pass

    def note_whiteout(self, layer_member: str, path: str) -> None:
        self.whiteouts.setdefault(layer_member, []).append(path)

    def images(self) -> list[list[str]]:
        """Each image's layer member paths, bottom layer first; empty when this is no image."""
        found: list[list[str]] = []
        manifest = self.documents.get("manifest.json")
        for image in manifest if isinstance(manifest, list) else []:
            layers = image.get("Layers") if isinstance(image, dict) else None
            if isinstance(layers, list):
                found.append([str(x) for x in layers])
        index = self.documents.get("index.json")
        if isinstance(index, dict) and "oci-layout" in self.documents:
            found.extend(self._oci_images(index, 0))
        unique: list[list[str]] = []
        for layers in found:
            if layers and layers not in unique:
                unique.append(layers)
        return unique

    def _oci_images(self, index: dict[str, Any], depth: int) -> list[list[str]]:
        if depth > _MAX_INDEX_DEPTH:  # an index may name itself
            return []
        found: list[list[str]] = []
        for desc in index.get("manifests") or []:
            doc = self.documents.get(_blob(desc))
            if not isinstance(doc, dict):
                continue
            if isinstance(doc.get("manifests"), list):  # a nested index (multi-platform)
                found.extend(self._oci_images(doc, depth + 1))
            elif isinstance(doc.get("layers"), list):
                found.append([_blob(layer) for layer in doc["layers"]])
        return found

    def deleted_by(self, layers: list[str], layer_index: int, path: str) -> int | None:
        """Index of the first later layer whose whiteout removes ``path``, if any."""
        for later in range(layer_index + 1, len(layers)):
            for marker in self.whiteouts.get(layers[later], ()):
                if _removes(marker, path):
                    return later
        return None


def is_whiteout(member: str) -> bool:
    return member.rsplit("/", 1)[-1].startswith(WHITEOUT)


def _blob(desc: Any) -> str:
    digest = str(desc.get("digest", "")) if isinstance(desc, dict) else ""
    alg, _, hexdigest = digest.partition(":")
    return f"blobs/{alg}/{hexdigest}"


def _removes(marker: str, path: str) -> bool:
    folder, _, name = marker.rpartition("/")
    prefix = folder + "/" if folder else ""
    if name == OPAQUE:
        return path.startswith(prefix)
    victim = prefix + name[len(WHITEOUT) :]
    return path == victim or path.startswith(victim + "/")
