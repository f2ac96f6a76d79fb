"""Outbound HTTP policy shared by every client of the agent: the SSRF guard for
user-supplied URLs (guard) and Retry-After parsing (retry_after).

A low room: it imports no other part of the agent, so ipfs, lists, sources and
alerts may all use it."""
