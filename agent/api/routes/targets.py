"""/v1/targets: the daemon's watch targets, with the CLI's rules (agent.services.targets);
a target an API caller adds passes the SSRF guard (its Kubo, gateway or Arweave URL)."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from agent.api.routing import ADMIN, READERS, Answer, Call, Route
from agent.api.schemas import Body, Out
from agent.model.access import Role
from agent.model.records import TargetRow


class TargetIn(Body):
    url: str = Field(
        min_length=1, max_length=4096, description="ipfs://, ipns://, dnslink://, kubo://, ar://, a gateway URL"
    )
    interval_s: int | None = Field(default=None, ge=1, le=31_536_000, description="poll interval (default: [schedule])")


class TargetOut(Out):
    id: int
    url: str
    kind: str
    interval_s: int
    enabled: bool
    created_at: datetime
    last_poll_at: datetime | None
    last_success_at: datetime | None
    last_error: str | None
    consecutive_failures: int
    next_run_at: datetime | None

    @classmethod
    def of(cls, row: TargetRow) -> TargetOut:
        return cls(
            id=row.id,
            url=row.url,
            kind=row.kind,
            interval_s=row.interval_s,
            enabled=row.enabled,
            created_at=row.created_at,
            last_poll_at=row.last_poll_at,
            last_success_at=row.last_success_at,
            last_error=row.last_error,
            consecutive_failures=row.consecutive_failures,
            next_run_at=row.next_run_at,
        )


class TargetList(Out):
    targets: list[TargetOut]


async def list_targets(call: Call) -> TargetList:
    return TargetList(targets=[TargetOut.of(t) for t in await call.context.services.targets.all()])


async def add_target(call: Call) -> Answer:
    body = call.body(TargetIn)
    added = await call.context.services.targets.add(body.url, body.interval_s, untrusted=True)
    out = TargetOut.of(added.target)
    headers = {"Location": f"/v1/targets/{out.id}"}
    return Answer(out, 201 if added.created else 200, headers, resource=f"target:{out.id}")


async def get_target(call: Call) -> TargetOut:
    return TargetOut.of(await call.context.services.targets.get(call.id()))


async def remove_target(call: Call) -> Answer:
    await call.context.services.targets.remove(str(call.id()))
    return Answer(None, 204)


ROUTES = [
    Route(
        "GET", "/v1/targets", list_targets, READERS, "List the watch targets", "targets", responses={200: TargetList}
    ),
    Route(
        "POST",
        "/v1/targets",
        add_target,
        frozenset({Role.ADMIN, Role.INVESTIGATOR}),
        "Watch a target (200: it was watched already)",
        "targets",
        body=TargetIn,
        responses={201: TargetOut, 200: TargetOut},
    ),
    Route("GET", "/v1/targets/{id}", get_target, READERS, "One watch target", "targets", responses={200: TargetOut}),
    Route(
        "DELETE",
        "/v1/targets/{id}",
        remove_target,
        ADMIN,
        "Stop watching a target (its findings stay)",
        "targets",
        responses={204: None},
        resource="target:{id}",
    ),
]
