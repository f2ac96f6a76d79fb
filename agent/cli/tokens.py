"""`dweb-agent tokens`: the HTTP API's tokens (add, list, revoke); each change is audited."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.table import Table

from agent.cli.common import call, emit, load, when
from agent.cli.main import main
from agent.model.access import Role
from agent.model.time import iso_seconds
from agent.services.audit import cli_entry

if TYPE_CHECKING:
    from agent.model.access import TokenRow
    from agent.services import Services
    from agent.services.tokens import NewToken


def token_dict(t: TokenRow) -> dict[str, Any]:
    """A token as `--format json` shows it: never its secret, never its hash."""
    return {
        "id": t.id,
        "name": t.name,
        "role": t.role.value,
        "created_at": iso_seconds(t.created_at),
        "last_used_at": iso_seconds(t.last_used_at),
        "revoked_at": iso_seconds(t.revoked_at),
        "active": t.active,
    }


@main.group()
def tokens() -> None:
    """Tokens of the HTTP API: each has a name (the principal) and a role."""


@tokens.command("add")
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True, help="What the token may do.")
@click.option(
    "--name",
    help="The principal (1-64 of A-Z a-z 0-9 . _ @ -); a platform's webhooks belong to it, so a "
    "second token with the same name (rotation) sees them. Default: ROLE-xxxx.",
)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path), help="Configuration file.")
def tokens_add(role: str, name: str | None, fmt: str, config: Path | None) -> None:
    """Make a token. It is printed once: the agent keeps only its hash."""

    async def body(svc: Services) -> NewToken:
        made = await svc.tokens.add(Role(role), name)
        await svc.audit.record(
            cli_entry("tokens add", resource=f"token:{made.row.id}", detail={"name": made.row.name, "role": role})
        )
        return made

    made = call(load(config), body)
    if fmt == "json":
        emit({**token_dict(made.row), "token": made.token}, fmt, None)
    else:
        click.echo(made.token)
    click.echo(
        f"token {made.row.id} ({made.row.name}, {made.row.role}): shown only this once; the agent keeps only its hash",
        err=True,
    )


@tokens.command("list")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default=None)
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path), help="Configuration file.")
def tokens_list(fmt: str | None, config: Path | None) -> None:
    """Every token, revoked ones too (never a secret)."""
    rows = call(load(config), lambda svc: svc.tokens.all())
    fmt = fmt or ("table" if sys.stdout.isatty() else "json")
    table = Table()
    for col in ("id", "name", "role", "created", "last used", "revoked"):
        table.add_column(col, overflow="fold")
    for t in rows:
        table.add_row(str(t.id), t.name, t.role.value, when(t.created_at), when(t.last_used_at), when(t.revoked_at))
    emit([token_dict(t) for t in rows], fmt, table)


@tokens.command("revoke")
@click.argument("token_id", metavar="ID", type=int)
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path), help="Configuration file.")
def tokens_revoke(token_id: int, config: Path | None) -> None:
    """Revoke token ID: refused from now on (by a running agent within [api] token_cache_s)."""

    async def body(svc: Services) -> TokenRow:
        row = await svc.tokens.revoke(token_id)
        await svc.audit.record(cli_entry("tokens revoke", resource=f"token:{row.id}", detail={"name": row.name}))
        return row

    row = call(load(config), body)
    click.echo(f"revoked token {row.id} ({row.name}, {row.role})")
