"""`dweb-agent run`: the daemon."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from agent.cli.common import load
from agent.cli.main import main
from agent.observability import configure_logging, new_registry

@main.command()
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path), help="Configuration file.")
@click.pass_context
def run(ctx: click.Context, config: Path | None) -> None:
    """Run the agent as a daemon until SIGTERM or SIGINT."""
    from agent.daemon import run_daemon

    configure_logging("info" if ctx.obj["log_level"] == "warning" else ctx.obj["log_level"])
    settings = load(config)
    asyncio.run(run_daemon(settings, new_registry()))

