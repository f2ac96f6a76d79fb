"""`dweb-agent run`: the daemon."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click
import structlog

from agent.cli.main import main
from agent.model.report import EXIT_ERROR
from agent.observability import configure_logging, new_registry

# Ctrl-C before the agent could take the signal itself (while it imports and loads
# its configuration): the shell's convention, 128 + SIGINT.
EXIT_INTERRUPTED = 130

log = structlog.get_logger("agent.daemon")


@main.command()
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path), help="Configuration file.")
@click.pass_context
def run(ctx: click.Context, config: Path | None) -> None:
    """Run the agent as a daemon until SIGTERM or SIGINT (then exit 0; 2 if it cannot start or fails)."""
    try:
        from agent.config import ConfigError, load_settings
        from agent.runtime.errors import DaemonError
        from agent.runtime.process import run_daemon

        configure_logging("info" if ctx.obj["log_level"] == "warning" else ctx.obj["log_level"])
        try:
            settings = load_settings(config)
            asyncio.run(run_daemon(settings, new_registry()))
        except (ConfigError, DaemonError) as exc:
            _fail(str(exc))
        except Exception as exc:
            log.exception("agent.failed", error=f"{type(exc).__name__}: {exc}")
            sys.exit(EXIT_ERROR)
    except KeyboardInterrupt:
        sys.exit(EXIT_INTERRUPTED)


def _fail(message: str) -> None:
    # Plain for a person at a terminal; off one, a JSON line like every other line.
    if sys.stderr.isatty():
        click.echo(f"error: {message}", err=True)
    else:
        log.error("agent.start_failed", error=message)
    sys.exit(EXIT_ERROR)
