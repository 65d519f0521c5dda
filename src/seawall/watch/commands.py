"""``seawall watch`` (the service, and ``watch status``) and ``seawall serve`` (the web page)."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click

from seawall.policy import ConfigError
from seawall.watch import config as watch_config

CONFIG_HELP = "The watch.toml to use (see docs/watch.md)."


def _load(config: Path | None, database: str | None) -> watch_config.WatchConfig:
    if config is None:
        raise click.UsageError("--config watch.toml is required")
    try:
        return watch_config.load(config, database=database)
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


def _require() -> None:
    """SQLAlchemy (and psycopg for PostgreSQL) come with the ``watch`` extra."""
    from importlib.util import find_spec

    if find_spec("sqlalchemy") is None:
        click.echo("error: seawall watch needs its database layer: "
                   "pip install 'seawall[watch]'", err=True)
        sys.exit(2)


def _engine(cfg: watch_config.WatchConfig):  # type: ignore[no-untyped-def]
    _require()
    from seawall.watch import db

    try:
        engine = db.connect(cfg.database)
        db.migrate(engine)
        return engine
    except ModuleNotFoundError as exc:  # psycopg for a PostgreSQL URL
        click.echo(f"error: {exc.name} is needed for this database: "
                   "pip install 'seawall[watch]'", err=True)
        sys.exit(2)
    except Exception as exc:  # noqa: BLE001 - a database we cannot open is a usage error
        click.echo(f"error: cannot open the watch database: {type(exc).__name__}: "
                   f"{str(exc).splitlines()[0] if str(exc) else ''}", err=True)
        sys.exit(2)


@click.group(invoke_without_command=True)
@click.option("--config", "-c", "config", type=click.Path(path_type=Path), help=CONFIG_HELP)
@click.option("--database", help="Database path or URL; overrides the config and "
              "$SEAWALL_WATCH_DATABASE.")
@click.option("--once", is_flag=True, help="Poll, scan and alert until nothing is left, then "
              "exit; alerts a webhook still refuses after one quick retry stay pending for the "
              "next run.")
@click.option("--verbose", "-v", is_flag=True, help="Log every poll and scan.")
@click.pass_context
def watch(ctx: click.Context, config: Path | None, database: str | None, once: bool,
          verbose: bool) -> None:
    """Watch registries and alert when a new release leaks source, secrets or weights.

    One watcher per database: a second one (or a --once run) while another holds the
    database's lease exits with status 2, naming the holder and when its lease expires.
    """
    ctx.obj = {"config": config, "database": database}
    if ctx.invoked_subcommand is not None:
        return
    cfg = _load(config, database)
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request is too many
    _engine(cfg).dispose()  # fail early, with exit 2, on a database we cannot use
    from sqlalchemy import exc as sa_exc

    from seawall.watch.lease import LeaseHeld, LeaseLost
    from seawall.watch.service import Watcher, install_signal_handlers

    watcher = Watcher(cfg)
    install_signal_handlers(watcher)
    click.echo(f"seawall watch: {len(cfg.watched())} package(s), every {cfg.interval:g} s, "
               f"{len(cfg.webhooks)} webhook(s)", err=True)
    try:
        watcher.run(until_idle=once)
        pending = watcher.left_pending()
    except (LeaseHeld, LeaseLost) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except sa_exc.SQLAlchemyError as exc:  # taking the lease needs the database
        click.echo(f"error: the watch database failed: {type(exc).__name__}: "
                   f"{str(exc).splitlines()[0] if str(exc) else ''}", err=True)
        sys.exit(2)
    finally:
        watcher.close()
    for channel, (count, error) in pending.items():
        click.echo(f"seawall watch: {count} alert(s) via {channel} left pending ({error}); "
                   "the next run delivers them", err=True)


@watch.command("status")
@click.option("--config", "-c", "config", type=click.Path(path_type=Path), help=CONFIG_HELP)
@click.option("--database", help="Database path or URL.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.pass_context
def status(ctx: click.Context, config: Path | None, database: str | None, fmt: str) -> None:
    """What is watched, the last poll, the backlog and recent alerts."""
    from seawall.watch.status import gather, render_text

    cfg = _load(config or ctx.obj.get("config"), database or ctx.obj.get("database"))
    engine = _engine(cfg)
    try:
        data = gather(engine)
    finally:
        engine.dispose()
    if fmt == "json":
        click.echo(json.dumps(data, indent=2, default=str))
    else:
        click.echo(render_text(data), nl=False)


@click.command()
@click.option("--config", "-c", "config", type=click.Path(path_type=Path), help=CONFIG_HELP)
@click.option("--database", help="Database path or URL.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8321, show_default=True, type=int)
def serve(config: Path | None, database: str | None, host: str, port: int) -> None:
    """A read-only web page of the watcher's releases, findings and alerts."""
    from seawall.watch.web import make_server

    cfg = _load(config, database)
    engine = _engine(cfg)
    server = make_server(engine, host, port)
    click.echo(f"seawall serve: http://{host}:{server.server_address[1]}/", err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        engine.dispose()
