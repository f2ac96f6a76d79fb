"""Every route of the API, in the order the OpenAPI document lists them."""

from __future__ import annotations

from agent.api.routes import findings, lists, targets
from agent.api.routing import Route

ROUTES: list[Route] = [*targets.ROUTES, *lists.ROUTES, *findings.ROUTES]
