"""Command line: parse arguments, call the library, pick a reporter, set the exit code.

Exit codes: 0 nothing at or above ``--fail-on``; 1 findings at or above it; 2 a target
(or a member inside it) could not be read, or the arguments/config are wrong.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from typing import TYPE_CHECKING
from pathlib import Path

import click

from seawall import __version__
from seawall.diff import DEFAULT_GROWTH_RATIO
from seawall.findings import Severity
from seawall.policy import ConfigError, Policy, load, read_baseline, write_baseline
from seawall.results import Report

if TYPE_CHECKING:
    from seawall.engine import Target

SEVERITIES = [s.label for s in sorted(Severity, reverse=True)]
FORMATS = ["text", "json", "sarif", "markdown", "junit"]


PLUGINS = {
    "index": "seawall.hunt.commands:index",
    "hunt": "seawall.hunt.commands:hunt",
    "model": "seawall.models.commands:model",
    "watch": "seawall.watch.commands:watch",
    "serve": "seawall.watch.commands:serve",
}
"""Commands that live beside their library (module:attribute), imported only when run,
so ``seawall scan`` does not pay for their imports. A command whose module is absent is
not listed."""


class _Commands(click.Group):
    def _plugins(self) -> dict[str, str]:
        from importlib.util import find_spec

        found = {}
        for name, where in PLUGINS.items():
            module = where.split(":")[0]
            try:
                present = find_spec(module) is not None
            except ModuleNotFoundError:  # its parent package is absent
                present = False
            if present:
                found[name] = where
        return found

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self._plugins()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None or cmd_name not in PLUGINS:
            return command
        where = self._plugins().get(cmd_name)
        if where is None:
            return None
        from importlib import import_module

        module, attr = where.split(":")
        return getattr(import_module(module), attr)


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="seawall")
def main() -> None:
    """Keep private source, secrets and model weights out of your releases."""


def _policy(config: Path | None, fail_on: str | None, baseline: Path | None,
            jobs: int | None = None) -> Policy:
    policy = load(config)
    if jobs is not None:
        policy = dataclasses.replace(policy, jobs=jobs)
    if fail_on:
        policy = dataclasses.replace(policy, fail_on=Severity.parse(fail_on))
    if baseline:
        policy = dataclasses.replace(policy, baseline=read_baseline(baseline))
    return policy


def _progress_bar():  # type: ignore[no-untyped-def]
    """A transient progress line on stderr, only when a person is watching."""
    if not sys.stderr.isatty():
        return None, None
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    # Refreshed from the scan itself, not from a thread: a parallel scan forks, and a
    # process with threads must not fork.
    progress = Progress(
        TextColumn("[bold]scanning"), BarColumn(bar_width=None), DownloadColumn(),
        TransferSpeedColumn(), TextColumn("{task.fields[path]}", style="dim"),
        console=Console(stderr=True), transient=True, auto_refresh=False,
    )
    task = progress.add_task("scan", total=None, path="")
    shown = [0.0]

    def advance(path: str, n: int) -> None:
        short = path if len(path) < 60 else "…" + path[-59:]
        progress.update(task, advance=n, path=short)
        now = time.monotonic()
        if now - shown[0] > 0.1:
            shown[0] = now
            progress.refresh()

    return progress, advance


common_options = [
    click.option("--config", type=click.Path(dir_okay=False, path_type=Path),
                 help="Config file (default: seawall.toml or [tool.seawall] in pyproject.toml, "
                      "searched from the current folder up)."),
    click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), envvar="SEAWALL_CACHE_DIR",
                 help="Where registry downloads are cached [env: SEAWALL_CACHE_DIR]."),
    click.option("--jobs", "-j", type=click.IntRange(min=0), envvar="SEAWALL_JOBS", default=None,
                 help="Processes that share a target's files: 0 is one per core "
                      "[default: the config's jobs, else 0; env: SEAWALL_JOBS]."),
]


report_options = [
    click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True),
    click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
                 help="Write the report to a file instead of stdout."),
    click.option("--fail-on", type=click.Choice(SEVERITIES), default=None,
                 help="Exit 1 when a finding is at or above this severity "
                      "[default: medium, or the config's]."),
    click.option("--baseline", type=click.Path(dir_okay=False, path_type=Path),
                 help="Accept the findings recorded in this baseline; report only new ones."),
    click.option("--summary", type=click.Path(dir_okay=False, path_type=Path),
                 help="Also append a Markdown summary to this file (e.g. \"$GITHUB_STEP_SUMMARY\")."),
]


def _apply(options):  # type: ignore[no-untyped-def]
    def wrap(func):  # type: ignore[no-untyped-def]
        for option in reversed(options):
            func = option(func)
        return func
    return wrap


@main.command(epilog="Exit status: 0 nothing at or above --fail-on; 1 findings at or above it; "
                     "2 a target or a member could not be read (the others are still scanned), "
                     "or the arguments or config are wrong.")
@click.argument("targets", nargs=-1, required=True)
@_apply(report_options)
@click.option("--no-progress", is_flag=True, help="Never show the progress bar.")
@click.option("--against-previous", is_flag=True,
              help="With one npm:/pypi: spec: diff it against the release before it on the "
                   "registry and report only what it newly exposes (as `seawall diff`).")
@click.option("--index", "index", type=click.Path(dir_okay=False, path_type=Path),
              help="Also report copies of the private code fingerprinted in this index "
                   "(`seawall index add`; needs seawall[hunt]).")
@_apply(common_options)
def scan(targets: tuple[str, ...], fmt: str, output: Path | None, fail_on: str | None,
         baseline: Path | None, no_progress: bool, summary: Path | None, against_previous: bool,
         index: Path | None, config: Path | None, cache_dir: Path | None,
         jobs: int | None) -> None:
    """Scan release artifacts and report what must not ship.

    TARGET is a directory, an artifact file of any supported format (detected by content:
    npm tarballs, sdists, wheels, zip/jar/vsix/nupkg/apk, tar.gz/bz2/xz/zst, docker save
    and OCI images, Electron .asar, source maps...), or a registry spec:
    npm:NAME[@VERSION] or pypi:NAME[==VERSION].
    """
    from seawall.scan import scan as run_scan
    from seawall.scan import scan_targets

    try:
        policy = _policy(config, fail_on, baseline, jobs)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    if index is not None:
        if not index.is_file():
            raise click.UsageError(f"--index {index}: no such file")
        detectors = {**policy.detectors,
                     "codecopy": {**policy.detectors.get("codecopy", {}), "index": str(index)}}
        policy = dataclasses.replace(policy, detectors=detectors)
    if against_previous:
        if len(targets) != 1:
            raise click.UsageError("--against-previous takes exactly one npm: or pypi: spec")
        resolved, previous = _previous(targets[0], cache_dir)
        if previous:
            sys.exit(_diff(previous, resolved, policy, fmt, output, cache_dir,
                           DEFAULT_GROWTH_RATIO, summary))
        sys.exit(_report(scan_targets([resolved], policy), fmt, output, summary))
    progress, advance = (None, None) if no_progress else _progress_bar()
    if progress is not None:
        with progress:
            report = run_scan(targets, policy, progress=advance, cache_dir=cache_dir)
    else:
        report = run_scan(targets, policy, cache_dir=cache_dir)
    sys.exit(_report(report, fmt, output, summary))


def _report(report: Report, fmt: str, output: Path | None, summary: Path | None) -> int:
    """Write a scan report in ``fmt`` (and the Markdown summary); return the exit code."""
    from seawall.detectors import catalogue
    from seawall.report import REPORTERS

    rules = catalogue()
    if fmt == "text":
        rendered = REPORTERS["text"](report, rules, color=output is None and sys.stdout.isatty())
    else:
        rendered = REPORTERS[fmt](report, rules)
    _emit(rendered, output)
    if summary is not None:
        _append(summary, REPORTERS["markdown"](report, rules))
    return report.exit_code


@main.command("python")
@click.argument("directory", default=".", type=click.Path(file_okay=False, exists=True, path_type=Path))
@_apply(report_options)
@click.option("--against-previous", is_flag=True,
              help="Diff against the latest release of this project on the package index and "
                   "report only what this build adds.")
@_apply(common_options)
def python_command(directory: Path, fmt: str, output: Path | None, fail_on: str | None,
                   baseline: Path | None, summary: Path | None, against_previous: bool,
                   config: Path | None, cache_dir: Path | None,
         jobs: int | None) -> None:
    """Build DIRECTORY's sdist and wheel with its own build backend, then scan both.

    Runs `python -m build` in an isolated environment (this executes the project's build
    code), into a temporary folder that is removed afterwards. Needs `seawall[python]`.
    """
    import tempfile

    from seawall.pybuild import python_target

    try:
        policy = _policy(config, fail_on, baseline, jobs)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    with tempfile.TemporaryDirectory(prefix="seawall-build-") as out:
        target = python_target(directory.resolve(), Path(out))
        name = target.meta.get("name")
        code = _local_release(target, f"pypi:{name}" if name else None, against_previous, policy,
                              fmt, output, cache_dir, summary)
    sys.exit(code)


@main.command("npm")
@click.argument("directory", default=".", type=click.Path(file_okay=False, exists=True, path_type=Path))
@_apply(report_options)
@click.option("--list", "list_only", is_flag=True, help="Print the file set and stop.")
@click.option("--against-previous", is_flag=True,
              help="Diff against the version of this package on the registry (its latest) and "
                   "report only what this one adds.")
@_apply(common_options)
def npm_command(directory: Path, fmt: str, output: Path | None, fail_on: str | None,
                baseline: Path | None, summary: Path | None, list_only: bool,
                against_previous: bool, config: Path | None, cache_dir: Path | None,
         jobs: int | None) -> None:
    """Scan exactly what `npm publish` would send from DIRECTORY, without running any script.

    The file set follows npm's rules (the `files` field, .npmignore or .gitignore in every
    folder, always-included and never-included files, bundleDependencies) and is computed
    here, so a `prepare` script that refuses to run cannot stop the check. Paths read
    `package/...`, as in the tarball.
    """
    from seawall.packlist import npm_target, packlist

    if list_only:
        click.echo("\n".join(packlist(directory)))
        return
    try:
        policy = _policy(config, fail_on, baseline, jobs)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    name = _package_field(directory / "package.json", "name")
    sys.exit(_local_release(npm_target(directory), f"npm:{name}" if name else None,
                            against_previous, policy, fmt, output, cache_dir, summary))


@main.command(epilog="Exit status: 0 nothing new at or above --fail-on; 1 NEW exposes something "
                     "at or above it; 2 a side could not be read, or the arguments are wrong.")
@click.argument("old")
@click.argument("new")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the report to a file instead of stdout.")
@click.option("--fail-on", type=click.Choice(SEVERITIES), default=None,
              help="Exit 1 when a NEW finding is at or above this severity [default: medium].")
@click.option("--growth-ratio", type=click.FloatRange(min=1.0), default=DEFAULT_GROWTH_RATIO, show_default=True,
              help="Unpacked growth beyond this ratio is an anomaly.size-growth finding.")
@_apply(common_options)
def diff(old: str, new: str, fmt: str, output: Path | None, fail_on: str | None,
         growth_ratio: float, config: Path | None, cache_dir: Path | None,
         jobs: int | None) -> None:
    """Compare two releases and report what NEW exposes that OLD did not.

    OLD and NEW are anything `scan` accepts (files, folders, npm:/pypi: specs). Lists
    files added, removed and changed (size, SHA-256), the unpacked size change, and the
    findings that are new in NEW; a large added file or growth past --growth-ratio is a
    finding too.
    """
    try:
        policy = _policy(config, fail_on, None, jobs)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    sys.exit(_diff(old, new, policy, fmt, output, cache_dir, growth_ratio))


def _diff(old: str | Target, new: str | Target, policy: Policy, fmt: str, output: Path | None,
          cache_dir: Path | None, growth_ratio: float, summary: Path | None = None) -> int:
    """Run a release diff, write its report, return the exit code."""
    from seawall.detectors import catalogue
    from seawall.diff import diff as run_diff
    from seawall.report import diff as diff_report
    from seawall.report import sarif

    result = run_diff(old, new, policy, cache_dir=cache_dir, growth_ratio=growth_ratio)
    rules = catalogue()
    if fmt == "text":
        rendered = diff_report.render_text(result, rules, color=output is None and sys.stdout.isatty())
    elif fmt == "json":
        rendered = diff_report.render_json(result, rules)
    elif fmt == "markdown":
        rendered = diff_report.render_markdown(result, rules)
    elif fmt == "junit":
        from seawall.report import junit

        rendered = junit.render(result.report, rules)
    else:
        rendered = sarif.render(result.report, rules)
    _emit(rendered, output)
    if summary is not None:
        _append(summary, diff_report.render_markdown(result, rules))
    return result.exit_code


def _package_field(path: Path, key: str) -> str | None:
    import json

    try:
        value = json.loads(path.read_text(encoding="utf-8")).get(key)
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def _published(spec: str, cache_dir: Path | None) -> Target | None:
    """The published release to compare with, resolved once; None (said on stderr) if none."""
    from seawall.scan import resolve_target

    target = resolve_target(spec, cache_dir=cache_dir)
    if target.error:
        click.echo(f"no published release to compare with ({target.error}); scanning alone",
                   err=True)
        return None
    return target


def _previous(spec: str, cache_dir: Path | None) -> tuple[Target, str | None]:
    """``spec`` resolved, and the registry's release before it, for --against-previous."""
    from seawall import fetch
    from seawall.scan import resolve_target

    if not fetch.is_registry_spec(spec):
        raise click.UsageError("--against-previous takes one npm: or pypi: spec")
    target = resolve_target(spec, cache_dir=cache_dir)
    if target.error:
        raise click.UsageError(f"{spec}: {target.error}")
    previous = target.meta.get("previous")
    if not previous:
        click.echo(f"{target.name} has no earlier release on the registry; scanning it alone",
                   err=True)
    return target, previous


def _local_release(target: Target, published: str | None, against_previous: bool,
                   policy: Policy, fmt: str, output: Path | None, cache_dir: Path | None,
                   summary: Path | None) -> int:
    """A locally built release: diffed with its published one when asked, else scanned."""
    from seawall.scan import scan_targets

    old = _published(published, cache_dir) if against_previous and published else None
    if old is not None:
        return _diff(old, target, policy, fmt, output, cache_dir, DEFAULT_GROWTH_RATIO, summary)
    return _report(scan_targets([target], policy), fmt, output, summary)


@main.command()
@click.argument("targets", nargs=-1, required=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Baseline file to write.")
@_apply(common_options)
def baseline(targets: tuple[str, ...], output: Path, config: Path | None, cache_dir: Path | None,
         jobs: int | None) -> None:
    """Record the current findings as accepted (use with scan --baseline)."""
    from seawall.scan import scan as run_scan

    try:
        policy = _policy(config, None, None, jobs)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    report = run_scan(targets, policy, cache_dir=cache_dir)
    count = write_baseline(report.findings, output, policy)
    click.echo(f"wrote {count} finding(s) to {output}", err=True)
    sys.exit(2 if report.has_errors else 0)


@main.command()
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text",
              show_default=True)
def rules(fmt: str) -> None:
    """List every rule with its id, severity and summary."""
    import json as jsonlib

    from seawall.detectors import catalogue

    catalog = catalogue()
    if fmt == "json":
        click.echo(jsonlib.dumps([{"id": r.id, "name": r.name, "severity": r.severity.label,
                                   "summary": r.summary, "help": r.help} for r in catalog.values()],
                                 indent=2))
        return
    if fmt == "markdown":
        from seawall.report import rules_doc

        click.echo(rules_doc.render(catalog), nl=False)
        return
    for r in catalog.values():
        click.echo(f"{r.id:<40} {r.severity.label:<9} {r.summary}")


def _append(path: Path, text: str) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(text)


def _emit(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        output.write_text(text, encoding="utf-8")


if __name__ == "__main__":  # pragma: no cover
    main()
