"""``hunt --dask``: the same findings from a Dask cluster as from a local run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from builders import compress, tar_bytes, write_tree
from hunt.fixtures import BILLING_TS, PRIVATE, UNRELATED_JS, bundle
from seawall.cli import main

pytest.importorskip("tree_sitter")
distributed = pytest.importorskip("distributed")


@pytest.mark.timeout(60)
def test_dask_cluster_gives_the_local_findings(tmp_path: Path) -> None:
    runner = CliRunner()
    write_tree({k: v.encode() for k, v in PRIVATE.items()}, tmp_path / "private")
    index = tmp_path / "idx"
    assert runner.invoke(main, ["index", "add", str(tmp_path / "private"),
                                "--index", str(index)]).exit_code == 0
    targets = []
    for n, tree in enumerate([{"package/a.ts": BILLING_TS.encode()},
                              {"package/dist/b.js": bundle().encode()},
                              {"package/c.js": UNRELATED_JS.encode()}]):
        target = tmp_path / f"t{n}.tgz"
        target.write_bytes(compress(tar_bytes(tree), "gz"))
        targets.append(str(target))
    local = runner.invoke(main, ["hunt", *targets, "--index", str(index), "--format", "json"])
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        remote = runner.invoke(main, ["hunt", *targets, "--index", str(index),
                                      "--dask", cluster.scheduler_address, "--format", "json"])
    assert remote.exit_code == local.exit_code == 1, remote.output

    def comparable(text: str) -> list[tuple[str, str, str, str]]:
        return sorted((f["target"], f["path"], f["rule"], json.dumps(f["evidence"]))
                      for f in json.loads(text)["findings"])

    assert comparable(remote.output) == comparable(local.output)
    assert [f[:3] for f in comparable(local.output)] == [
        (targets[0], "", "leak.code-copy-artifact"),
        (targets[0], "package/a.ts", "leak.code-copy"),
        (targets[1], "", "leak.code-copy-artifact"),
        (targets[1], "package/dist/b.js", "leak.code-copy"),
        (targets[1], "package/dist/b.js", "leak.code-copy"),
    ]
