"""The vocabulary of the agent: typed data with no I/O, imported by every room and importing none."""
