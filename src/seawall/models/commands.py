"""``seawall model``: inspect a weights file, fingerprint a base, compare a suspect.

Exit codes follow ``seawall scan``: 0 nothing to report, 1 the suspect is derived from
(or identical to) the base (``--fail-on`` moves the bar), 2 unreadable input or bad
arguments. Heavy imports (numpy, scipy, gguf) happen only here, behind a message naming
the extra to install.
"""

from __future__ import annotations

import json
import struct
import sys
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import click

FAIL_LEVELS = {"identical": 0, "derived": 1, "related": 2, "never": -1}
ORDER = {"identical": 0, "derived": 1, "related": 2, "independent": 3}


def _need_extra() -> None:
    try:
        import numpy  # noqa: F401
        import scipy  # noqa: F401
    except ImportError:
        click.echo("seawall model needs numpy and scipy: install 'seawall[models]'", err=True)
        sys.exit(2)


def _emit(text: str, output: Path | None) -> None:
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        _fail(f"{output}: cannot write ({exc.strerror or exc})")


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


@contextmanager
def _reading(path: Path) -> Iterator[None]:
    """Exit 2 naming ``path`` on any failure to read it, never with a traceback.

    Readers raise ``ModelError`` for what they check; this is the backstop for what they
    do not (a numpy or zip error on a hostile file), so it still fails closed, by name.
    """
    from seawall.models.tensors import ModelError

    try:
        yield
    except ModelError as exc:
        _fail(str(exc))
    except (OSError, ValueError, ArithmeticError, MemoryError, RecursionError, LookupError,
            TypeError, zipfile.BadZipFile, struct.error) as exc:
        _fail(f"{path}: unreadable ({type(exc).__name__}: {str(exc)[:200]})")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def model() -> None:
    """Inspect model weights and decide whether a published model derives from yours."""


@model.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--no-hashes", is_flag=True, help="Header only: skip reading tensor data.")
def inspect(file: Path, fmt: str, output: Path | None, no_hashes: bool) -> None:
    """Format, architecture hints, tensors, dtypes, parameters and canonical hashes."""
    _need_extra()
    from seawall.models.inspect import inspect_file

    with _reading(file):
        report = inspect_file(file, hashes=not no_hashes)
    text = json.dumps(report, indent=2) + "\n" if fmt == "json" else _inspect_text(report)
    _emit(text, output)


def _inspect_text(report: dict[str, Any]) -> str:
    skel = report["skeleton"]
    lines = [f"{report['file']}: {report['format']}, {report['tensors']} tensors, "
             f"{report['parameters']:,} parameters",
             "dtypes: " + ", ".join(f"{k} {v}" for k, v in report["dtypes"].items()),
             f"architecture: {skel['blocks']} blocks, d_model {skel['d_model']}, d_ff "
             f"{skel['d_ff']}, embedding {skel['embedding']}"]
    for hint, value in report.get("hints", {}).items():
        lines.append(f"{hint}: {value}")
    for t in report["tensor_list"]:
        digest = f"  sha256:{t['hash'][:16]}" if "hash" in t else ""
        lines.append(f"  {t['name']}  {t['dtype']}  {'x'.join(map(str, t['shape'])) or 'scalar'}"
                     f"{digest}")
    return "\n".join(lines) + "\n"


@model.command("fingerprint")
@click.argument("base", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the fingerprint (.swmf).")
def fingerprint_cmd(base: Path, out: Path) -> None:
    """Store what lineage needs, so the protected weights need not sit beside the suspect."""
    _need_extra()
    from seawall.models.fingerprint import fingerprint
    from seawall.models.readers import open_weights

    with _reading(base):
        with open_weights(base) as weights:
            fp = fingerprint(weights)
    try:
        fp.save(out)
    except OSError as exc:
        _fail(f"{out}: cannot write ({exc.strerror or exc})")
    click.echo(f"wrote {out}: {len(fp.tensors)} tensors, {fp.blocks} blocks, "
               f"{out.stat().st_size:,} bytes")


@model.command()
@click.argument("base", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("suspect", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["text", "json", "html"]), default="text",
              show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--fail-on", type=click.Choice(list(FAIL_LEVELS)), default="derived",
              show_default=True, help="Exit 1 when the verdict is at least this close.")
@click.option("--all-tiers", is_flag=True, help="Run every tier even when one is conclusive.")
def compare(base: Path, suspect: Path, fmt: str, output: Path | None, fail_on: str,
            all_tiers: bool) -> None:
    """Decide whether SUSPECT derives from BASE (a model file or a .swmf fingerprint)."""
    _need_extra()
    from seawall.models.fingerprint import Fingerprint, fingerprint, is_fingerprint
    from seawall.models.lineage import compare as run_compare
    from seawall.models.readers import open_weights
    from seawall.models.report import render

    with _reading(suspect):
        if is_fingerprint(suspect):
            _fail(f"{suspect}: a fingerprint can only be the base; the suspect must be a "
                  "model file (its units are matched in the base's basis)")
    with _reading(base):
        if is_fingerprint(base):
            base_fp = Fingerprint.load(base)
        else:
            with open_weights(base) as weights:
                base_fp = fingerprint(weights)
    with _reading(suspect):
        with open_weights(suspect) as weights:
            result = run_compare(base_fp, weights, all_tiers=all_tiers)
    _emit(render(result, fmt), output)
    level = FAIL_LEVELS[fail_on]
    sys.exit(1 if level >= 0 and ORDER[result.verdict] <= level else 0)
