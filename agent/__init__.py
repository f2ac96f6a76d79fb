"""dweb-agent: a monitoring agent for the decentralized web."""

__version__ = "0.1.0"
