"""Container images: docker save (legacy and Docker >= 25) and OCI layouts, as a tar and
as a directory. A file whited out by a later layer is still shipped in its layer's blob."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest
from builders import (
    FIRST_PARTY_MAP,
    blob_path,
    compress,
    docker_save,
    file_info,
    oci_layout,
    opener_engine,
    tar_bytes,
    tar_of,
    write_tree,
)

from seawall.artifacts.image import ImageAssembler
from seawall.engine import Target, TargetResult

EMBEDDED = "sourcemap.embedded-source"
BASE = {"app/dist/main.js.map": FIRST_PARTY_MAP, "app/dist/keep.js.map": FIRST_PARTY_MAP}
DELETE = {"app/dist/.wh.main.js.map": b""}
OPAQUE = {"app/dist/.wh..wh..opq": b"", "app/dist/new.js": b"x()\n"}


def _scan(path: Path) -> TargetResult:
    return opener_engine().scan_target(Target(path.name, path))


def _legacy(tmp_path: Path, layers: list[dict[str, bytes]]) -> tuple[Path, list[str]]:
    target = tmp_path / "image.tar"
    target.write_bytes(docker_save(layers))
    return target, [hashlib.sha256(tar_bytes(layer)).hexdigest() + "/layer.tar" for layer in layers]


def _oci_files(
    layers: list[dict[str, bytes]], **options: bool
) -> tuple[dict[str, bytes], list[str]]:
    files = oci_layout(layers, **options)
    compressed = options.get("compressed", True)
    names = [
        blob_path(compress(tar_bytes(layer), "gz") if compressed else tar_bytes(layer))
        for layer in layers
    ]
    return files, names


def _oci_dir(tmp_path: Path, layers: list[dict[str, bytes]]) -> tuple[Path, list[str]]:
    files, names = _oci_files(layers)
    return write_tree(files, tmp_path / "layout"), names


def _oci_tar(tmp_path: Path, layers: list[dict[str, bytes]]) -> tuple[Path, list[str]]:
    files, names = _oci_files(layers)
    target = tmp_path / "oci.tar"
    # skopeo's oci-archive order: blobs first, the index last; "./" prefixes as tar writes them
    target.write_bytes(tar_of([file_info("./" + name, data) for name, data in files.items()]))
    return target, names


def _docker25(tmp_path: Path, layers: list[dict[str, bytes]]) -> tuple[Path, list[str]]:
    files, names = _oci_files(layers, compressed=False, docker_manifest=True)
    target = tmp_path / "image.tar"
    target.write_bytes(tar_of([file_info(name, data) for name, data in files.items()]))
    return target, names


LAYOUTS: dict[str, Callable[[Path, list[dict[str, bytes]]], tuple[Path, list[str]]]] = {
    "docker-save": _legacy,
    "oci-dir": _oci_dir,
    "oci-tar": _oci_tar,
    "docker-25": _docker25,
}


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("marker", [DELETE, OPAQUE], ids=["whiteout", "opaque"])
def test_whited_out_file_is_still_reported_with_its_layer(
    tmp_path: Path, layout: str, marker: dict[str, bytes]
) -> None:
    target, layers = LAYOUTS[layout](tmp_path, [BASE, marker])
    result = _scan(target)
    evidence = {
        f.path: (f.rule, f.evidence.get("layer"), f.evidence.get("deleted_in_layer"))
        for f in result.findings
    }
    # A whiteout removes main.js.map; an opaque marker hides the whole folder below it.
    keep_deleted_in = None if marker is DELETE else 1
    expected = {
        f"{layers[0]}!/app/dist/main.js.map": (EMBEDDED, 0, 1),
        f"{layers[0]}!/app/dist/keep.js.map": (EMBEDDED, 0, keep_deleted_in),
    }
    assert evidence == expected
    assert result.errors == []
    assert result.meta["image_layers"] == 2
    assert all(f.evidence["layer_blob"] == layers[0] for f in result.findings)


def test_deletion_message_and_three_layers(tmp_path: Path) -> None:
    target, layers = _legacy(tmp_path, [BASE, {"app/other.txt": b"x"}, DELETE])
    result = _scan(target)
    [deleted] = [f for f in result.findings if f.evidence.get("deleted_in_layer") is not None]
    assert deleted.path == f"{layers[0]}!/app/dist/main.js.map"
    assert deleted.evidence["deleted_in_layer"] == 2
    assert deleted.message.endswith("(deleted in layer 2, still present in layer 0's blob)")


def test_file_readded_above_is_reported_in_both_layers(tmp_path: Path) -> None:
    target, _ = _legacy(tmp_path, [BASE, {**DELETE, "app/dist/main.js.map": FIRST_PARTY_MAP}])
    placed = sorted(
        (f.evidence["layer"], f.evidence.get("deleted_in_layer", -1), f.path.split("!/")[1])
        for f in _scan(target).findings
    )
    assert placed == [
        (0, -1, "app/dist/keep.js.map"),
        (0, 1, "app/dist/main.js.map"),
        (1, -1, "app/dist/main.js.map"),
    ]


def test_a_plain_tarball_with_whiteout_names_is_not_an_image(tmp_path: Path) -> None:
    target = tmp_path / "pkg.tar"
    # A non-empty ".wh." file outside an image is content: it is scanned, not skipped.
    target.write_bytes(tar_bytes({"package/.wh.cli.js.map": FIRST_PARTY_MAP}))
    result = _scan(target)
    assert [(f.rule, f.path, dict(f.evidence).get("layer")) for f in result.findings] == [
        (EMBEDDED, "package/.wh.cli.js.map", None)
    ]
    assert "image_layers" not in result.meta


def test_index_that_names_itself_does_not_loop() -> None:
    image = ImageAssembler()
    image.observe("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
    image.observe("index.json", b'{"manifests":[{"digest":"sha256:aa"}]}')
    image.observe("blobs/sha256/aa", b'{"manifests":[{"digest":"sha256:aa"}]}')
    image.observe("manifest.json", b"[" * 100_000)  # too deep for the decoder: ignored
    assert image.images() == []


def test_nested_index_and_several_images() -> None:
    image = ImageAssembler()
    image.observe("oci-layout", b"{}")
    image.observe("index.json", b'{"manifests":[{"digest":"sha256:ix"}]}')
    image.observe(
        "blobs/sha256/ix", b'{"manifests":[{"digest":"sha256:m1"},{"digest":"sha256:m2"}]}'
    )
    image.observe("blobs/sha256/m1", b'{"layers":[{"digest":"sha256:l1"},{"digest":"sha256:l2"}]}')
    image.observe("blobs/sha256/m2", b'{"layers":[{"digest":"sha256:l3"}]}')
    assert image.images() == [["blobs/sha256/l1", "blobs/sha256/l2"], ["blobs/sha256/l3"]]
