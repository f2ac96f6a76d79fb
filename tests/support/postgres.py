"""Reaching the test PostgreSQL server, and what to do when it is down.

Under CI (`CI=true`) a missing server fails the test: a green run must carry
PostgreSQL coverage. Elsewhere the PostgreSQL half is skipped with the reason,
so a laptop without the server still runs everything else."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

DEFAULT_POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


def postgres_url() -> str:
    return os.environ.get("DWEB_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def unreachable(url: str, exc: BaseException) -> NoReturn:
    """Fail under CI, skip elsewhere; the message names the URL and the error."""
    reason = f"PostgreSQL not reachable at {url}: {exc!r}"
    if in_ci():
        pytest.fail(
            f"{reason} (CI=true: PostgreSQL tests must run; start the server or set DWEB_TEST_POSTGRES_URL)",
            pytrace=False,
        )
    pytest.skip(reason)


async def connect_admin(url: str | None = None) -> AsyncEngine:
    """An engine on the test server, checked with one query; see `unreachable`."""
    url = url or postgres_url()
    engine = create_async_engine(url, connect_args={"timeout": 5})
    try:
        async with engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))
    except (OSError, TimeoutError, sa.exc.SQLAlchemyError) as exc:
        await engine.dispose()
        unreachable(url, exc)
    return engine
