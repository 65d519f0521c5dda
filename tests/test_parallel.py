"""A target's files shared among processes give exactly what one process gives."""

from __future__ import annotations

import dataclasses
import os
import random
import re
from pathlib import Path
from typing import Any

import pytest

from builders import MiB, source_map, tar_bytes, write_tree, zip_bytes
from seawall import engine as engine_module
from seawall.detectors.base import all_detectors
from seawall.engine import Engine, Target, TargetResult
from seawall.limits import Limits
from seawall.policy import ConfigError, from_mapping
from seawall.secrets import rules as secret_rules

pytestmark = pytest.mark.skipif(engine_module._workers(2) == 1, reason="no fork on this platform")


def _token() -> str:
    """A GitHub token in the real format (valid checksum), from the rule's own examples."""
    [rule] = [r for r in secret_rules.load() if r.id == "secret.github-personal-access-token"]
    found = re.search(r"ghp_\w+", rule.examples["match"][0])
    assert found is not None
    return found.group()


def _filler(seed: int, size: int) -> bytes:
    """Plain source-like text that no rule reports."""
    words = ["const", "value", "return", "function", "item", "count", "=", ";", "(", ")"]
    rng = random.Random(seed)
    out, line = [], []
    total = 0
    while total < size:
        word = rng.choice(words)
        line.append(word)
        total += len(word) + 1
        if len(line) == 12:
            out.append(" ".join(line))
            line = []
    return ("\n".join(out) + "\n").encode()


def corpus(root: Path) -> Path:
    """Files whose findings depend on other files, spread across the whole tree so that
    any split puts related files in different processes."""
    token = _token()
    tree: dict[str, bytes] = {}
    for i in range(40):
        tree[f"a{i:02}/big.js"] = _filler(i, MiB // 4)
    # One secret in many places, first and last in the walk: one finding, every place.
    tree["a00/config.js"] = f'const token = "{token}";\n'.encode()
    tree["a39/config.js"] = f'const token = "{token}";\n'.encode()
    tree["z/late.py"] = f'TOKEN = "{token}"\n'.encode()
    # A script whose map is far away in the walk (present), and one whose map is missing.
    tree["a01/app.js"] = b"run();\n//# sourceMappingURL=../z/maps/app.js.map\n"
    tree["z/maps/app.js.map"] = source_map({"src/app.ts": "export const run = () => 1;\n"})
    tree["a02/lost.js"] = b"run();\n//# sourceMappingURL=lost.js.map\n"
    # A prompts/ folder whose files fall on both sides of any split.
    for i in range(30):
        tree[f"prompts/p{i:02}.md"] = b"You are a helpful assistant.\n"
    # A SavedModel whose graph and variables are far apart in the walk.
    tree["model/saved_model.pb"] = b"\x08\x01\x12\x0ameta graph"
    tree["model/variables/variables.index"] = b"\0" * 40
    tree["model/variables/variables.data-00000-of-00001"] = b"\0" * 1000
    # A nested archive with a leak, and a damaged one.
    tree["a20/bundle.tgz"] = pack_bytes({"package/.env": b"API_KEY=" + token.encode() + b"\n"})
    tree["a30/broken.zip"] = zip_bytes({"x.txt": b"x" * 100})[:-30]
    tree[".env"] = b"DEBUG=1\n"
    return write_tree(tree, root)


def pack_bytes(tree: dict[str, bytes]) -> bytes:
    import gzip

    return gzip.compress(tar_bytes(tree), mtime=0)


def _scan(path: Path, jobs: int, **kwargs: Any) -> TargetResult:
    return Engine(jobs=jobs, inventory=True, **kwargs).scan_target(Target("t", path=path))


def _same(serial: TargetResult, parallel: TargetResult) -> None:
    assert [dataclasses.asdict(f) for f in parallel.findings] == \
        [dataclasses.asdict(f) for f in serial.findings]
    assert (parallel.files, parallel.bytes, parallel.errors) == \
        (serial.files, serial.bytes, serial.errors)
    assert list(parallel.inventory.items()) == list(serial.inventory.items())


def test_every_detector_can_share_a_target() -> None:
    # A detector that cannot merge its state keeps every target in one process.
    assert {name for name, cls in all_detectors().items() if not cls.merges} == set()


@pytest.mark.parametrize("jobs", [2, 3, 5])
def test_parallel_walk_gives_the_serial_findings(tmp_path: Path, jobs: int) -> None:
    root = corpus(tmp_path)
    serial = _scan(root, 1)
    rules = {f.rule for f in serial.findings}
    # The corpus exercises every state that crosses files.
    assert {"secret.github-personal-access-token", "sourcemap.missing-map", "file.prompt-dir",
            "weights.savedmodel", "file.env", "anomaly.corrupt"} <= rules, rules
    [token] = [f for f in serial.findings if f.rule == "secret.github-personal-access-token"]
    assert [loc.path for loc in token.locations][:2] == ["a00/config.js", "a20/bundle.tgz!/package/.env"]
    [missing] = [f for f in serial.findings if f.rule == "sourcemap.missing-map"]
    assert missing.path == "a02/lost.js"
    chunks = engine_module._split(list(engine_module.walk_directory(root)), jobs)
    assert chunks is not None and len(chunks) == jobs
    _same(serial, _scan(root, jobs))


def test_a_worker_that_dies_has_its_share_walked_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = corpus(tmp_path)
    serial = _scan(root, 1)
    parent = os.getpid()
    walk = engine_module._Walk.walk

    def dying_walk(self: Any, *args: Any, **kwargs: Any) -> None:
        if os.getpid() != parent:
            os._exit(9)  # the worker is killed before it sends anything
        walk(self, *args, **kwargs)

    monkeypatch.setattr(engine_module._Walk, "walk", dying_walk)
    _same(serial, _scan(root, 2))


def test_limits_hold_across_workers(tmp_path: Path) -> None:
    root = corpus(tmp_path)
    total = _scan(root, 1).bytes
    limit = total // 2
    result = _scan(root, 2, limits=Limits(max_total_bytes=limit))
    stops = [f for f in result.findings if f.rule == "anomaly.limit"]
    assert stops and all(f.evidence["limit"] == "max_total_bytes" for f in stops)
    # Each process stops at the first file past the shared tally: at most one file each over.
    assert limit < result.bytes <= limit + 2 * (MiB // 4 + 1)

    few = _scan(root, 2, limits=Limits(max_entries=20))
    assert [f.evidence["limit"] for f in few.findings if f.rule == "anomaly.limit"][:1] == \
        ["max_entries"]
    assert few.files < 20


def test_split_is_balanced_and_declines_what_one_process_does_better(tmp_path: Path) -> None:
    from seawall.artifacts.base import Entry

    entries = [Entry(path=f"f{i}", size=size) for i, size in enumerate([4 * MiB, MiB, MiB, MiB, MiB])]
    chunks = engine_module._split(entries, 2)
    assert chunks is not None
    assert [[e.path for e in c] for c in chunks] == [["f0"], ["f1", "f2", "f3", "f4"]]
    assert engine_module._split(entries[:1], 2) is None  # one file
    assert engine_module._split([Entry(path="a", size=1000), Entry(path="b", size=1000)], 2) is None
    image = [Entry(path="oci-layout", size=30), *entries]
    assert engine_module._split(image, 2) is None  # layers are placed from the documents


def test_an_image_layout_folder_is_walked_in_one_process(tmp_path: Path) -> None:
    from builders import oci_layout

    token = _token()
    files = oci_layout([{"app/.env": f"GITHUB_TOKEN={token}\n".encode()},
                       {"app/big.bin": os.urandom(5 * MiB)}])
    layout = write_tree(files, tmp_path / "layout")
    serial, parallel = _scan(layout, 1), _scan(layout, 2)
    _same(serial, parallel)
    assert any(f.evidence.get("layer") == 0 for f in parallel.findings if f.category == "secret")


def test_jobs_in_config_and_on_the_command_line(tmp_path: Path) -> None:
    assert from_mapping({"jobs": 3}).jobs == 3
    assert from_mapping({}).jobs == 0
    with pytest.raises(ConfigError, match="jobs"):
        from_mapping({"jobs": -1})
    from click.testing import CliRunner

    from seawall.cli import main

    root = corpus(tmp_path)
    outputs = []
    for jobs in ("1", "2"):
        run = CliRunner().invoke(main, ["scan", str(root), "--format", "json", "-j", jobs])
        assert run.exit_code == 2, run.output  # the damaged zip
        outputs.append(run.output.split('"findings"', 1)[1])
    assert outputs[0] == outputs[1]


def big_map(token: str) -> bytes:
    """A bundler's map: third-party sources, then first-party ones with inline maps of
    their own, a secret early and late, over 4 MiB of embedded source."""
    import base64
    import json

    sources: dict[str, str] = {}
    for i in range(60):
        sources[f"../node_modules/lib{i:02}/index.js"] = _filler(100 + i, 40_000).decode()
    sources["../node_modules/lib00/config.js"] = f'const token = "{token}";\n'
    for i in range(60):
        inner = source_map({f"src/mod{i:02}.ts": f"export const n{i} = {i};\n"})
        inline = base64.b64encode(inner).decode()
        sources[f"../src/mod{i:02}.ts"] = (_filler(200 + i, 30_000).decode()
                                           + f"//# sourceMappingURL=data:application/json;"
                                             f"base64,{inline}\n")
    sources["../src/late.ts"] = f'export const token = "{token}";\n'
    body = json.loads(source_map(sources))
    return json.dumps(body).encode()


@pytest.mark.parametrize("as_folder", [False, True])
def test_a_big_source_map_is_shared_among_processes(
    tmp_path: Path, as_folder: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    fanned: list[bool] = []
    run_parallel = engine_module._Walk.run_parallel

    def recording(self: Any, chunks: Any, walk_chunk: Any = None, *, fresh: bool = False) -> None:
        fanned.append(fresh)
        run_parallel(self, chunks, walk_chunk, fresh=fresh)

    monkeypatch.setattr(engine_module._Walk, "run_parallel", recording)
    data = big_map(_token())
    path = tmp_path / "cli.js.map"
    if as_folder:
        path = tmp_path / "pkg" / "cli.js.map"
        write_tree({"cli.js.map": data, "cli.js": b"//# sourceMappingURL=cli.js.map\n"},
                   tmp_path / "pkg")
        target = tmp_path / "pkg"
    else:
        path.write_bytes(data)
        target = path
    serial = _scan(target, 1)
    [token] = [f for f in serial.findings if f.rule == "secret.github-personal-access-token"]
    assert [loc.path.rsplit("!/", 1)[-1] for loc in token.locations] == \
        ["node_modules/lib00/config.js", "src/late.ts"]
    # The map, its 122 sources, 60 inline maps and the 60 sources inside them.
    assert serial.files == 243 + as_folder
    assert fanned == []
    _same(serial, _scan(target, 2))
    assert True in fanned  # the map's sources were shared among processes
    _same(serial, _scan(target, 3))
