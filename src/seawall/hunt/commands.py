"""``seawall index`` and ``seawall hunt``: fingerprint private code once, find it anywhere.

``hunt`` is a ``scan`` with only the ``codecopy`` detector, so every target kind, every
report format and the exit codes are the scan's. Many targets (``--from-list``) run in
parallel processes, or on a Dask cluster (``--dask``); each worker loads the index once.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import click

from seawall.cli import _apply, _report, report_options

MAX_LIST = 1_000_000


def _need_extra() -> None:
    from seawall.hunt import HuntUnavailable, require

    try:
        require()
    except HuntUnavailable as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


def _open_index(path: Path) -> Any:
    from seawall.hunt.index import Index, IndexFormatError

    try:
        return Index.load(path)
    except IndexFormatError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


@click.group()
def index() -> None:
    """Build and inspect the fingerprint index of your private code (hashes, never text)."""


@index.command("add")
@click.argument("sources", nargs=-1, required=True)
@click.option("--index", "index_path", type=click.Path(dir_okay=False, path_type=Path),
              required=True, help="Index file to create or update.")
@click.option("--label", default=None,
              help="Name of this set of sources [default: the first SOURCE's name]. Adding a "
                   "label again replaces what it held.")
@click.option("--stoplist", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              default=None, help="Use this stoplist instead of the one shipped with seawall.")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path),
              envvar="SEAWALL_CACHE_DIR", help="Where registry downloads are cached.")
def index_add(sources: tuple[str, ...], index_path: Path, label: str | None,
              stoplist: Path | None, cache_dir: Path | None) -> None:
    """Fingerprint SOURCE... (folders, archives, source maps, npm:/pypi: specs) into the index.

    Files in TypeScript, JavaScript, Python, Go, Rust, Java, C and C++ are
    fingerprinted; files under node_modules/ (third-party code in a source map or a checkout) are left out.
    """
    _need_extra()
    from seawall.hunt.build import collect
    from seawall.hunt.index import Index, Packer
    from seawall.hunt import stoplist as stoplist_mod

    started = time.perf_counter()
    index_obj = _open_index(index_path) if index_path.exists() else Index()
    name = label or _default_label(sources[0])
    items = Packer()
    _, errors = collect(sources, cache_dir=cache_dir, packer=items)
    for error in errors:
        click.echo(f"error: {error}", err=True)
    if errors and not len(items):
        sys.exit(2)
    try:
        stop, info = stoplist_mod.load(str(stoplist) if stoplist else None)
    except (OSError, ValueError) as exc:
        click.echo(f"error: {stoplist}: unreadable stoplist: {exc}", err=True)
        sys.exit(2)
    info = {**info, "values": int(len(stop))}
    added = len(items)
    index_obj.replace_label(name, list(sources), items, stop, info)  # consumes items
    index_obj.save(index_path)
    summary = index_obj.info()
    click.echo(f"{index_path}: label {name!r}: {added} file(s) fingerprinted; index now "
               f"{summary['files']} file(s), {summary['kgrams']:,} k-grams, "
               f"{summary['shingles']:,} string shingles "
               f"({time.perf_counter() - started:.1f} s)", err=True)
    sys.exit(2 if errors else 0)


@index.command("info")
@click.argument("index_path", metavar="FILE", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
def index_info(index_path: Path, fmt: str) -> None:
    """Show what an index holds: format version, labels, files, fingerprints."""
    _need_extra()
    info = _open_index(index_path).info()
    if fmt == "json":
        click.echo(json.dumps(info, indent=2, sort_keys=True))
        return
    click.echo(f"{index_path}: seawall hunt index, format version {info['version']}")
    click.echo(f"  k-gram size {info['k']}, shingle size {info['shingle']}, "
               f"document-frequency cap {info['df_cap']}")
    click.echo(f"  {info['files']:,} file(s), {info['lines']:,} line(s), "
               f"{info['kgrams']:,} k-grams, {info['shingles']:,} string shingles, "
               f"{info['anchors']:,} anchors")
    if not info["prefilter"] and info["files"]:
        click.echo("  no anchors for some originals (added by format version 1): every "
                   "suspect is parsed; rebuild the index to hunt faster")
    for label, about in sorted(info["labels"].items()):
        click.echo(f"  label {label!r}: {about['files']:,} file(s) from "
                   f"{', '.join(about['sources'])}")
    packages = info["stoplist"].get("packages", [])
    click.echo(f"  stoplist: {info['stoplist'].get('values', 0):,} public fingerprints "
               f"from {len(packages)} package(s)")


def _default_label(source: str) -> str:
    return Path(source.rstrip("/")).name or source


@click.command(epilog="Exit status: 0 no copy found; 1 copies found (at or above --fail-on); "
                      "2 a target could not be read, or the index or arguments are wrong.")
@click.argument("targets", nargs=-1)
@click.option("--index", "index_path", type=click.Path(dir_okay=False, path_type=Path),
              required=True, help="Index built with `seawall index add`.")
@_apply(report_options)
@click.option("--from-list", "from_list", type=click.Path(dir_okay=False, path_type=Path),
              help="Also hunt every target named in this file (one per line; # comments).")
@click.option("--jobs", "-j", type=click.IntRange(min=0), default=1, show_default=True,
              help="Targets hunted at once in separate processes (0: one per core); with "
                   "one target, processes that share its files.")
@click.option("--dask", "dask_address", default=None, metavar="ADDRESS",
              help="Hunt on this Dask scheduler (tcp://host:8786) instead of locally; the "
                   "workers must read the index at the same path. Needs dask.distributed.")
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path),
              help="Config file (default: seawall.toml or [tool.seawall] in pyproject.toml).")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path),
              envvar="SEAWALL_CACHE_DIR", help="Where registry downloads are cached.")
def hunt(targets: tuple[str, ...], index_path: Path, fmt: str, output: Path | None,
         fail_on: str | None, baseline: Path | None, summary: Path | None,
         from_list: Path | None, jobs: int, dask_address: str | None, config: Path | None,
         cache_dir: Path | None) -> None:
    """Find your indexed private code in TARGET... (anything `seawall scan` accepts).

    Reports one leak.code-copy finding per (file, original) pair: the kind of copy
    (verbatim, renamed, transpiled, string-only), the coverage of both sides and the
    matched line ranges; and one leak.code-copy-artifact finding per target that counts
    the distinct originals found. A file that shares too few anchors (runs of member
    names, words of string literals) with every original is not parsed at all; an index
    made by format version 1 has none, and then every file is (docs/hunt.md).
    """
    from seawall.cli import _policy
    from seawall.policy import ConfigError

    _need_extra()
    specs = list(targets)
    if from_list is not None:
        specs += _read_list(from_list)
    if not specs:
        raise click.UsageError("name at least one TARGET or --from-list FILE")
    _open_index(index_path)  # a bad index is one clear error, not one per target
    try:
        policy = _policy(config, fail_on, baseline)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    from seawall.hunt.run import hunt_targets

    try:
        report = hunt_targets(specs, str(index_path.resolve()), policy, jobs=jobs,
                              dask_address=dask_address, cache_dir=cache_dir)
    except ImportError as exc:
        click.echo(f"error: --dask needs dask.distributed ({exc.name} is missing): "
                   "pip install 'seawall[dask]'", err=True)
        sys.exit(2)
    sys.exit(_report(report, fmt, output, summary))


def _read_list(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise click.UsageError(f"{path}: cannot read target list: {exc}") from None
    specs = [line.strip() for line in text.splitlines()]
    specs = [s for s in specs if s and not s.startswith("#")]
    if len(specs) > MAX_LIST:
        raise click.UsageError(f"{path}: more than {MAX_LIST:,} targets")
    return specs
