"""`dweb-agent scan`: one-off scans of a target, with a progress bar on a terminal.

Everything that can be checked without fetching is checked first (gateways, the output
path, the target, the lists), so a mistake costs nothing and is said in one line."""

from __future__ import annotations

import asyncio
import io
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from agent.cli.common import OutputFileError, ReportFile, fail, human, load, write_stdout
from agent.cli.main import main
from agent.model.report import EXIT_ERROR, ItemReport, ScanReport
from agent.model.signals import SignalType
from agent.model.target import Target, TargetError
from agent.model.time import utcnow
from agent.observability import configure_logging
from agent.services.scans import ScanOptions, ScansService
from agent.sources.targets import parse_gateway_url


def _table(report: ScanReport, console: Console, *, with_scan_errors: bool) -> None:
    # Paths, errors and targets come from the content and the user: never read them as rich markup.
    table = Table(title=escape(report.target) + (f"  (root {report.root})" if report.root else ""))
    for col in ("path", "status", "type", "size", "sha256", "source", "findings"):
        table.add_column(col, overflow="fold")
    colors = {"verified": "green", "incomplete": "yellow", "blocked": "magenta", "error": "red", "skipped": "yellow"}
    for item in report.items:
        src = item.source.gateway or item.source.local or "-"
        if item.source.lied:
            src += f" (lied: {', '.join(item.source.lied)})"
        status = f"[{colors[item.status.value]}]{item.status.value}[/]"
        digest = item.signals.of(SignalType.SHA256)
        sha = digest.value[:16] if digest is not None else ""
        table.add_row(
            escape(item.path or "(root)"),
            status,
            escape(item.media_type or "-"),
            human(item.size),
            sha,
            escape(src),
            str(len(item.findings)) if item.findings else "",
        )
    console.print(table)
    for item in report.items:
        if item.error:
            console.print(f"[red]{escape(item.path or '(root)')}[/]: {escape(item.error)}")
    if with_scan_errors:
        for error in report.errors:
            console.print(f"[red]scan error[/]: {escape(error)}")
    s = report.summary()
    console.print(
        f"{s['items']} items: {s['verified']} verified, {s['incomplete']} incomplete, "
        f"{s['blocked']} blocked, {s['error']} errors, {s['skipped']} skipped; {s['findings']} findings"
    )


def _report_list_problems(catalog: Any, shown: int = 10) -> None:
    for problem in catalog.problems[:shown]:
        where = f"{problem.source}:{problem.line}" if problem.line else problem.source
        click.echo(f"warning: {where}: {problem.message} (line skipped)", err=True)
    # The catalog keeps only the first problems of a long run of bad lines; problem_count has them all.
    total = catalog.problem_count
    if total > min(shown, len(catalog.problems)):
        click.echo(f"warning: {total - min(shown, len(catalog.problems))} more list problems not shown", err=True)


def _gateway_urls(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> tuple[str, ...]:
    try:
        return tuple(parse_gateway_url(value) for value in values)
    except TargetError as exc:
        raise click.BadParameter(str(exc), ctx, param) from exc


def _write_report(report: ScanReport, fmt: str, out: ReportFile | None) -> None:
    # Scan-level errors go to stderr in every format: a script reading JSON from stdout still
    # leaves a person a reason on the terminal.
    for error in report.errors:
        click.echo(f"error: {error}", err=True)
    if fmt == "json":
        text = report.to_json() + "\n"
        if out is not None:
            out.commit(text)
        else:
            write_stdout(text)
        return
    if report.errors and not report.items:
        return  # nothing to tabulate: the error said it all
    if out is not None:
        buffer = io.StringIO()
        _table(report, Console(file=buffer, width=160), with_scan_errors=True)
        out.commit(buffer.getvalue())
        return
    # Off a terminal, never fold CIDs and paths at 80 columns.
    console = Console() if sys.stdout.isatty() else Console(width=220)
    with console.capture() as captured:
        _table(report, console, with_scan_errors=False)
    write_stdout(captured.get())


@main.command()
@click.argument("target")
@click.option(
    "--gateway",
    "gateways",
    multiple=True,
    metavar="URL",
    callback=_gateway_urls,
    help="Trustless gateway to fetch from, http(s)://host[:port] (repeatable; default: [gateways] urls in the config).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default=None,
    help="Report format (default: table on a terminal, JSON otherwise).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the report to FILE instead of stdout (checked before the scan starts).",
)
@click.option(
    "--mode",
    type=click.Choice(["car", "raw"]),
    default="car",
    show_default=True,
    help="Retrieve whole entities as CAR streams, or block by block.",
)
@click.option("--concurrency", type=click.IntRange(1, 64), default=4, show_default=True, help="Items fetched at once.")
@click.option(
    "--list",
    "lists",
    multiple=True,
    metavar="PATH|URL",
    help="Hash list or denylist to match against (repeatable; adds to [lists] sources).",
)
@click.option("--no-media", is_flag=True, help="Skip perceptual hashing of images and videos.")
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path), help="Configuration file.")
@click.pass_context
def scan(
    ctx: click.Context,
    target: str,
    gateways: tuple[str, ...],
    fmt: str | None,
    out: Path | None,
    mode: str,
    concurrency: int,
    lists: tuple[str, ...],
    no_media: bool,
    config: Path | None,
) -> None:
    """Scan TARGET once and report every file under it.

    TARGET is ipfs://CID[/path], /ipfs/CID[/path], a bare CID, ipns://NAME[/path],
    /ipns/NAME[/path], dnslink://DOMAIN[/path] (names are resolved first, IPNS records
    verified), a path or subdomain gateway URL (/ipfs/ or /ipns/), a local .car file,
    or a local file or directory.

    Exit status: 0 every item verified and nothing matched; 1 something matched
    a list; 2 some item could not be verified, the scan failed, or the arguments
    were wrong; 130 interrupted (Ctrl-C); 141 the reader of the report went away."""
    configure_logging(ctx.obj["log_level"])
    settings = load(config)
    fmt = fmt or ("table" if sys.stdout.isatty() and out is None else "json")
    try:
        report_file = ReportFile(out) if out is not None else None
    except OutputFileError as exc:
        fail(f"--out {exc}")
    options = ScanOptions(
        gateways=gateways,
        mode="raw" if mode == "raw" else "car",
        concurrency=concurrency,
        extra_lists=lists,
        hash_media=not no_media,
    )
    _scan(ScansService(settings), target, options, fmt, report_file)


def _scan(service: ScansService, text: str, options: ScanOptions, fmt: str, out: ReportFile | None) -> None:
    from agent.services.errors import Invalid
    from agent.services.scans import parse_target

    try:
        target = parse_target(text)
    except Invalid as exc:
        # Reported like any failed scan (JSON readers get `errors`), without starting one.
        _write_report(ScanReport.failed(text, exc.message, utcnow()), fmt, out)
        sys.exit(EXIT_ERROR)
    try:
        prepared = asyncio.run(service.prepare(target, options))
    except Invalid as exc:
        fail(exc.message)
    _report_list_problems(prepared.catalog)
    progress = _progress(target)

    def on_item(item: ItemReport) -> None:
        if progress is not None:
            progress.update(progress.task_ids[0], advance=1, description=escape(f"{item.path or target.text}"[:60]))

    if progress is not None:
        with progress:
            report = asyncio.run(service.scan(prepared, on_item))
    else:
        report = asyncio.run(service.scan(prepared, on_item))
    _write_report(report, fmt, out)
    sys.exit(report.exit_code())


def _progress(target: Target) -> Progress | None:
    """A transient progress bar on stderr, only when stderr is a terminal."""
    err_console = Console(stderr=True)
    if not err_console.is_terminal:
        return None
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TextColumn("{task.completed} items"),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    )
    progress.add_task(escape(f"scanning {target.text}"[:80]), total=None)
    return progress
