"""The `dweb-agent` command line: one module per command group."""

from agent.cli import audit, findings, hashes, run, scan, status, targets, tokens, webhooks  # noqa: F401  (registers the commands)
from agent.cli.main import main

__all__ = ["main"]
