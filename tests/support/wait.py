"""Waiting for something the test cannot be told about directly: poll with a deadline.

The deadline is generous (a busy CI machine); a condition that holds returns at once,
so a fast machine never waits for it. Never a fixed sleep."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable


async def until(condition: Callable[[], bool | Awaitable[bool]], seconds: float = 90) -> None:
    """Return once `condition()` (plain or awaitable) is true; fail after `seconds`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        outcome = condition()
        if await outcome if inspect.isawaitable(outcome) else outcome:
            return
        assert loop.time() < deadline, "condition not reached before the deadline"
        await asyncio.sleep(0.05)
