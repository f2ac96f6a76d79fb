"""`dweb-agent` commands. Each parses its arguments, calls the core, prints.

Exit codes of `scan`: 0 clean, 1 findings, 2 error (including bad arguments). Every command:
130 when interrupted (Ctrl-C), 141 when the reader of its output went away, and 2, never 1,
for a failure nobody foresaw (agent.cli.common.Commands)."""

from __future__ import annotations

import click

from agent import __version__
from agent.cli.common import Commands


@click.group(cls=Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dweb-agent")
@click.option(
    "--log-level",
    default="warning",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"]),
    help="Log level (logs go to stderr).",
)
@click.pass_context
def main(ctx: click.Context, log_level: str) -> None:
    """Monitor the decentralized web for content on shared hash lists."""
    ctx.ensure_object(dict)
    ctx.obj["log_level"] = log_level
