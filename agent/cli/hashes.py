"""`dweb-agent hash`: the signals of local files, written as list lines."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import click

from agent.cli.common import load, write_stdout
from agent.cli.main import main
from agent.lists.formats.vpdq_text import VIDEO_HEADER
from agent.lists.model import NOT_MATCHED_BY_DEFAULT
from agent.model.report import EXIT_ERROR
from agent.model.signals import SignalType
from agent.model.vpdq import format_vpdq
from agent.observability import configure_logging

# What `--format te` writes unless --signals says otherwise: the ThreatExchange
# signals that lists match by default. The imagehash family is left out
# because it is not matched by default (it flags unrelated flat and greyscale
# images, see bench/fp_corpus.py); a list of it would only mislead.
DEFAULT_TE_SIGNALS = (SignalType.PDQ, SignalType.MD5, SignalType.SHA256)
TE_SIGNAL_NAMES = tuple(t.value for t in SignalType if t is not SignalType.VPDQ)


def _signal_names(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[SignalType, ...]:
    if value is None:
        return DEFAULT_TE_SIGNALS
    names = [name.strip().lower() for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in TE_SIGNAL_NAMES]
    if unknown or not names:
        raise click.BadParameter(
            f"unknown signal type {', '.join(unknown) or '(none given)'}; valid: {', '.join(TE_SIGNAL_NAMES)}"
        )
    return tuple(dict.fromkeys(SignalType(name) for name in names))


@main.command(name="hash")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["te", "json", "vpdq"]),
    default="te",
    show_default=True,
    help="te: a plain list file, `<type> <value>` lines (pdq, md5, sha256 unless --signals); "
    "json: every signal; vpdq: per-frame video hashes `frame,quality,pdq_hex,timestamp`, "
    "each video after a `# video: <name>` line.",
)
@click.option(
    "--signals",
    "signal_types",
    callback=_signal_names,
    metavar="TYPE,...",
    help=f"--format te: the signal types to write (default: pdq,md5,sha256). Valid: {','.join(TE_SIGNAL_NAMES)}.",
)
@click.option(
    "--every-frame", is_flag=True, help="vPDQ: hash every video frame (as reference lists do), not one per second."
)
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path), help="Configuration file.")
@click.pass_context
def hash_files(
    ctx: click.Context,
    files: tuple[Path, ...],
    fmt: str,
    signal_types: tuple[SignalType, ...],
    every_frame: bool,
    config: Path | None,
) -> None:
    """Print the signals of local FILES, to build lists or look them up.

    Exit status: 0 every file hashed; 2 some file could not be hashed."""
    from agent.services.scans import HashOptions, ScansService

    configure_logging(ctx.obj["log_level"])
    service = ScansService(load(config))
    results = asyncio.run(service.hash_files(files, HashOptions(every_frame=every_frame)))
    failed = False
    if fmt == "json":
        write_stdout(json.dumps([r.to_dict() for r in results], indent=2) + "\n")
    for r in results:
        if r.error:
            failed = True
            click.echo(f"error: {r.path}: {r.error}", err=True)
        if fmt == "te":
            click.echo(f"# {r.path} ({r.media_type}, {r.size} bytes)")
            for sig in sorted(
                (s for s in r.signals if s.type in signal_types), key=lambda s: signal_types.index(s.type)
            ):
                if sig.type is SignalType.COLORHASH:
                    click.echo("# colorhash: not matched (equal for every greyscale image; see the README)")
                elif sig.type in NOT_MATCHED_BY_DEFAULT:
                    click.echo(
                        f"# {sig.type.value}: not matched unless the list sets "
                        f"[lists.thresholds.<list>] {sig.type.value}_distance"
                    )
                if sig.quality is not None:
                    weak = " (under 50: too flat to match; lists never match on it)" if sig.quality < 50 else ""
                    click.echo(f"# {sig.type.value} quality {sig.quality}{weak}")
                click.echo(f"{sig.type.value} {sig.value}")
            if r.video_frames:
                click.echo(f"# vpdq: {len(r.video_frames)} frames; use --format vpdq to write them as a list file")
        elif fmt == "vpdq":
            if r.video_frames:
                # One section per video: a list parser starts a new entry on
                # this line, so two videos never merge into one entry.
                click.echo(f"{VIDEO_HEADER} {r.path.name}")
                click.echo(format_vpdq(r.video_frames), nl=False)
            elif not r.error:
                click.echo(f"note: {r.path}: not a video, no vPDQ frames", err=True)
    sys.exit(EXIT_ERROR if failed else 0)
