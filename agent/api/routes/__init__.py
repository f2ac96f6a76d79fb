"""Every route of the API, in the order the OpenAPI document lists them."""

from __future__ import annotations

from agent.api.routes import audit, findings, lists, matching, scans, targets, tokens, webhooks
from agent.api.routing import Route

ROUTES: list[Route] = [*targets.ROUTES, *lists.ROUTES, *findings.ROUTES]
ROUTES += [*scans.ROUTES, *matching.ROUTES, *tokens.ROUTES, *audit.ROUTES]
ROUTES += webhooks.ROUTES
