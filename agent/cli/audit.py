"""`dweb-agent audit`: the audit trail of the API's mutating calls and the token commands."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.table import Table

from agent.cli.common import call, emit, load, when
from agent.cli.main import main
from agent.model.time import iso_seconds
from agent.services.audit import MAX_PAGE

if TYPE_CHECKING:
    from agent.model.access import AuditRow


def audit_dict(a: AuditRow) -> dict[str, Any]:
    return {
        "id": a.id,
        "at": iso_seconds(a.at),
        "action": a.action,
        "status": a.status,
        "principal": a.principal,
        "token_id": a.token_id,
        "role": a.role.value if a.role is not None else None,
        "resource": a.resource,
        "remote": a.remote,
        "detail": a.detail,
    }


@main.command("audit")
@click.option("--limit", type=click.IntRange(1, MAX_PAGE), default=50, show_default=True)
@click.option("--principal", help="Only this principal's entries (a token's name, or cli:USER).")
@click.option("--before", "before_id", type=click.IntRange(1), help="Only entries older than this id (paging).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default=None)
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path), help="Configuration file.")
def audit(limit: int, principal: str | None, before_id: int | None, fmt: str | None, config: Path | None) -> None:
    """The newest audit entries first: who did what, with which answer, from where."""
    rows = call(load(config), lambda svc: svc.audit.recent(limit, before_id=before_id, principal=principal))
    fmt = fmt or ("table" if sys.stdout.isatty() else "json")
    table = Table()
    for col in ("id", "at", "principal", "role", "action", "resource", "status", "remote", "detail"):
        table.add_column(col, overflow="fold")
    for a in rows:
        table.add_row(
            str(a.id),
            when(a.at),
            a.principal or "-",
            a.role.value if a.role is not None else "-",
            a.action,
            a.resource or "-",
            str(a.status),
            a.remote or "-",
            json.dumps(a.detail, sort_keys=True) if a.detail else "",
        )
    emit([audit_dict(a) for a in rows], fmt, table)
