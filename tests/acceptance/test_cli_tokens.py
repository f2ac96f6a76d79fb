"""`dweb-agent tokens` and `dweb-agent audit` as an operator uses them: the real command,
its database read back by the service and byte by byte."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from agent.config import AgentSettings, Settings
from agent.model.access import Principal, Role
from agent.services import Services
from tests.support.cli import run_cli


def env(tmp_path: Path) -> dict[str, str]:
    return {
        "DWEB_AGENT_AGENT_DATA_DIR": str(tmp_path / "data"),
        "DWEB_AGENT_AGENT_HEALTH_PORT": "9",
        "USER": "olga",
    }


async def authenticate(tmp_path: Path, token: str) -> Principal | None:
    """What a running agent's API would make of `token` (a new service: nothing cached)."""
    async with Services.open(Settings(agent=AgentSettings(data_dir=tmp_path / "data"))) as svc:
        return await svc.tokens.authenticate(token)


def database_bytes(tmp_path: Path) -> bytes:
    """The SQLite database and its journal files, as anyone with a copy of the disk has them."""
    return b"".join(p.read_bytes() for p in sorted((tmp_path / "data").glob("agent.sqlite3*")))


async def test_a_token_is_shown_once_works_and_the_database_keeps_only_its_hash(tmp_path: Path) -> None:
    """`tokens add` prints a token that authenticates as its name and role; the database
    file holds its SHA-256 and not the token; `tokens list` never shows either."""
    e = env(tmp_path)
    added = await run_cli("tokens", "add", "--role", "platform", "--name", "acme", env=e)
    assert added.code == 0, added.stderr
    token = added.stdout.strip()
    assert token.startswith("dwa_") and len(token.splitlines()) == 1
    assert "shown only this once" in added.stderr and token not in added.stderr

    principal = await authenticate(tmp_path, token)
    assert principal is not None and (principal.name, principal.role) == ("acme", Role.PLATFORM)

    digest = hashlib.sha256(token.encode()).hexdigest()
    raw = database_bytes(tmp_path)
    assert token.encode() not in raw and token.removeprefix("dwa_").encode() not in raw
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'data' / 'agent.sqlite3'}")
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(sa.text("SELECT name, role, token_hash FROM api_tokens"))).all()
    finally:
        await engine.dispose()
    assert [tuple(r) for r in rows] == [("acme", "platform", digest)]

    for fmt in ("json", "table"):
        listed = await run_cli("tokens", "list", "--format", fmt, env=e)
        assert listed.code == 0 and "acme" in listed.stdout
        assert token not in listed.stdout and digest not in listed.stdout
        assert token.removeprefix("dwa_")[:12] not in listed.stdout
    (row,) = json.loads((await run_cli("tokens", "list", "--format", "json", env=e)).stdout)
    assert set(row) == {"id", "name", "role", "created_at", "last_used_at", "revoked_at", "active"}
    assert (row["name"], row["role"], row["active"], row["revoked_at"]) == ("acme", "platform", True, None)


async def test_a_revoked_token_no_longer_authenticates(tmp_path: Path) -> None:
    """`tokens revoke ID` ends the token; the list shows when; an unknown id is an error (exit 2)."""
    e = env(tmp_path)
    added = await run_cli("tokens", "add", "--role", "viewer", "--format", "json", env=e)
    assert added.code == 0, added.stderr
    made = json.loads(added.stdout)
    assert made["name"].startswith("viewer-") and await authenticate(tmp_path, made["token"]) is not None

    revoked = await run_cli("tokens", "revoke", str(made["id"]), env=e)
    assert revoked.code == 0 and f"revoked token {made['id']}" in revoked.stdout
    assert await authenticate(tmp_path, made["token"]) is None
    (row,) = json.loads((await run_cli("tokens", "list", "--format", "json", env=e)).stdout)
    assert row["active"] is False and row["revoked_at"] is not None

    unknown = await run_cli("tokens", "revoke", "999", env=e)
    assert unknown.code == 2 and "no API token 999" in unknown.stderr


async def test_a_name_is_refused_for_a_second_role_and_bad_arguments_exit_2(tmp_path: Path) -> None:
    """One principal, one role: `acme` as platform, then as admin, is refused (exit 2) and no
    admin token is made; an unknown role or a malformed name is refused too."""
    e = env(tmp_path)
    assert (await run_cli("tokens", "add", "--role", "platform", "--name", "acme", env=e)).code == 0
    again = await run_cli("tokens", "add", "--role", "admin", "--name", "acme", env=e)
    assert again.code == 2 and "already has an active platform token" in again.stderr and again.stdout == ""
    assert (await run_cli("tokens", "add", "--role", "root", env=e)).code == 2
    bad = await run_cli("tokens", "add", "--role", "admin", "--name", "a b", env=e)
    assert bad.code == 2 and "token name" in bad.stderr
    listed = json.loads((await run_cli("tokens", "list", "--format", "json", env=e)).stdout)
    assert [(t["name"], t["role"]) for t in listed] == [("acme", "platform")]


async def test_the_audit_trail_names_who_added_and_revoked_tokens(tmp_path: Path) -> None:
    """`dweb-agent audit` shows the token commands newest first, as cli:$USER, never the token."""
    e = env(tmp_path)
    made = json.loads(
        (await run_cli("tokens", "add", "--role", "admin", "--name", "ops", "--format", "json", env=e)).stdout
    )
    assert (await run_cli("tokens", "revoke", str(made["id"]), env=e)).code == 0

    shown = await run_cli("audit", "--format", "json", env=e)
    assert shown.code == 0, shown.stderr
    entries = json.loads(shown.stdout)
    assert [(a["action"], a["principal"], a["resource"], a["status"]) for a in entries] == [
        ("tokens revoke", "cli:olga", f"token:{made['id']}", 0),
        ("tokens add", "cli:olga", f"token:{made['id']}", 0),
    ]
    assert entries[1]["detail"] == {"name": "ops", "role": "admin"}
    assert made["token"] not in shown.stdout

    newest = json.loads((await run_cli("audit", "--limit", "1", "--format", "json", env=e)).stdout)
    assert [a["action"] for a in newest] == ["tokens revoke"]
    table = await run_cli("audit", "--format", "table", env=e)
    assert table.code == 0 and "tokens add" in table.stdout and "cli:olga" in table.stdout
    assert (await run_cli("audit", "--limit", "0", env=e)).code == 2
