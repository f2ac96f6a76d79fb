"""Cursor paging shared by every list route: an opaque cursor naming the id a page stops
before, the `Link: <...>; rel="next"` header, and the one-more-than-asked look-ahead."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from typing import TypeVar

from yarl import URL

from agent.api.problems import FieldError, Problem
from agent.api.routing import Call
from agent.api.schemas import MAX_ID

T = TypeVar("T")


def encode_cursor(before_id: int) -> str:
    return base64.urlsafe_b64encode(f"before:{before_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | None:
    """The id a cursor pages before (None without one), or a 400 naming `cursor`."""
    if cursor is None:
        return None
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        kind, _, value = text.partition(":")
        before = int(value) if kind == "before" and value.isdigit() else -1
    except (binascii.Error, UnicodeDecodeError, ValueError):
        before = -1
    if not 0 < before <= MAX_ID + 1:
        raise Problem(
            400, "the cursor is not one this API gave", errors=[FieldError(field="cursor", message="unknown cursor")]
        )
    return before


def next_link(call: Call, cursor: str | None) -> dict[str, str]:
    """The Link header of the next page (this request's query with the new cursor); none on the last."""
    if cursor is None:
        return {}
    query = {k: v for k, v in call.request.query.items() if k != "cursor"}
    link = URL(call.request.path).with_query({**query, "cursor": cursor})
    return {"Link": f'<{link}>; rel="next"'}


def split_page(rows: Sequence[T], limit: int, id_of: Callable[[T], int]) -> tuple[list[T], str | None]:
    """`rows` fetched with one more than `limit`: the page, and the cursor of the next one
    (None when nothing follows) — whether more exist, without a count."""
    page = list(rows[:limit])
    return page, encode_cursor(id_of(page[-1])) if len(rows) > limit and page else None
