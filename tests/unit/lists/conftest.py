from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import FIXTURES

REPO_ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def fixtures() -> Path:
    if not FIXTURES.is_dir():
        pytest.fail(f"test fixtures not found at {FIXTURES}")
    return FIXTURES
