"""Hostile input is the normal case: bombs, escapes, damage and limits. Each one ends in
findings and errors, never in a traceback, a hang, a file written or memory exhausted."""

from __future__ import annotations

import os
import resource
import tarfile
import tracemalloc
import zlib
from pathlib import Path

import pytest
from builders import (
    FIRST_PARTY_MAP,
    GiB,
    MiB,
    RawMember,
    compress,
    file_info,
    found,
    opener_engine,
    raw_zip,
    scan_path,
    special_info,
    pack,
    tar_bytes,
    tar_of,
    tgz_bomb,
    write_tree,
    zeros_deflate,
    zip_bomb,
    zip_bytes,
)

from seawall.artifacts.tar import MAX_EXTENDED_HEADER
from seawall.engine import Target, TargetResult

EMBEDDED = "sourcemap.embedded-source"


def _measured(path: Path) -> tuple[TargetResult, int]:
    """Scan, and return the result and the peak of traced memory.

    Speed is a benchmark's business; here a hang is caught by the timeout marks."""
    tracemalloc.start()
    try:
        result = scan_path(path)
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.timeout(60)
def test_zip_bomb_of_one_gib(tmp_path: Path) -> None:
    target = tmp_path / "bomb.zip"
    target.write_bytes(zip_bomb(GiB))
    assert target.stat().st_size < 2 * MiB
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result, peak = _measured(target)
    assert found(result) == [("anomaly.bomb", "zeros.bin")]
    assert result.findings[0].evidence == {"limit": "max_ratio"}
    assert peak < 64 * MiB
    assert (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) * 1024 < 256 * MiB


@pytest.mark.timeout(60)
def test_gzip_bomb_in_a_tarball(tmp_path: Path) -> None:
    target = tmp_path / "bomb.tgz"
    target.write_bytes(tgz_bomb(GiB, before={"package/a.js.map": FIRST_PARTY_MAP}))
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result, peak = _measured(target)
    # The gzip stream is the bomb: it is reported once, on the tarball, and what came
    # before it was scanned.
    assert found(result) == [(EMBEDDED, "package/a.js.map"), ("anomaly.bomb", "bomb.tgz")]
    assert "decompression stopped" in result.findings[1].message
    assert peak < 128 * MiB
    assert (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) * 1024 < 256 * MiB


def test_many_small_bombs_are_caught_for_the_whole_target(tmp_path: Path) -> None:
    # Each member stays under the per-stream floor; together they expand 2000:1.
    stream, crc = zeros_deflate(2 * MiB)
    target = tmp_path / "many.zip"
    target.write_bytes(raw_zip([RawMember(f"z{i}", stream, crc, 2 * MiB) for i in range(20)]))
    result = scan_path(target, ratio_floor_bytes=8 * MiB)
    assert found(result) == [("anomaly.bomb", "z4")]
    assert result.findings[0].message.startswith("the target expands more than 200:1 overall")


def test_gzip_bomb_nested_in_a_zip_is_blamed_on_its_own_stream(tmp_path: Path) -> None:
    inner = tgz_bomb(64 * MiB)
    target = tmp_path / "outer.zip"
    target.write_bytes(zip_bytes({"a/inner.tgz": inner, "b.js.map": FIRST_PARTY_MAP}))
    result = scan_path(target)
    assert found(result) == [(EMBEDDED, "b.js.map"), ("anomaly.bomb", "a/inner.tgz")]


def test_escaping_members_are_reported_and_nothing_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    members = [
        file_info("../evil", b"planted"),
        file_info("/etc/passwd", b"root::0:0::/:/bin/sh\n"),
        special_info("package/shadow", tarfile.SYMTYPE, "../../etc/shadow"),
        special_info("package/abs", tarfile.SYMTYPE, "/etc/shadow"),
        special_info("package/ok", tarfile.SYMTYPE, "../package/index.js"),
        special_info("package/hard", tarfile.LNKTYPE, "../outside"),
        special_info("package/hard-ok", tarfile.LNKTYPE, "package/index.js"),
        special_info("package/fifo", tarfile.FIFOTYPE),
        special_info("package/tty", tarfile.CHRTYPE),
        file_info("package/index.js", b"module.exports = 1;\n"),
    ]
    work = tmp_path / "work"
    work.mkdir()
    target = work / "evil.tar"
    target.write_bytes(tar_of(members, format=tarfile.GNU_FORMAT))
    monkeypatch.chdir(work)  # where "../evil" would land, relative to an extractor
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    result = scan_path(target)
    assert found(result) == [
        ("anomaly.path-traversal", "../evil"),
        ("anomaly.absolute-path", "/etc/passwd"),
        ("anomaly.link-outside", "package/abs"),
        ("anomaly.link-outside", "package/hard"),
        ("anomaly.link-outside", "package/shadow"),
        ("anomaly.special-file", "package/fifo"),
        ("anomaly.special-file", "package/tty"),
    ]
    assert result.errors == []
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    assert not (tmp_path / "evil").exists()


def test_directory_links_and_fifos_are_never_followed_or_opened(tmp_path: Path) -> None:
    outside = write_tree({"secret.js.map": FIRST_PARTY_MAP}, tmp_path / "outside")
    root = write_tree({"pkg/index.js": b"x()\n"}, tmp_path / "t")
    (root / "pkg" / "leak").symlink_to(outside / "secret.js.map")
    (root / "pkg" / "dir").symlink_to(outside)
    os.mkfifo(root / "pkg" / "pipe")
    result = scan_path(root)
    assert found(result) == [
        ("anomaly.link-outside", "pkg/dir"),
        ("anomaly.link-outside", "pkg/leak"),
        ("anomaly.special-file", "pkg/pipe"),
    ]


def test_a_fifo_named_as_the_target_does_not_hang(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    result = scan_path(tmp_path / "pipe")
    assert result.errors == ["pipe: cannot read: not a regular file"]


def _truncated_tgz(tmp_path: Path) -> Path:
    tree = {
        "package/a.js.map": FIRST_PARTY_MAP,
        "package/blob.bin": os.urandom(256 * 1024),
        "package/z.js.map": FIRST_PARTY_MAP,
    }
    data = compress(tar_bytes(tree), "gz")
    target = tmp_path / "cut.tgz"
    target.write_bytes(data[: len(data) // 2])
    return target


def test_truncated_gzip_keeps_what_came_before_and_is_an_error(tmp_path: Path) -> None:
    result = scan_path(_truncated_tgz(tmp_path), name="npm:demo@1.0.0")
    assert found(result) == [(EMBEDDED, "package/a.js.map"), ("anomaly.corrupt", "cut.tgz")]
    # The error names the target as the user named it; the finding's path stays the
    # file's own name, so that its fingerprint does not change from one version to the next.
    message = "Compressed file ended before the end-of-stream marker was reached"
    assert result.errors == [f"npm:demo@1.0.0: truncated or corrupt: {message}"]


def test_damaged_tar_header_in_the_middle_is_not_a_clean_end(tmp_path: Path) -> None:
    raw = bytearray(
        tar_bytes(
            {"a.js.map": FIRST_PARTY_MAP, "b.txt": b"b", "c.js.map": FIRST_PARTY_MAP},
            format=tarfile.USTAR_FORMAT,
        )
    )
    second = 512 + len(FIRST_PARTY_MAP) + (-len(FIRST_PARTY_MAP) % 512)
    raw[second + 148] ^= 0x01  # the checksum of b.txt's header
    target = tmp_path / "bad.tar"
    target.write_bytes(bytes(raw))
    result = scan_path(target)
    assert found(result) == [(EMBEDDED, "a.js.map"), ("anomaly.corrupt", "bad.tar")]
    assert result.errors[0].startswith("bad.tar: corrupt or unreadable: damaged member header")


def test_tar_ending_inside_a_header_is_truncated(tmp_path: Path) -> None:
    raw = tar_bytes({"a.js.map": FIRST_PARTY_MAP, "b.txt": b"b"}, format=tarfile.USTAR_FORMAT)
    second = 512 + len(FIRST_PARTY_MAP) + (-len(FIRST_PARTY_MAP) % 512)
    target = tmp_path / "cut.tar"
    target.write_bytes(raw[: second + 200])
    result = scan_path(target)
    assert found(result) == [(EMBEDDED, "a.js.map"), ("anomaly.corrupt", "cut.tar")]
    assert "truncated" in result.errors[0]


@pytest.mark.timeout(30)
def test_pax_header_built_to_backtrack_is_refused_quickly(tmp_path: Path) -> None:
    # CVE-2024-6232: CPython < 3.11.10 parses this in time quadratic in the digits.
    pax = tarfile.TarInfo("././@PaxHeader")
    pax.type = tarfile.XHDTYPE
    body = b"1" * 300_000
    target = tmp_path / "redos.tgz"
    members = [
        file_info("a.js.map", FIRST_PARTY_MAP),
        (_sized(pax, len(body)), body),
        file_info("b", b"b"),
    ]
    target.write_bytes(compress(tar_of(members, format=tarfile.USTAR_FORMAT), "gz"))
    result = scan_path(target)
    assert found(result) == [(EMBEDDED, "a.js.map"), ("anomaly.corrupt", "redos.tgz")]
    assert "run of 65+ digits" in result.errors[0]


def test_oversized_long_name_is_refused_before_it_is_read(tmp_path: Path) -> None:
    longname = tarfile.TarInfo("././@LongLink")
    longname.type = tarfile.GNUTYPE_LONGNAME
    body = b"n" * (MAX_EXTENDED_HEADER + 1)
    target = tmp_path / "long.tgz"
    target.write_bytes(
        compress(
            tar_of(
                [(_sized(longname, len(body)), body), file_info("x", b"x")],
                format=tarfile.USTAR_FORMAT,
            ),
            "gz",
        )
    )
    result = scan_path(target)
    assert found(result) == [("anomaly.corrupt", "long.tgz")]
    assert "extended header of 1,048,577 bytes" in result.errors[0]


def _sized(info: tarfile.TarInfo, size: int) -> tarfile.TarInfo:
    info.size = size
    return info


def test_corrupt_member_in_a_good_tar_and_other_targets(tmp_path: Path) -> None:
    good = {
        "package/a.js.map": FIRST_PARTY_MAP,
        "package/bad.gz": b"\x1f\x8b\x08\x00" + os.urandom(200),
        "package/bad.zip": b"PK\x03\x04" + os.urandom(200),
        "package/z.js.map": FIRST_PARTY_MAP,
    }
    first = tmp_path / "t1.tar"
    first.write_bytes(tar_bytes(good))
    second = tmp_path / "t2.tgz"
    second.write_bytes(b"\x1f\x8b\x08\x00garbage")
    third = tmp_path / "t3.tgz"
    third.write_bytes(compress(tar_bytes({"package/c.js.map": FIRST_PARTY_MAP}), "gz"))
    results = opener_engine().scan([Target("t1", first), Target("t2", second), Target("t3", third)])
    t1, t2, t3 = results.targets
    assert found(t1) == [
        (EMBEDDED, "package/a.js.map"),
        (EMBEDDED, "package/z.js.map"),
        ("anomaly.corrupt", "package/bad.gz"),
        ("anomaly.corrupt", "package/bad.zip"),
    ]
    assert [e.split(":")[0] for e in t1.errors] == ["package/bad.gz", "package/bad.zip"]
    assert found(t2) == [("anomaly.corrupt", "t2.tgz")] and len(t2.errors) == 1
    assert found(t3) == [(EMBEDDED, "package/c.js.map")] and t3.errors == []
    assert results.has_errors


def test_entry_count_limit(tmp_path: Path) -> None:
    target = tmp_path / "many.tar"
    target.write_bytes(tar_bytes({f"f{i}.txt": b"x" for i in range(10)}))
    result = scan_path(target, max_entries=3)
    assert found(result) == [("anomaly.limit", "f3.txt")]
    assert result.findings[0].evidence == {"limit": "max_entries"}
    assert result.files == 3 and result.errors == []


def test_total_bytes_limit(tmp_path: Path) -> None:
    target = tmp_path / "big.tar"
    target.write_bytes(tar_bytes({f"f{i}.bin": os.urandom(600) for i in range(5)}))
    result = scan_path(target, max_total_bytes=1000)
    assert found(result) == [("anomaly.limit", "f1.bin")]
    assert result.findings[0].evidence == {"limit": "max_total_bytes"}


def test_file_bytes_limit_marks_the_member_unscanned(tmp_path: Path) -> None:
    target = tmp_path / "big.tgz"
    target.write_bytes(compress(tar_bytes({"big.js": b"x" * 5000, "small.js": b"y"}), "gz"))
    result = scan_path(target, max_file_bytes=1000)
    assert found(result) == [("anomaly.unscanned", "big.js")]
    assert result.findings[0].evidence == {"limit": "max_file_bytes"}
    assert result.bytes == 1001  # the first 1,000 bytes of big.js, and small.js


def test_undecodable_and_control_character_names(tmp_path: Path) -> None:
    info, data = file_info("x", FIRST_PARTY_MAP)
    target = tmp_path / "names.tar"
    raw = bytearray(tar_of([(info, data)], format=tarfile.USTAR_FORMAT))
    raw[0:6] = b"a\xff\nb\x00\x00"
    raw[148:156] = b"        "
    raw[148:156] = b"%06o\0 " % sum(raw[:512])
    target.write_bytes(bytes(raw))
    result = scan_path(target)
    assert found(result) == [(EMBEDDED, "a\\xff\\x0ab")]
    assert result.findings[0].fingerprint  # encodable: a lone surrogate would have raised here


def test_zip_with_undecodable_utf8_name_is_corrupt_not_a_crash(tmp_path: Path) -> None:
    member = RawMember("ok", b"x", zlib.crc32(b"x"), 1, method=0, flags=0x800)
    raw = bytearray(raw_zip([member]))
    raw[raw.rindex(b"ok")] = 0xFF  # the central directory's copy of the name, now invalid UTF-8
    target = tmp_path / "names.zip"
    target.write_bytes(bytes(raw))
    result = scan_path(target)
    assert found(result) == [("anomaly.corrupt", "names.zip")]
    assert not any("internal error" in e for e in result.errors)


def test_traversal_inside_a_test_fixture_archive_is_low(tmp_path: Path) -> None:
    from seawall.findings import Severity

    fixture = tar_bytes({"../evil.py": b"x"})
    outer = pack({"pkg-1.0/tests/archives/traversal.tar": fixture, "pkg-1.0/lib/bad.tar": fixture},
                 "tgz", tmp_path)
    result = scan_path(outer)
    rated = {(f.rule, f.path, f.severity) for f in result.findings}
    assert rated == {
        ("anomaly.path-traversal", "pkg-1.0/tests/archives/traversal.tar!/../evil.py", Severity.LOW),
        ("anomaly.path-traversal", "pkg-1.0/lib/bad.tar!/../evil.py", Severity.HIGH),
    }
