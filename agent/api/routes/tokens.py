"""/v1/tokens (admin only): the API's tokens, made, listed and revoked as with `dweb-agent
tokens` (agent.services.tokens). A new token is in the 201 answer once and never again:
the store keeps only its SHA-256, and the audit entry of the call names only its id."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from agent.api.routing import ADMIN, Answer, Call, Route
from agent.api.schemas import Body, Out
from agent.model.access import Role, TokenRow


class TokenIn(Body):
    role: Role
    name: str | None = Field(
        default=None,
        description="the principal (webhooks made with the token belong to it); default: made up from the role",
    )


class TokenOut(Out):
    id: int
    name: str
    role: Role
    created_at: datetime
    last_used_at: datetime | None = Field(description="to the minute; null: never used")
    revoked_at: datetime | None
    active: bool

    @classmethod
    def of(cls, row: TokenRow) -> TokenOut:
        return cls(
            id=row.id,
            name=row.name,
            role=row.role,
            created_at=row.created_at,
            last_used_at=row.last_used_at,
            revoked_at=row.revoked_at,
            active=row.active,
        )


class NewTokenOut(TokenOut):
    token: str = Field(description="the bearer token: shown this once, never again")


class TokenList(Out):
    tokens: list[TokenOut] = Field(description="oldest first, revoked ones too")


async def list_tokens(call: Call) -> TokenList:
    return TokenList(tokens=[TokenOut.of(r) for r in await call.context.services.tokens.all()])


async def add_token(call: Call) -> Answer:
    body = call.body(TokenIn)
    made = await call.context.services.tokens.add(body.role, body.name)
    out = NewTokenOut(**TokenOut.of(made.row).model_dump(), token=made.token)
    headers = {"Location": f"/v1/tokens/{made.row.id}", "Cache-Control": "no-store"}
    return Answer(out, 201, headers, resource=f"token:{made.row.id}")


async def revoke_token(call: Call) -> TokenOut:
    return TokenOut.of(await call.context.services.tokens.revoke(call.id()))


ROUTES = [
    Route("GET", "/v1/tokens", list_tokens, ADMIN, "List the API tokens", "tokens", responses={200: TokenList}),
    Route(
        "POST",
        "/v1/tokens",
        add_token,
        ADMIN,
        "Make a token (shown once)",
        "tokens",
        body=TokenIn,
        responses={201: NewTokenOut},
    ),
    Route(
        "DELETE",
        "/v1/tokens/{id}",
        revoke_token,
        ADMIN,
        "Revoke a token (it stops working at once on this agent)",
        "tokens",
        responses={200: TokenOut},
        resource="token:{id}",
    ),
]
