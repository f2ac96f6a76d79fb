"""What every command shares: loading settings, the store, output and exit codes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import select
import sys
import traceback
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click
from rich.console import Console
from rich.table import Table

from agent.config import ConfigError, Settings, load_settings
from agent.model.report import EXIT_ERROR

if TYPE_CHECKING:
    from agent.services import Services

T = TypeVar("T")


def load(config: Path | None) -> Settings:
    try:
        return load_settings(config)
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_ERROR)


# Exit codes beside 0/1/2 (agent.model.report), as a shell reports a command killed by a signal:
# Ctrl-C (128 + SIGINT), and a reader that stopped early, `dweb-agent scan ... | head` (128 + SIGPIPE).
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141


class Commands(click.Group):
    """The top-level group. Whatever a command raises, the exit code keeps its documented
    meaning: Click would answer 1 ("findings") to Ctrl-C, a closed pipe or a crash."""

    def make_context(
        self, info_name: str | None, args: list[str], parent: click.Context | None = None, **extra: Any
    ) -> click.Context:
        with documented_exit_codes(None):
            return super().make_context(info_name, args, parent, **extra)

    def invoke(self, ctx: click.Context) -> Any:
        with documented_exit_codes(ctx):
            try:
                return super().invoke(ctx)
            finally:
                # A reader gone since the last write shows up here, inside the handler, and not
                # in the interpreter's last flush (which would exit 120 with a warning).
                if not sys.stdout.closed:
                    sys.stdout.flush()


@contextmanager
def documented_exit_codes(ctx: click.Context | None) -> Iterator[None]:
    try:
        yield
    except (click.ClickException, click.exceptions.Exit):
        raise  # usage errors (2) and explicit exits are Click's to report
    except click.Abort as exc:
        interrupted = isinstance(exc.__context__, KeyboardInterrupt)
        _say("interrupted" if interrupted else "error: aborted")
        sys.exit(EXIT_INTERRUPTED if interrupted else EXIT_ERROR)
    except KeyboardInterrupt:
        _say("interrupted")
        sys.exit(EXIT_INTERRUPTED)
    except BrokenPipeError as exc:
        if not _stdout_reader_gone():
            _unexpected(exc, ctx)
        # Python would complain again when it flushes stdout at exit: point it at /dev/null.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(EXIT_BROKEN_PIPE)
    except Exception as exc:  # noqa: BLE001  (the outermost boundary: any failure is one line and exit 2)
        _unexpected(exc, ctx)


def _unexpected(exc: BaseException, ctx: click.Context | None) -> NoReturn:
    """A failure no command foresaw: one line (the traceback with --log-level debug), exit 2."""
    obj = ctx.find_root().obj if ctx is not None else None
    if isinstance(obj, dict) and obj.get("log_level") == "debug":
        traceback.print_exception(exc, file=sys.stderr)
    message = " ".join(str(exc).split())[:500] or "no details"
    _say(f"error: unexpected {type(exc).__name__}: {message} (--log-level debug shows where)")
    sys.exit(EXIT_ERROR)


def _say(line: str) -> None:
    with contextlib.suppress(OSError):  # stderr is gone too; the exit code still tells
        click.echo(line, err=True)


def _stdout_reader_gone() -> bool:
    """True when stdout is a pipe whose reader has closed it: a BrokenPipeError from a
    worker's pipe is a failure, not the user's `| head` (which exits 141)."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        events = poller.poll(0)
    except (OSError, ValueError, AttributeError):
        return True  # cannot tell (no poll, stdout replaced): the write that failed was most likely ours
    return any(event & (select.POLLERR | select.POLLHUP) for _fd, event in events)


class OutputFileError(Exception):
    """The report cannot be written where --out says."""


class ReportFile:
    """Where --out writes. Checked before the scan by creating (and removing) a file beside
    it: the only test that holds for root, read-only mounts and full directories alike. The
    report then replaces the target in one rename, so an existing report is replaced only by a
    complete one, and an interrupted scan leaves it as it was."""

    def __init__(self, path: Path) -> None:
        self._shown = path
        # Through a symlink to the file it names: the rename must not replace the link itself.
        self.path = Path(os.path.realpath(path))
        if self.path.exists() and not os.access(self.path, os.W_OK):
            raise OutputFileError(f"{path}: the file is not writable")
        # Removed at once: a scan of the directory the report goes to must not find it.
        probe = self._create()
        os.close(probe)
        self._tmp.unlink(missing_ok=True)

    def _create(self) -> int:
        parent = self.path.parent
        self._tmp = parent / f".{self.path.name[:64]}.{secrets.token_hex(4)}.tmp"
        try:
            return os.open(self._tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileNotFoundError as exc:
            if parent.is_dir():  # /proc, say: there, but no file can be made in it
                raise OutputFileError(f"{self._shown}: cannot create a file in {parent}") from exc
            raise OutputFileError(f"{self._shown}: the directory {parent} does not exist") from exc
        except NotADirectoryError as exc:
            raise OutputFileError(f"{self._shown}: {parent} is not a directory") from exc
        except OSError as exc:
            reason = (exc.strerror or str(exc)).lower()
            raise OutputFileError(f"{self._shown}: cannot write in {parent}: {reason}") from exc

    def commit(self, text: str) -> None:
        fd = self._create()
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.replace(self._tmp, self.path)
        except BaseException:
            self._tmp.unlink(missing_ok=True)
            raise


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
        write_stdout(json.dumps(data, indent=2, default=str) + "\n")
    elif table is not None:
        print_stdout(table, width=None if sys.stdout.isatty() else 220)


def write_stdout(text: str) -> None:
    """All of `text` to stdout, or BrokenPipeError (exit 141) if the reader went away.

    Python's own stdout can lose the rest of a large write without a word: when the reader
    closes mid-write the kernel reports a short write, and the text layer ignores the count."""
    sys.stdout.flush()
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # stdout replaced by an in-memory stream
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    data = memoryview(text.encode(sys.stdout.encoding or "utf-8", errors="replace"))
    while data:
        data = data[os.write(fd, data[: 1 << 20]) :]


def print_stdout(*renderables: Any, width: int | None = None) -> None:
    """Rich output (tables, markup) to stdout through write_stdout."""
    console = Console(width=width)
    with console.capture() as captured:
        console.print(*renderables)
    write_stdout(captured.get())


def fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(EXIT_ERROR)


def call(settings: Settings, body: Callable[[Services], Awaitable[T]]) -> T:
    """Run one service call over the configured database; a refusal is `error: ...`, exit 2."""
    from agent.services import ServiceError, Services

    async def run() -> T:
        async with Services.open(settings) as svc:
            return await body(svc)

    try:
        return asyncio.run(run())
    except ServiceError as exc:
        fail(exc.message)


def csv_list(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else "-"
