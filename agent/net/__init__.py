"""Outbound HTTP policy shared by every client of the agent.

- http: the one ClientSession factory (`client_session`), User-Agent by purpose;
- backoff: the one backoff policy (exponential, capped, jittered, Retry-After);
- retry_after: Retry-After header parsing;
- guard: the SSRF guard for user-supplied URLs (`NetGuard`), on addresses
  (which IPs are refused) and connector (its resolver and guarded sessions).

A low room: it imports no other part of the agent (only the package's
`__version__`), so ipfs, lists, sources and alerts may all use it."""
