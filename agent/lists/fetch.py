"""Download a list over HTTP with a hard byte limit.

The caller passes the aiohttp session so it decides the connector (for
example one that refuses private addresses); this module adds no policy."""

from __future__ import annotations

import aiohttp


class ListTooLarge(ValueError):
    pass


async def fetch_list(url: str, session: aiohttp.ClientSession, max_bytes: int) -> bytes:
    """The response body, streamed and cut off at max_bytes.

    Raises ListTooLarge past the limit (checked against Content-Length first,
    then while reading, since the header can lie or be absent) and
    aiohttp.ClientResponseError for a non-2xx status."""
    async with session.get(url) as response:
        response.raise_for_status()
        try:
            return await read_bounded(response, max_bytes)
        except ListTooLarge as exc:
            raise ListTooLarge(f"{url}: {exc}") from None


async def read_bounded(response: aiohttp.ClientResponse, max_bytes: int) -> bytes:
    """A response body of at most max_bytes. Content-Length is checked first, then
    the bytes as they arrive, since the header can lie or be absent."""
    declared = response.content_length
    if declared is not None and declared > max_bytes:
        raise ListTooLarge(f"Content-Length {declared} exceeds {max_bytes} bytes")
    chunks: list[bytes] = []
    received = 0
    async for chunk in response.content.iter_chunked(64 * 1024):
        received += len(chunk)
        if received > max_bytes:
            raise ListTooLarge(f"body exceeds {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
