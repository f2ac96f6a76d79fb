"""`dweb-agent run`: the daemon."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click
import structlog

from agent.cli.common import load
from agent.cli.main import main
from agent.observability import configure_logging, new_registry
from agent.report import EXIT_ERROR

# Ctrl-C before the agent could take the signal itself (while it imports and loads
# its configuration): the shell's convention, 128 + SIGINT.
EXIT_INTERRUPTED = 130


@main.command()
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path), help="Configuration file.")
@click.pass_context
def run(ctx: click.Context, config: Path | None) -> None:
    """Run the agent as a daemon until SIGTERM or SIGINT (then exit 0)."""
    try:
        from agent.daemon import DaemonError, run_daemon

        configure_logging("info" if ctx.obj["log_level"] == "warning" else ctx.obj["log_level"])
        settings = load(config)
        try:
            asyncio.run(run_daemon(settings, new_registry()))
        except DaemonError as exc:
            _fail(str(exc))
    except KeyboardInterrupt:
        sys.exit(EXIT_INTERRUPTED)


def _fail(message: str) -> None:
    # One line: plain for a person at a terminal, JSON like every other line for a log collector.
    if sys.stderr.isatty():
        click.echo(f"error: {message}", err=True)
    else:
        structlog.get_logger("agent.daemon").error("agent.start_failed", error=message)
    sys.exit(EXIT_ERROR)
