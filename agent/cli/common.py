"""What every command shares: loading settings, the store, output and exit codes."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from agent.config import ConfigError, Settings, load_settings
from agent.report import EXIT_ERROR

def load(config: Path | None) -> Settings:
    try:
        return load_settings(config)
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_ERROR)



# A reader that stops early (`dweb-agent scan ... | head`) closes stdout under us.
# Click would exit 1, which means "findings"; exit as a process killed by SIGPIPE
# would instead (128 + 13).
EXIT_BROKEN_PIPE = 141


class Commands(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            # Python would complain again when it flushes stdout at exit: point it at /dev/null.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            sys.exit(EXIT_BROKEN_PIPE)


def human(n: int | None) -> str:
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(n)


def emit(data: Any, fmt: str, table: Table | None) -> None:
    if fmt == "json":
        click.echo(json.dumps(data, indent=2, default=str))
    elif table is not None:
        Console(width=None if sys.stdout.isatty() else 220).print(table)


async def with_store(settings: Settings, body: Any) -> Any:
    from agent.store import Store

    settings.agent.data_dir.mkdir(parents=True, exist_ok=True)
    store = await Store.open(settings.agent.database())
    try:
        return await body(store)
    finally:
        await store.close()


def csv_list(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]



def when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else "-"
