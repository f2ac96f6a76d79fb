"""`dweb-agent scan`: one-off scans of a target, with a progress bar on a terminal."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from agent.cli.common import human, load
from agent.cli.main import main
from agent.observability import configure_logging
from agent.report import EXIT_ERROR, ItemReport, ScanReport

def _table(report: ScanReport, console: Console) -> None:
    table = Table(title=f"{report.target}" + (f"  (root {report.root})" if report.root else ""))
    for col in ("path", "status", "type", "size", "sha256", "source", "findings"):
        table.add_column(col, overflow="fold")
    colors = {"verified": "green", "incomplete": "yellow", "blocked": "magenta", "error": "red", "skipped": "yellow"}
    for item in report.items:
        src = item.source.gateway or item.source.local or "-"
        if item.source.lied:
            src += f" (lied: {', '.join(item.source.lied)})"
        status = f"[{colors[item.status.value]}]{item.status.value}[/]"
        sha = str(item.signals.get("sha256", ""))[:16]
        table.add_row(item.path or "(root)", status, item.media_type or "-", human(item.size), sha, src,
                      str(len(item.findings)) if item.findings else "")
    console.print(table)
    for item in report.items:
        if item.error:
            console.print(f"[red]{item.path or '(root)'}[/]: {item.error}")
    for error in report.errors:
        console.print(f"[red]scan error[/]: {error}")
    s = report.summary()
    console.print(f"{s['items']} items: {s['verified']} verified, {s['incomplete']} incomplete, "
                  f"{s['blocked']} blocked, {s['error']} errors, {s['skipped']} skipped; {s['findings']} findings")


def _report_list_problems(catalog: Any, shown: int = 10) -> None:
    for problem in catalog.problems[:shown]:
        where = f"{problem.source}:{problem.line}" if problem.line else problem.source
        click.echo(f"warning: {where}: {problem.message} (line skipped)", err=True)
    if len(catalog.problems) > shown:
        click.echo(f"warning: {len(catalog.problems) - shown} more list problems not shown", err=True)


@main.command()
@click.argument("target")
@click.option("--gateway", "gateways", multiple=True, metavar="URL",
              help="Trustless gateway to fetch from (repeatable; default: [gateways] urls in the config).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default=None,
              help="Report format (default: table on a terminal, JSON otherwise).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write the report to FILE instead of stdout.")
@click.option("--mode", type=click.Choice(["car", "raw"]), default="car", show_default=True,
              help="Retrieve whole entities as CAR streams, or block by block.")
@click.option("--concurrency", type=click.IntRange(1, 64), default=4, show_default=True, help="Items fetched at once.")
@click.option("--list", "lists", multiple=True, metavar="PATH|URL",
              help="Hash list or denylist to match against (repeatable; adds to [lists] sources).")
@click.option("--no-media", is_flag=True, help="Skip perceptual hashing of images and videos.")
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path), help="Configuration file.")
@click.pass_context
def scan(ctx: click.Context, target: str, gateways: tuple[str, ...], fmt: str | None, out: Path | None, mode: str,
         concurrency: int, lists: tuple[str, ...], no_media: bool, config: Path | None) -> None:
    """Scan TARGET once and report every file under it.

    TARGET is ipfs://CID[/path], /ipfs/CID[/path], a bare CID, a path or
    subdomain gateway URL, a local .car file, or a local file or directory.

    Exit status: 0 every item verified and nothing matched; 1 something matched
    a list; 2 some item could not be verified, or the scan failed."""
    from agent.lists.catalog import ListLoadError
    from agent.scan import Scanner, load_scan_catalog

    configure_logging(ctx.obj["log_level"])
    settings = load(config)
    stdout_tty = sys.stdout.isatty() and out is None
    fmt = fmt or ("table" if stdout_tty else "json")
    err_console = Console(stderr=True)
    progress: Progress | None = None
    task: Any = None
    if err_console.is_terminal:
        progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), TextColumn("{task.completed} items"),
                            TimeElapsedColumn(), console=err_console, transient=True)
        task = progress.add_task(f"scanning {target}", total=None)

    def on_item(item: ItemReport) -> None:
        if progress is not None:
            progress.update(task, advance=1, description=f"{item.path or target}"[:60])

    try:
        catalog = asyncio.run(load_scan_catalog(settings, list(lists)))
    except ListLoadError as exc:
        click.echo(f"error: list {exc}", err=True)
        sys.exit(EXIT_ERROR)
    _report_list_problems(catalog)
    scanner = Scanner(settings, gateways=list(gateways), mode=mode,  # type: ignore[arg-type]
                      concurrency=concurrency, on_item=on_item, catalog=catalog, hash_media=not no_media)
    if progress is not None:
        with progress:
            report = asyncio.run(scanner.scan(target))
    else:
        report = asyncio.run(scanner.scan(target))

    if fmt == "json":
        text = report.to_json()
        if out is not None:
            out.write_text(text + "\n", encoding="utf-8")
        else:
            click.echo(text)
    else:
        if out is not None:
            with out.open("w", encoding="utf-8") as fh:
                _table(report, Console(file=fh, width=160))
        else:
            # Off a terminal, never fold CIDs and paths at 80 columns.
            _table(report, Console() if sys.stdout.isatty() else Console(width=220))
    sys.exit(report.exit_code())
