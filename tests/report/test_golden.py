"""Snapshots of what users see, for one artifact that trips every category.

Volatile parts (version, timing, temporary paths) are masked. To accept a deliberate
change: ``SEAWALL_UPDATE_GOLDEN=1 python -m pytest tests/report/test_golden.py``,
then read the diff before committing it.
"""

from __future__ import annotations

import json
import os
import re
import struct
from pathlib import Path

import pytest

from builders import pack, tar_bytes
from maps import FIRST_PARTY
from seawall import __version__
from seawall.detectors import catalogue
from seawall.policy import Policy
from seawall.report import REPORTERS
from seawall.scan import scan

GOLDEN = Path(__file__).parent / "golden"


def safetensors(n_floats: int) -> bytes:
    header = json.dumps({"w": {"dtype": "F32", "shape": [n_floats], "data_offsets": [0, 4 * n_floats]}})
    raw = header.encode()
    return struct.pack("<Q", len(raw)) + raw + b"\0" * (4 * n_floats)


TREE = {
    "package/package.json": b'{"name": "demo", "version": "1.0.0"}',
    "package/dist/index.js": b"module.exports = 1;\n//# sourceMappingURL=index.js.map\n",
    "package/dist/index.js.map": FIRST_PARTY,
    "package/.env": b"DEBUG=1\n",
    "package/CLAUDE.md": b"# Notes for the assistant\n",
    "package/model.bin": safetensors(300_000),
    "package/fixtures.tar": tar_bytes({"../escape.txt": b"x"}),
}


def masked(text: str, root: Path) -> str:
    text = text.replace(str(root), "<tmp>").replace(__version__, "<version>")
    return re.sub(r"in \d+\.\d s", "in <t> s", text)


@pytest.mark.parametrize("fmt", ["text", "json", "sarif", "markdown"])
def test_output_snapshot(fmt: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    target = pack(TREE, "tgz", tmp_path)
    report = scan([target.name], Policy())
    rendered = masked(REPORTERS[fmt](report, catalogue()), tmp_path)
    suffix = {"text": "txt", "markdown": "md"}.get(fmt, fmt)
    golden = GOLDEN / f"demo.{suffix}"
    if os.environ.get("SEAWALL_UPDATE_GOLDEN"):
        golden.write_text(rendered)
    assert rendered == golden.read_text()
