"""The `dweb-agent` command line: one module per command group."""

from agent.cli import findings, hashes, run, scan, status, targets, webhooks  # noqa: F401  (registers the commands)
from agent.cli.main import main

__all__ = ["main"]
