"""Run one call on untrusted input and check what came out of it.

Only the parser's documented error types may escape; anything else is a bug
(raised as `UndocumentedError`, so hypothesis shrinks it to a minimal input).
Each call is bounded: a watchdog interrupts a call that runs for
`MAX_SECONDS` (a hang detector, generous so a loaded machine never trips it,
not a timing assertion), and tracemalloc's peak during the call must stay
under the target's memory bound."""

from __future__ import annotations

import signal
import threading
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

MAX_SECONDS = 60.0
MiB = 1024 * 1024


class UndocumentedError(AssertionError):
    """A parser raised an error type its documentation does not name."""


class CallHung(AssertionError):
    """A call ran past the watchdog: unbounded time on this input."""


class MemoryUnbounded(AssertionError):
    """A call's traced allocations peaked over the target's bound."""


class _Alarm(BaseException):
    # BaseException: a parser's `except Exception` cannot swallow the watchdog.
    pass


@contextmanager
def _watchdog(seconds: float) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield  # signals only reach the main thread; hypothesis runs tests there
        return

    def fire(signum: int, frame: FrameType | None) -> None:
        raise _Alarm()

    previous = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    except _Alarm:
        raise CallHung(f"call still running after {seconds:.0f} s") from None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def bounded_call(
    fn: Callable[[], Any],
    allowed: tuple[type[BaseException], ...],
    *,
    max_memory: int = 64 * MiB,
    max_seconds: float = MAX_SECONDS,
    trace_memory: bool = True,
) -> BaseException | None:
    """Call `fn`; return the documented error it raised (or None)."""
    started_tracing = trace_memory and not tracemalloc.is_tracing()
    if started_tracing:
        tracemalloc.start()
    if trace_memory:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
    outcome: BaseException | None = None
    try:
        with _watchdog(max_seconds):
            try:
                fn()
            except allowed as exc:
                outcome = exc
            except AssertionError:
                raise  # a property the target checks (and the harness's own reports)
            except Exception as exc:
                raise UndocumentedError(f"undocumented {type(exc).__module__}.{type(exc).__qualname__}: {exc}") from exc
        if trace_memory:
            peak = tracemalloc.get_traced_memory()[1] - base
            if peak > max_memory:
                raise MemoryUnbounded(f"peak {peak / MiB:.1f} MiB over the bound of {max_memory / MiB:.0f} MiB")
    finally:
        if started_tracing:
            tracemalloc.stop()
    return outcome
