"""What stops the agent from starting."""

from __future__ import annotations


class DaemonError(Exception):
    """The agent cannot start; the message says why and what to change."""
