"""Container images: ``docker save`` tarballs and OCI image layouts.

Every layer is an ordinary nested tar, so the engine already opens each one and scans
it. What an image adds is order: a file deleted by a later layer's whiteout is gone from
the running container but still shipped in the earlier layer's blob. ``ImageAssembler``
watches one container level, learns the layer order from ``manifest.json`` or
``index.json``, and afterwards tells which findings sit in which layer and which were
whited out later.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
_SMALL = 1024 * 1024


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
            member.startswith("blobs/") and data[:1] == b"{"
        ):
            try:
                self.documents[member] = json.loads(bytes(data))
            except (ValueError, UnicodeDecodeError):
                pass

    def note_whiteout(self, layer_member: str, path: str) -> None:
        self.whiteouts.setdefault(layer_member, []).append(path)

    def layers(self) -> list[str]:
        """Layer member paths, bottom layer first; empty when this is not an image."""
        manifest = self.documents.get("manifest.json")
        if isinstance(manifest, list) and manifest and isinstance(manifest[0], dict):
            layers = manifest[0].get("Layers")
            if isinstance(layers, list):
                return [str(x) for x in layers]
        index = self.documents.get("index.json")
        if isinstance(index, dict) and "oci-layout" in self.documents:
            return self._oci_layers(index)
        return []

    def _oci_layers(self, index: dict) -> list[str]:
        for desc in index.get("manifests") or []:
            doc = self.documents.get(_blob(desc))
            if isinstance(doc, dict) and "manifests" in doc:  # nested index
                return self._oci_layers(doc)
            if isinstance(doc, dict) and isinstance(doc.get("layers"), list):
                return [_blob(layer) for layer in doc["layers"]]
        return []

    def deleted_by(self, layers: list[str], layer_index: int, path: str) -> int | None:
        """Index of the first later layer whose whiteout removes ``path``, if any."""
        for later in range(layer_index + 1, len(layers)):
            for marker in self.whiteouts.get(layers[later], ()):
                if _removes(marker, path):
                    return later
        return None


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
