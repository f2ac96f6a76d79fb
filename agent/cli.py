"""`dweb-agent` commands. Parses arguments, calls the services, prints.

Exit codes of `scan`: 0 clean, 1 findings, 2 error (including bad arguments)."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from agent import __version__
from agent.config import ConfigError, Settings, load_settings
from agent.observability import configure_logging, new_registry
from agent.media.vpdq import format_vpdq
from agent.report import EXIT_ERROR, ItemReport, ScanReport


def _settings(config: Path | None) -> Settings:
    try:
        return load_settings(config)
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_ERROR)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dweb-agent")
@click.option("--log-level", default="warning", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]), help="Log level (logs go to stderr).")
@click.pass_context
def main(ctx: click.Context, log_level: str) -> None:
    """Monitor the decentralized web for content on shared hash lists."""
    ctx.ensure_object(dict)
    ctx.obj["log_level"] = log_level


def _human(n: int | None) -> str:
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(n)


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
        table.add_row(item.path or "(root)", status, item.media_type or "-", _human(item.size), sha, src,
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
    settings = _settings(config)
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


@main.command(name="hash")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["te", "json", "vpdq"]), default="te", show_default=True,
              help="te: ThreatExchange plain lines `<type> <value>` (a list file); json: everything; "
                   "vpdq: per-frame video hashes `frame,quality,pdq_hex,timestamp`.")
@click.option("--every-frame", is_flag=True, help="vPDQ: hash every video frame (as reference lists do), not one per second.")
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path), help="Configuration file.")
@click.pass_context
def hash_files(ctx: click.Context, files: tuple[Path, ...], fmt: str, every_frame: bool, config: Path | None) -> None:
    """Print the signals of local FILES, to build lists or look them up.

    Exit status: 0 every file hashed; 2 some file could not be hashed."""
    from agent.hashing import hash_local_files

    configure_logging(ctx.obj["log_level"])
    settings = _settings(config)
    if every_frame:
        settings.media.video_fps_sample = 0
    results = asyncio.run(hash_local_files(settings, list(files)))
    failed = False
    if fmt == "json":
        click.echo(json.dumps([r.to_dict() for r in results], indent=2))
    for r in results:
        if r.error:
            failed = True
            click.echo(f"error: {r.path}: {r.error}", err=True)
        if fmt == "te":
            click.echo(f"# {r.path} ({r.media_type}, {r.size} bytes)")
            for sig in r.signals:
                click.echo(f"{sig.type.value} {sig.value}")
            if r.video_frames:
                click.echo(f"# vpdq: {len(r.video_frames)} frames; use --format vpdq to write them as a list file")
        elif fmt == "vpdq":
            if r.video_frames:
                if len(results) > 1:
                    click.echo(f"# {r.path}")
                click.echo(format_vpdq(r.video_frames), nl=False)
            elif not r.error:
                click.echo(f"note: {r.path}: not a video, no vPDQ frames", err=True)
    sys.exit(EXIT_ERROR if failed else 0)


@main.command()
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path), help="Configuration file.")
@click.pass_context
def run(ctx: click.Context, config: Path | None) -> None:
    """Run the agent as a daemon until SIGTERM or SIGINT."""
    from agent.daemon import run_daemon

    configure_logging("info" if ctx.obj["log_level"] == "warning" else ctx.obj["log_level"])
    settings = _settings(config)
    asyncio.run(run_daemon(settings, new_registry()))
