"""`dweb-agent status`: targets, lists, counts and whether the agent runs."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from agent.cli.common import call, emit, load, when
from agent.cli.main import main
from agent.cli.targets import target_dict


@main.command()
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default=None)
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path), help="Configuration file.")
def status(fmt: str | None, config: Path | None) -> None:
    """Targets (last poll, last error, next run), lists (versions, sizes), counts, and whether the agent runs."""
    settings = load(config)
    snap = call(settings, lambda svc: svc.status.snapshot())
    health = snap.agent
    data: dict[str, Any] = {
        "targets": [target_dict(t) for t in snap.targets],
        "lists": [
            {
                "name": v.name,
                "source": v.source,
                "entries": v.entries,
                "deny_rules": v.deny_rules,
                "problems": v.problems,
                "content_hash": v.content_hash,
                "loaded_at": v.loaded_at,
            }
            for v in snap.lists
        ],
        "items": snap.items,
        "findings": snap.findings,
        "database": snap.database,
        "agent": {"running": True, **(health.health or {})}
        if health.running
        else {"running": False, "health": health.url},
    }
    health_url = health.url
    fmt = fmt or ("table" if sys.stdout.isatty() else "json")
    if fmt == "json":
        emit(data, fmt, None)
        return
    console = Console()
    running = data["agent"]["running"]
    console.print(
        f"agent: {'[green]running[/]' if running else '[yellow]not running[/]'} ({health_url}); "
        f"database: {data['database']}; {data['items']} items, {data['findings']} findings"
    )
    table = Table(title="targets")
    for col in ("id", "url", "kind", "every", "last poll", "failures", "last error", "next run"):
        table.add_column(col, overflow="fold")
    for t in data["targets"]:
        table.add_row(
            str(t["id"]),
            t["url"],
            t["kind"],
            f"{t['interval_s']}s",
            when(t["last_poll_at"]),
            str(t["consecutive_failures"]),
            t["last_error"] or "",
            when(t["next_run_at"]),
        )
    console.print(table)
    lists = Table(title="lists")
    for col in ("name", "entries", "deny rules", "problems", "version", "loaded"):
        lists.add_column(col)
    for v in data["lists"]:
        lists.add_row(
            v["name"],
            str(v["entries"]),
            str(v["deny_rules"]),
            str(v["problems"]),
            (v["content_hash"] or "")[:12],
            when(v["loaded_at"]),
        )
    console.print(lists)
