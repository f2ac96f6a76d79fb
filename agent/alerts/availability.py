"""Moved to agent.ipfs.probe (the content probe belongs with the gateways it asks)."""

from agent.ipfs.probe import (
    Availability,
    AvailabilityState,
    ContentProbe,
    GatewayAnswer,
    Verdict,
    decide,
)  # shim: issue-10 integration removes

__all__ = ["Availability", "AvailabilityState", "ContentProbe", "GatewayAnswer", "Verdict", "decide"]
