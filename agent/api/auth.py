"""Who is calling: `Authorization: Bearer <token>` on every /v1 route, checked through the
context's Authenticator; then whether the caller's role may use the route.

No token, a malformed header, an unknown or revoked token: 401 with `WWW-Authenticate:
Bearer` (the same answer for each, so a caller learns nothing about which tokens exist).
A valid token whose role the route does not list: 403. The token is never logged."""

from __future__ import annotations

from collections.abc import Collection

from aiohttp import web

from agent.api.context import Authenticator
from agent.api.problems import Problem
from agent.model.access import Principal, Role

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="dweb-agent"'}
_INVALID = {"WWW-Authenticate": 'Bearer realm="dweb-agent", error="invalid_token"'}
# Longer than any token this agent makes by far; refused before a look-up.
_MAX_TOKEN = 512


def bearer_token(request: web.Request) -> str:
    """The token of the Authorization header, or a 401 problem."""
    header = request.headers.get("Authorization")
    if header is None:
        raise Problem(401, "send an API token: Authorization: Bearer <token>", headers=_CHALLENGE)
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > _MAX_TOKEN or " " in token:
        raise Problem(401, "the Authorization header must be: Bearer <token>", headers=_INVALID)
    return token


async def authenticate(request: web.Request, auth: Authenticator) -> Principal:
    principal = await auth.authenticate(bearer_token(request))
    if principal is None:
        raise Problem(401, "the API token is not valid (unknown or revoked)", headers=_INVALID)
    return principal


def authorize(principal: Principal, roles: Collection[Role]) -> None:
    if principal.role not in roles:
        allowed = ", ".join(sorted(r.value for r in roles))
        raise Problem(403, f"the {principal.role.value} role may not do this (allowed: {allowed})")
