"""`dweb-agent` commands. Each parses its arguments, calls the core, prints.

Exit codes of `scan`: 0 clean, 1 findings, 2 error (including bad arguments)."""

from __future__ import annotations

import click

from agent import __version__
from agent.cli.common import Commands


@click.group(cls=Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dweb-agent")
@click.option("--log-level", default="warning", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]), help="Log level (logs go to stderr).")
@click.pass_context
def main(ctx: click.Context, log_level: str) -> None:
    """Monitor the decentralized web for content on shared hash lists."""
    ctx.ensure_object(dict)
    ctx.obj["log_level"] = log_level
