"""Containers inside containers: paths name every level; depth is limited, never fatal."""

from __future__ import annotations

from pathlib import Path

import pytest
from builders import FIRST_PARTY_MAP, compress, found, listing, scan_path, tar_bytes, zip_bytes

from seawall.limits import MAX_DEPTH_CEILING, Limits

EMBEDDED = "sourcemap.embedded-source"


@pytest.fixture
def three_levels(tmp_path: Path) -> Path:
    """A tgz holding a zip holding a jar holding a properties file and a map."""
    jar = zip_bytes(
        {
            "META-INF/MANIFEST.MF": b"Manifest-Version: 1.0\n",
            "app.properties": b"db.password=hunter2\n",
            "app.js.map": FIRST_PARTY_MAP,
        }
    )
    tgz = compress(
        tar_bytes(
            {"package/package.json": b"{}", "package/lib/a.zip": zip_bytes({"inner.jar": jar})}
        ),
        "gz",
    )
    target = tmp_path / "demo-1.0.0.tgz"
    target.write_bytes(tgz)
    return target


def test_three_levels_deep(three_levels: Path) -> None:
    result = scan_path(three_levels)
    assert found(result) == [(EMBEDDED, "package/lib/a.zip!/inner.jar!/app.js.map")]
    assert listing(three_levels) == [
        "package/package.json",
        "package/lib/a.zip",
        "package/lib/a.zip!/inner.jar",
        "package/lib/a.zip!/inner.jar!/META-INF/MANIFEST.MF",
        "package/lib/a.zip!/inner.jar!/app.properties",
        "package/lib/a.zip!/inner.jar!/app.js.map",
        "package/lib/a.zip!/inner.jar!/app.js.map!/src/utils/crypto.ts",
        "package/lib/a.zip!/inner.jar!/app.js.map!/src/main.ts",
    ]


def test_depth_limit_is_a_finding_not_a_crash(three_levels: Path) -> None:
    result = scan_path(three_levels, max_depth=2)
    assert found(result) == [("anomaly.limit", "package/lib/a.zip!/inner.jar")]
    assert result.findings[0].evidence == {"limit": "max_depth"}
    assert result.errors == []


def _onion(levels: int) -> bytes:
    """A map gzip'd ``levels`` times: every level a forward-only stream over the one above."""
    data = FIRST_PARTY_MAP
    for _ in range(levels):
        data = compress(data, "gz")
    return data


def _onion_path(members: int) -> str:
    """``onion!/onion.decompressed!/onion.decompressed.decompressed...``: a gzip member
    without a known suffix is named after its container plus ``.decompressed``."""
    return "!/".join("onion" + ".decompressed" * i for i in range(members))


def test_nesting_at_the_ceiling_stays_within_the_interpreter_stack(tmp_path: Path) -> None:
    # Every level adds engine frames and a stream wrapper to each read: the ceiling on
    # max_depth is what keeps that below Python's recursion limit. (The map is itself
    # a container, opened one level further down.)
    target = tmp_path / "onion.gz"
    target.write_bytes(_onion(MAX_DEPTH_CEILING - 1))
    result = scan_path(target, max_depth=MAX_DEPTH_CEILING)
    assert found(result) == [(EMBEDDED, _onion_path(MAX_DEPTH_CEILING - 1))]
    assert result.errors == []


def test_default_depth_stops_an_onion(tmp_path: Path) -> None:
    target = tmp_path / "onion.gz"
    target.write_bytes(_onion(MAX_DEPTH_CEILING - 1))
    result = scan_path(target)
    depth = Limits().max_depth
    assert found(result) == [("anomaly.limit", _onion_path(depth))]
    assert result.findings[0].evidence == {"limit": "max_depth"}


def test_max_depth_has_a_ceiling() -> None:
    with pytest.raises(ValueError, match="cannot exceed"):
        Limits(max_depth=MAX_DEPTH_CEILING + 1)
    with pytest.raises(ValueError, match="positive integer"):
        Limits.from_mapping({"max-entries": 0})
