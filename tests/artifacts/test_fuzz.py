"""Mutated artifacts: whatever the bytes, a scan returns, promptly, without an internal error.

Seeded, so a failure names a reproducible case: ``(format, seed)``.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from builders import (
    FIRST_PARTY_MAP,
    asar_bytes,
    compress,
    docker_save,
    opener_engine,
    tar_bytes,
    zip_bytes,
)

from seawall.engine import Target

TREE = {
    "package/package.json": b'{"name":"demo"}',
    "package/dist/cli.js": b"run()\n//# sourceMappingURL=cli.js.map\n",
    "package/dist/cli.js.map": FIRST_PARTY_MAP,
    "package/lib/inner.zip": zip_bytes({"a.js.map": FIRST_PARTY_MAP}),
}

SEEDS: dict[str, bytes] = {
    "tgz": compress(tar_bytes(TREE), "gz"),
    "tar": tar_bytes(TREE),
    "tar.zst": compress(tar_bytes(TREE), "zst"),
    "zip": zip_bytes(TREE),
    "asar": asar_bytes(TREE),
    "map": FIRST_PARTY_MAP,
    "image.tar": docker_save([TREE, {"package/dist/.wh.cli.js.map": b""}]),
}
CASES_PER_FORMAT = 30


def mutate(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        kind = rng.randrange(5)
        at = rng.randrange(len(out) or 1)
        if kind == 0:  # flip bytes
            for i in range(at, min(at + rng.randint(1, 8), len(out))):
                out[i] = rng.randrange(256)
        elif kind == 1:  # cut
            del out[at:]
        elif kind == 2:  # insert noise
            out[at:at] = rng.randbytes(rng.randint(1, 64))
        elif kind == 3:  # repeat a slice
            out[at:at] = out[at : at + rng.randint(1, 512)] * rng.randint(1, 4)
        else:  # boundary values where sizes and offsets live
            out[at : at + 4] = rng.choice(
                [b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", b"\x7f\xff\xff\xff"]
            )
    return bytes(out)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("fmt", SEEDS)
def test_mutated_artifacts_never_break_the_scan(tmp_path: Path, fmt: str) -> None:
    engine = opener_engine()
    for seed in range(CASES_PER_FORMAT):
        target = tmp_path / f"case{seed}.{fmt}"
        target.write_bytes(mutate(SEEDS[fmt], random.Random(f"{fmt}/{seed}")))
        result = engine.scan_target(Target(target.name, target))
        internal = [e for e in result.errors if "internal error" in e or "failed:" in e]
        assert internal == [], (fmt, seed, internal)
        assert all(f.fingerprint for f in result.findings)
