"""Every API test runs the real app on a real socket over a real store, SQLite and
PostgreSQL (a fresh schema per test, see tests/integration/store/conftest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agent.store import Store
from tests.integration.store.conftest import Databases
from tests.support.postgres import connect_admin, postgres_url


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    dbs = Databases(dialect=request.param, tmp_path=tmp_path)
    if request.param == "postgresql":
        dbs.admin = await connect_admin(postgres_url())
    try:
        yield await (await dbs.new())()
    finally:
        await dbs.cleanup()
