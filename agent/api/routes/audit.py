"""GET /v1/audit (admin only): the audit trail, newest first (agent.services.audit): every
mutating API call, refused or not, and the CLI's token commands. Reads are never in it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from agent.api.paging import decode_cursor, encode_cursor, next_link, split_page
from agent.api.routing import ADMIN, Answer, Call, Route
from agent.api.schemas import Out, Query
from agent.model.access import AuditRow, Role
from agent.services.audit import MAX_PAGE


class AuditQuery(Query):
    limit: int = Field(default=100, ge=1, le=MAX_PAGE, description="at most this many entries")
    cursor: str | None = Field(default=None, max_length=200, description="the next_cursor of the previous page")
    principal: str | None = Field(default=None, max_length=200, description="only this principal's entries")


class AuditOut(Out):
    id: int
    at: datetime
    action: str = Field(description='"METHOD /v1/path/{param}", or the CLI command ("tokens add")')
    status: int = Field(description="the HTTP status answered (0: a CLI command)")
    principal: str | None
    token_id: int | None
    role: Role | None
    resource: str | None = Field(description='what the call made or touched ("scan:12")')
    remote: str | None = Field(description="the caller's address, as the socket gave it")
    detail: dict[str, Any]

    @classmethod
    def of(cls, row: AuditRow) -> AuditOut:
        return cls(
            id=row.id,
            at=row.at,
            action=row.action,
            status=row.status,
            principal=row.principal,
            token_id=row.token_id,
            role=row.role,
            resource=row.resource,
            remote=row.remote,
            detail=row.detail,
        )


class AuditPage(Out):
    entries: list[AuditOut]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null on the last")


async def list_audit(call: Call) -> Answer:
    q = call.query(AuditQuery)
    before = decode_cursor(q.cursor)
    audit = call.context.services.audit
    if q.limit < MAX_PAGE:
        page, cursor = split_page(await audit.recent(q.limit + 1, before, q.principal), q.limit, lambda r: r.id)
    else:  # the service's own bound: no look-ahead row, a full page is taken to mean more may follow
        page = await audit.recent(q.limit, before, q.principal)
        cursor = encode_cursor(page[-1].id) if len(page) == q.limit else None
    entries = [AuditOut.of(r) for r in page]
    return Answer(AuditPage(entries=entries, next_cursor=cursor), headers=next_link(call, cursor))


ROUTES = [
    Route(
        "GET",
        "/v1/audit",
        list_audit,
        ADMIN,
        "The audit trail of mutating calls, newest first",
        "audit",
        query=AuditQuery,
        responses={200: AuditPage},
        description='The next page\'s URL is also in the Link header (rel="next").',
    ),
]
