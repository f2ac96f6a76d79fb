"""`dweb-agent findings`: list and review findings."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from agent.cli.common import emit, load, when, with_store
from agent.cli.main import main
from agent.report import EXIT_ERROR

@main.group()
def findings() -> None:
    """Findings: list them, and review them (every review is kept)."""


@findings.command("list")
@click.option("--limit", type=click.IntRange(1), default=100, show_default=True)
@click.option("--list", "list_name", help="Only this list.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default=None)
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path), help="Configuration file.")
def findings_list(limit: int, list_name: str | None, fmt: str | None, config: Path | None) -> None:
    """Newest first."""
    settings = load(config)

    async def body(store: Any) -> Any:
        return await store.list_findings(limit=limit, list_name=list_name), await store.retracted_ids()

    rows, retracted = asyncio.run(with_store(settings, body))
    fmt = fmt or ("table" if sys.stdout.isatty() else "json")
    data = [{"id": f.id, "item": f.item_key, "list": f.list_name, "entry_id": f.entry_id, "entry": f.entry_value,
             "signal_type": f.signal_type, "distance": f.distance, "labels": list(f.labels),
             "retroactive": f.retroactive, "retracted": f.id in retracted, "created_at": f.created_at} for f in rows]
    table = Table()
    for col in ("id", "list", "signal", "distance", "entry", "item", "retracted", "at"):
        table.add_column(col, overflow="fold")
    for d in data:
        table.add_row(str(d["id"]), d["list"], d["signal_type"], f"{d['distance']:g}", d["entry"][:24],
                      d["item"][:16], "yes" if d["retracted"] else "", when(d["created_at"]))
    emit(data, fmt, table)


@findings.command("review")
@click.argument("finding_id", type=int)
@click.option("--false-positive", "verdict", flag_value="false_positive", help="Retract it and suppress it.")
@click.option("--confirmed", "verdict", flag_value="confirmed", help="Confirm it.")
@click.option("--note", help="Why (kept with the review).")
@click.option("--reviewer", help="Who reviewed (default: $USER).")
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path), help="Configuration file.")
def findings_review(finding_id: int, verdict: str | None, note: str | None, reviewer: str | None,
                    config: Path | None) -> None:
    """Record a review. A false positive sends finding.retracted to the subscribers that got it
    and suppresses future alerts for that item and list entry."""
    import os
    from datetime import datetime, timezone

    from agent.alerts.events import finding_retracted

    if verdict is None:
        click.echo("error: say --false-positive or --confirmed", err=True)
        sys.exit(EXIT_ERROR)
    settings = load(config)
    who = reviewer or os.environ.get("USER")

    async def body(store: Any) -> Any:
        finding = await store.get_finding(finding_id)
        if finding is None:
            raise LookupError(f"no finding {finding_id}")
        subs = await store.list_subscriptions()
        at = datetime.now(timezone.utc)
        return await store.review_finding(
            finding_id, verdict, note=note, reviewer=who,
            retraction=lambda recipients: finding_retracted(finding, "false_positive", note, subs, recipients, at))

    try:
        review = asyncio.run(with_store(settings, body))
    except LookupError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_ERROR)
    click.echo(f"review {review.id}: finding {finding_id} {verdict.replace('_', ' ')}"
               + (" (retracted; the running agent delivers finding.retracted)" if verdict == "false_positive" else ""))
