"""`dweb-agent hash`: the signals of local files, written as list lines."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import click

from agent.cli.common import load
from agent.cli.main import main
from agent.media.vpdq import format_vpdq
from agent.observability import configure_logging
from agent.report import EXIT_ERROR

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
    settings = load(config)
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
                if sig.quality is not None:
                    weak = " (under 50: too flat to match; lists never match on it)" if sig.quality < 50 else ""
                    click.echo(f"# {sig.type.value} quality {sig.quality}{weak}")
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
