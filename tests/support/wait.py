"""Waiting for something the test cannot be told about directly: poll with a deadline.

The deadline is generous (a busy CI machine); a condition that holds returns at once,
so a fast machine never waits for it. Never a fixed sleep."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable


async def until(
    condition: Callable[[], bool | Awaitable[bool]],
    seconds: float = 90,
    why: Callable[[], str] | None = None,
) -> None:
    """Return once `condition()` (plain or awaitable) is true; fail after `seconds`, with
    `why()` as the message when given (a log tail, what was seen instead)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        outcome = condition()
        if await outcome if inspect.isawaitable(outcome) else outcome:
            return
        assert loop.time() < deadline, why() if why is not None else "condition not reached before the deadline"
        await asyncio.sleep(0.05)
