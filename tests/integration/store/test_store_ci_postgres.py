"""A PostgreSQL server that is down fails the store tests under CI=true and
skips them (with the reason) elsewhere: a green CI run always carries
PostgreSQL coverage. Runs the real pytest on one store test, pointed at a
port nothing listens on."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
ONE_TEST = "tests/integration/store/test_store_schema.py::test_migrations_create_exactly_the_declared_schema"


def _closed_port() -> int:
    # Bound and closed again: nothing listens there for the few seconds the run takes.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run_postgres_half(ci: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["DWEB_TEST_POSTGRES_URL"] = f"postgresql+asyncpg://postgres@127.0.0.1:{_closed_port()}/test"
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", f"{ONE_TEST}[postgresql]"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_missing_server_fails_the_run_under_ci() -> None:
    run = _run_postgres_half("true")
    assert run.returncode == 1, run.stdout + run.stderr
    assert "PostgreSQL not reachable" in run.stdout and "CI=true" in run.stdout
    assert "1 error" in run.stdout or "1 failed" in run.stdout


def test_a_missing_server_skips_with_the_reason_elsewhere() -> None:
    run = _run_postgres_half(None)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 skipped" in run.stdout and "PostgreSQL not reachable" in run.stdout
