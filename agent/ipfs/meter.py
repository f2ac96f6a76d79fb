"""Bounding one gateway response in time: a total deadline and a minimum throughput.

A gateway may be slow on purpose (a slowloris that trickles bytes to hold the
scan); aiohttp's timeouts bound single reads, not the whole response, so every
wait on a response goes through a ResponseMeter."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import aiohttp

from agent.ipfs.errors import SlowGateway

__all__ = ["MeteredStream", "ResponseMeter"]

_T = TypeVar("_T")


class ResponseMeter:
    """Bounds one response in time: a total deadline, and a minimum average throughput
    of its body once a grace period of waiting for body bytes has passed (the wait for
    the headers is bounded by the deadline and the per-read timeout, as a gateway
    fetching content from the network may take long to start). Only time spent
    waiting for the gateway counts, not the time the agent spends between reads
    (hashing, decoding), so a slow consumer is never blamed on the gateway. `clock`
    is injectable for tests."""

    def __init__(
        self,
        url: str,
        *,
        deadline_s: float,
        min_bytes_per_s: float,
        grace_s: float,
        clock: Callable[[], float] = time.monotonic,
        on_bytes: Callable[[int], None] | None = None,
    ) -> None:
        self.url = url
        self._deadline = deadline_s
        self._min_rate = min_bytes_per_s
        self._grace = grace_s
        self._clock = clock
        self._on_bytes = on_bytes
        self.bytes = 0
        self.waited = 0.0  # all waiting, headers included: against the deadline
        self.body_waited = 0.0  # waiting for body bytes: against the minimum throughput

    def time_left(self, *, body: bool = True) -> float:
        """How long the next wait may last before a limit is crossed."""
        left = self._deadline - self.waited
        if body and self._min_rate > 0:
            left = min(left, max(self._grace, self.bytes / self._min_rate) - self.body_waited)
        return left

    def add(self, n: int) -> None:
        self.bytes += n
        if self._on_bytes is not None:
            self._on_bytes(n)

    def breach(self) -> SlowGateway:
        if self.waited >= self._deadline:
            return SlowGateway(
                self.url,
                f"response not complete after {self.waited:.1f} s of waiting "
                f"({self.bytes} bytes); the deadline is {self._deadline:g} s",
                too_slow=False,
            )
        rate = self.bytes / self.body_waited if self.body_waited else 0.0
        return SlowGateway(
            self.url,
            f"sent {self.bytes} bytes in {self.body_waited:.1f} s ({rate:.0f} B/s), "
            f"below the minimum of {self._min_rate:g} B/s",
            too_slow=True,
        )

    def _waited(self, seconds: float, body: bool) -> None:
        self.waited += seconds
        if body:
            self.body_waited += seconds

    async def wait(self, awaitable: Awaitable[_T], *, body: bool = True) -> _T:
        """Await the gateway within the limits; `body=False` for the wait for the headers."""
        left = self.time_left(body=body)
        if left <= 0:
            close = getattr(awaitable, "close", None)  # never started: no "never awaited" warning
            if callable(close):
                close()
            raise self.breach()
        start = self._clock()
        timer = asyncio.timeout(left)
        try:
            async with timer:
                result = await awaitable
        except TimeoutError:
            self._waited(self._clock() - start, body)
            if not timer.expired():
                raise  # aiohttp's own per-read timeout, reported as such
            raise self.breach() from None
        except BaseException:
            self._waited(self._clock() - start, body)
            raise
        self._waited(self._clock() - start, body)
        return result


class MeteredStream:
    """A response body as a ByteStream whose every wait goes through a ResponseMeter."""

    def __init__(self, content: aiohttp.StreamReader, meter: ResponseMeter) -> None:
        self._content = content
        self._meter = meter

    async def readexactly(self, n: int) -> bytes:
        parts: list[bytes] = []
        got = 0
        while got < n:
            chunk = await self._meter.wait(self._content.read(n - got))
            if not chunk:
                raise asyncio.IncompleteReadError(b"".join(parts), n)
            self._meter.add(len(chunk))
            parts.append(chunk)
            got += len(chunk)
        return parts[0] if len(parts) == 1 else b"".join(parts)
