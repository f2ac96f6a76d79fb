from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from agent.store import Store
from tests.integration.store.conftest import Databases
from tests.support.gateway import FixtureGateway
from tests.support.postgres import connect_admin, postgres_url

REPO = Path(__file__).resolve().parents[1]
# Copied from the workplace's shared fixtures (see tests/fixtures/NOTICE), so a clone alone passes.
FIXTURES = REPO / "tests" / "fixtures"
IPFS_FIXTURES = FIXTURES / "ipfs"
MEDIA_FIXTURES = FIXTURES / "media"


def pytest_configure(config: pytest.Config) -> None:
    if not FIXTURES.is_dir():
        pytest.exit(f"the test fixtures are not at {FIXTURES}", returncode=2)


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """A real, empty store on each dialect (PostgreSQL: a fresh schema per test); a module or
    folder with a `store` fixture of its own keeps that one."""
    dbs = Databases(dialect=request.param, tmp_path=tmp_path)
    if request.param == "postgresql":
        dbs.admin = await connect_admin(postgres_url())
    try:
        yield await (await dbs.new())()
    finally:
        await dbs.cleanup()


@pytest.fixture
def fixtures() -> Path:
    if not FIXTURES.is_dir():
        pytest.fail(f"test fixtures not found at {FIXTURES}")
    return FIXTURES


@pytest.fixture
async def make_gateway() -> AsyncIterator[Callable[..., Awaitable[FixtureGateway]]]:
    """Start real trustless gateways on 127.0.0.1 loaded with fixture CARs."""
    started: list[FixtureGateway] = []

    async def factory(*cars: Path, **knobs: object) -> FixtureGateway:
        gw = FixtureGateway(**knobs)  # type: ignore[arg-type]
        for car in cars:
            await gw.load_car(car)
        await gw.start()
        started.append(gw)
        return gw

    yield factory
    for gw in started:
        await gw.stop()
