"""The zip family: plain zip, wheel, fat jar with nested jars, VS Code extension."""

from __future__ import annotations

import io
import stat
import zipfile
import zlib
from pathlib import Path

import pytest
from builders import (
    FIRST_PARTY_MAP,
    RawMember,
    found,
    listing,
    raw_zip,
    scan_path,
    write_tree,
    zip_bytes,
)

from seawall.artifacts.base import RatioGuard, read_head
from seawall.limits import LimitExceeded, Limits

EMBEDDED = "sourcemap.embedded-source"


def test_wheel(tmp_path: Path) -> None:
    wheel = zip_bytes(
        {
            "demo/__init__.py": b"",
            "demo/static/app.js.map": FIRST_PARTY_MAP,
            "demo-1.0.dist-info/RECORD": b"",
        }
    )
    root = write_tree({"dist/demo-1.0-py3-none-any.whl": wheel}, tmp_path / "t")
    assert found(scan_path(root)) == [
        (EMBEDDED, "dist/demo-1.0-py3-none-any.whl!/demo/static/app.js.map")
    ]


def test_fat_jar_with_nested_jars(tmp_path: Path) -> None:
    dependency = zip_bytes(
        {
            "META-INF/MANIFEST.MF": b"Manifest-Version: 1.0\n",
            "META-INF/resources/dep.js.map": FIRST_PARTY_MAP,
        }
    )
    jar = zip_bytes(
        {
            "META-INF/MANIFEST.MF": b"Main-Class: org.springframework.boot.loader.JarLauncher\n",
            "BOOT-INF/classes/application.properties": b"spring.datasource.password=hunter2\n",
            "BOOT-INF/classes/static/main.js.map": FIRST_PARTY_MAP,
            "BOOT-INF/lib/dep-1.0.jar": dependency,
        },
        compression=zipfile.ZIP_STORED,
    )  # Spring Boot stores nested jars uncompressed
    root = write_tree({"app.jar": jar}, tmp_path / "t")
    assert found(scan_path(root)) == [
        (EMBEDDED, "app.jar!/BOOT-INF/classes/static/main.js.map"),
        (EMBEDDED, "app.jar!/BOOT-INF/lib/dep-1.0.jar!/META-INF/resources/dep.js.map"),
    ]
    assert "app.jar!/BOOT-INF/classes/application.properties" in listing(root)


def test_vsix(tmp_path: Path) -> None:
    vsix = zip_bytes(
        {
            "extension.vsixmanifest": b"<PackageManifest/>",
            "[Content_Types].xml": b"<Types/>",
            "extension/package.json": b"{}",
            "extension/out/extension.js.map": FIRST_PARTY_MAP,
        }
    )
    root = write_tree({"demo-0.1.0.vsix": vsix}, tmp_path / "t")
    assert found(scan_path(root)) == [(EMBEDDED, "demo-0.1.0.vsix!/extension/out/extension.js.map")]
    assert listing(root)[:3] == [
        "demo-0.1.0.vsix",
        "demo-0.1.0.vsix!/extension.vsixmanifest",
        "demo-0.1.0.vsix!/[Content_Types].xml",
    ]


def _stored(
    name: str, data: bytes, *, method: int = zipfile.ZIP_STORED, flags: int = 0
) -> RawMember:
    return RawMember(name, data, zlib.crc32(data), len(data), method=method, flags=flags)


def test_encrypted_member_is_unscanned_and_the_rest_is_scanned(tmp_path: Path) -> None:
    target = tmp_path / "a.zip"
    target.write_bytes(
        raw_zip(
            [_stored("secret.txt", b"\x00" * 40, flags=0x1), _stored("app.js.map", FIRST_PARTY_MAP)]
        )
    )
    result = scan_path(target)
    assert found(result) == [(EMBEDDED, "app.js.map"), ("anomaly.unscanned", "secret.txt")]
    assert result.errors == []


def test_unsupported_compression_is_unscanned(tmp_path: Path) -> None:
    target = tmp_path / "a.zip"
    member = _stored("data.bin", b"opaque", method=99)  # 99: WinZip AES
    target.write_bytes(raw_zip([member]))
    result = scan_path(target)
    assert found(result) == [("anomaly.unscanned", "data.bin")]
    assert "unsupported zip compression" in result.findings[0].message


def test_corrupt_zip_is_an_error(tmp_path: Path) -> None:
    target = tmp_path / "broken.zip"
    target.write_bytes(zip_bytes({"a.txt": b"a" * 100})[:-30])  # end of central directory cut off
    result = scan_path(target)
    assert found(result) == [("anomaly.corrupt", "broken.zip")]
    assert result.errors and result.errors[0].startswith(
        "broken.zip: corrupt or unreadable: not a readable zip"
    )


def test_damaged_member_does_not_stop_the_others(tmp_path: Path) -> None:
    good = _stored("b.js.map", FIRST_PARTY_MAP)
    bad = _stored("a.txt", b"some text")
    bad.crc ^= 1
    target = tmp_path / "a.zip"
    target.write_bytes(raw_zip([bad, good]))
    result = scan_path(target)
    assert found(result) == [(EMBEDDED, "b.js.map"), ("anomaly.corrupt", "a.txt")]
    assert result.errors == ["a.txt: corrupt or unreadable: Bad CRC-32 for file 'a.txt'"]


def test_symlinks_and_names_that_escape(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        link = zipfile.ZipInfo("pkg/link")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "../../etc/passwd")
        inside = zipfile.ZipInfo("pkg/ok")
        inside.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(inside, "../pkg/file.txt")
        zf.writestr("../evil.txt", b"x")
        zf.writestr("/abs.txt", b"x")
    target = tmp_path / "links.zip"
    target.write_bytes(buf.getvalue())
    result = scan_path(target)
    assert found(result) == [
        ("anomaly.path-traversal", "../evil.txt"),
        ("anomaly.absolute-path", "/abs.txt"),
        ("anomaly.link-outside", "pkg/link"),
    ]
    assert result.findings[2].evidence == {"link": "../../etc/passwd"}


def test_declared_bomb_is_refused_without_inflating(tmp_path: Path) -> None:
    # 64 MiB declared in a few hundred bytes: refused from the sizes alone.
    stream = zlib.compressobj(9, zlib.DEFLATED, -15)
    payload = stream.compress(bytes(64 << 20)) + stream.flush()
    target = tmp_path / "bomb.zip"
    target.write_bytes(raw_zip([RawMember("zeros", payload, 0, 64 << 20)]))  # CRC never reached
    result = scan_path(target)
    assert found(result) == [("anomaly.bomb", "zeros")]
    assert "not inflated" in result.findings[0].message


def test_ratio_is_measured_against_the_bytes_a_member_occupies(tmp_path: Path) -> None:
    # The member claims 40 MiB of compressed data (a harmless 1.6:1) but the archive is
    # tiny: the physical span, not the declaration, decides.
    stream = zlib.compressobj(9, zlib.DEFLATED, -15)
    payload = stream.compress(bytes(64 << 20)) + stream.flush()
    target = tmp_path / "liar.zip"
    target.write_bytes(raw_zip([RawMember("zeros", payload, 0, 64 << 20, compress_size=40 << 20)]))
    assert found(scan_path(target)) == [("anomaly.bomb", "zeros")]


def test_ratio_guard_stops_a_stream_and_stays_stopped() -> None:
    limits = Limits(ratio_floor_bytes=1 << 20, max_ratio=10)
    guard = RatioGuard(io.BytesIO(bytes(4 << 20)), lambda: 1000, limits, "x")
    assert len(read_head(guard, 1 << 20)) == 1 << 20  # at the floor: not judged yet
    with pytest.raises(LimitExceeded, match="expands more than 10:1"):
        guard.read(1)
    with pytest.raises(LimitExceeded):
        guard.read(1)
    unbounded = RatioGuard(io.BytesIO(bytes(4 << 20)), lambda: 1000, limits, "x")
    with pytest.raises(LimitExceeded):
        unbounded.read()  # "read everything" is read in pieces, each one judged


def test_damaged_symlink_member_is_corrupt_not_special(tmp_path: Path) -> None:
    link = _stored("pkg/link", b"../target")
    link.crc ^= 1
    raw = bytearray(raw_zip([link]))
    external = raw.rindex(b"PK\x01\x02") + 38  # the central directory's external attributes
    raw[external : external + 4] = ((stat.S_IFLNK | 0o777) << 16).to_bytes(4, "little")
    target = tmp_path / "link.zip"
    target.write_bytes(bytes(raw))
    result = scan_path(target)
    assert found(result) == [("anomaly.corrupt", "pkg/link")]
    assert result.errors[0].startswith("pkg/link: unreadable link target: Bad CRC-32")


def test_member_with_an_empty_name(tmp_path: Path) -> None:
    # zipfile's ZipInfo.is_dir() raises IndexError on it; the opener must not.
    target = tmp_path / "nameless.zip"
    target.write_bytes(raw_zip([_stored("", b"x"), _stored("b.js.map", FIRST_PARTY_MAP)]))
    result = scan_path(target)
    assert found(result) == [(EMBEDDED, "b.js.map")]
    assert result.errors == [] and result.files == 5  # the zip, "", the map, its two sources
