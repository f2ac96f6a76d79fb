"""TCAP login against a real TCAP-like API on 127.0.0.1: the agent gets its JWT from a
username and password (config or environment), re-uses it, renews it before it
expires or when the server revokes it, shares one login between concurrent pulls, and
never lets the password or the token into a message, a log line or a repr."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import structlog

from agent.config import ConfigError, ListSettings, TcapSettings, load_settings
from agent.lists.model import HashList
from agent.lists.sync import ListSyncer
from agent.lists.sync_state import MemorySyncStateStore, TcapSourceConfig
from agent.lists.tcap_auth import MAX_LOGIN_BYTES, TcapLogin, jwt_expiry, login_url_for
from agent.lists.tcap_client import ListSyncError, TcapClient
from agent.services.list_refresh import list_syncer
from agent.store import Store
from tests.support.tcap_server import TcapServer

START = 1_800_000_000.0


class Clock:
    """A clock the test moves; the server and the login read the same one."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def server(clock: Clock) -> AsyncIterator[TcapServer]:
    srv = TcapServer(page_size=2, clock=clock)
    await srv.start()
    for word in "abcdef":  # three pages of two
        srv.add(md5(word), "MD5")
    yield srv
    await srv.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def login(server: TcapServer, http: aiohttp.ClientSession, clock: Clock, password: str | None = None) -> TcapLogin:
    return TcapLogin(
        http,
        login_url_for(server.url),
        server.username,
        server.password if password is None else password,
        clock=clock,
    )


def toml_for(server: TcapServer, credentials: str) -> str:
    return f'[[lists.tcap]]\nname = "tat"\nurl = "tcap+{server.url}"\npaging = "next"\n{credentials}\n'


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(f'[agent]\ndata_dir = "{tmp_path}"\n{text}', encoding="utf-8")
    return path


def assert_secrets_absent(secrets: list[str], *texts: str) -> None:
    for secret in secrets:
        for text in texts:
            assert secret not in text


async def test_credentials_from_the_config_file_log_in_once_and_pull_every_page(
    server: TcapServer, http: aiohttp.ClientSession, store: Store, tmp_path: Path
) -> None:
    creds = f'username = "{server.username}"\npassword = "{server.password}"'
    settings = load_settings(write_config(tmp_path, toml_for(server, creds)), environ={})
    assert server.password not in repr(settings) and server.password not in repr(settings.lists.tcap[0])
    result = await list_syncer(settings, store, http).refresh()
    assert result.errors == [] and len(result.added["tat"]) == 6
    assert server.logins == 1 and server.login_forms[0]["username"] == server.username
    pages = [r for r in server.requests if r.status == 200]
    assert len(pages) == 3 and all(r.authorized for r in server.requests)


async def test_credentials_from_the_environment_are_used_and_the_jwt_is_reused_on_the_next_refresh(
    server: TcapServer, http: aiohttp.ClientSession, store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TAT_USER", server.username)
    monkeypatch.setenv("TAT_PASSWORD", server.password)
    creds = 'username_env = "TAT_USER"\npassword_env = "TAT_PASSWORD"'
    settings = load_settings(write_config(tmp_path, toml_for(server, creds)), environ={})
    assert server.password not in repr(settings)
    syncer = list_syncer(settings, store, http)
    first = await syncer.refresh()
    assert first.errors == [] and len(first.added["tat"]) == 6
    server.add(md5("g"), "MD5")
    second = await syncer.refresh()
    assert second.errors == [] and [e.value for e in second.added["tat"]] == [md5("g")]
    assert server.logins == 1  # the token from the first refresh was still good


def test_a_tcap_list_without_a_token_or_credentials_is_refused_naming_the_list(tmp_path: Path) -> None:
    for creds in ("", 'username = "u"', 'token = "t"\nusername = "u"\npassword = "p"'):
        text = f'[[lists.tcap]]\nname = "tat-main"\nurl = "https://tcap.example/api/hash-list/v2/all"\n{creds}\n'
        with pytest.raises(ConfigError) as raised:
            load_settings(write_config(tmp_path, text), environ={})
        assert "tat-main" in str(raised.value) and "username" in str(raised.value)
    # A token alone is still a complete configuration, as before.
    ok = TcapSettings(url="https://tcap.example/api/hash-list/v2/all", token="t")
    assert ok.secret() == "t" and ListSettings(tcap=[ok]).tcap[0].login_username() == ""


async def test_a_token_near_expiry_is_renewed_before_it_is_used(
    server: TcapServer, http: aiohttp.ClientSession, clock: Clock
) -> None:
    auth = login(server, http, clock)
    client = TcapClient(server.url, auth, http)
    first = await client.pull(HashList("tat"), None)
    assert first.pages == 3 and server.logins == 1
    token = next(iter(server.issued))
    assert jwt_expiry(token) == START + server.token_lifetime_s

    clock.now = START + server.token_lifetime_s - 120  # still valid, not yet near its end
    await client.pull(first.list, first.checkpoint)
    assert server.logins == 1

    clock.now = START + server.token_lifetime_s - 30  # valid for 30 s more: too close to use
    server.add(md5("g"), "MD5")
    server.requests.clear()
    third = await client.pull(first.list, first.checkpoint)
    assert server.logins == 2 and [e.value for e in third.added] == [md5("g")]
    assert all(r.authorized for r in server.requests)  # not one request went out with the old token


async def test_a_token_without_exp_is_renewed_after_the_max_age(http: aiohttp.ClientSession, clock: Clock) -> None:
    srv = TcapServer(page_size=10, clock=clock)
    issued: list[str] = []
    await srv.start()
    try:
        srv.add(md5("a"), "MD5")
        original_issue = srv.issue

        def issue_without_exp(exp: float | None) -> str:
            issued.append(original_issue(None))
            return issued[-1]

        srv.issue = issue_without_exp  # type: ignore[method-assign]
        auth = TcapLogin(http, login_url_for(srv.url), srv.username, srv.password, max_age_s=600, clock=clock)
        assert jwt_expiry(await auth.token()) is None
        clock.now += 599
        assert await auth.token() == issued[0] and srv.logins == 1
        clock.now += 2
        assert await auth.token() == issued[1] and srv.logins == 2
    finally:
        await srv.stop()


async def test_a_token_revoked_mid_pull_is_replaced_by_exactly_one_login_and_the_pull_completes(
    server: TcapServer, http: aiohttp.ClientSession, clock: Clock
) -> None:
    auth = login(server, http, clock)
    client = TcapClient(server.url, auth, http, paging="next")
    server.revoke_at_offset = 2  # the second page
    pull = await client.pull(HashList("tat"), None)
    assert pull.pages == 3 and len(pull.added) == 6 and pull.complete
    assert server.logins == 2
    assert [r.status for r in server.requests] == [200, 401, 200, 200]


async def test_a_token_refused_again_after_the_new_login_fails_the_pull_without_a_login_loop(
    server: TcapServer, http: aiohttp.ClientSession, clock: Clock
) -> None:
    server.token_lifetime_s = -10  # the server hands out tokens it already considers expired
    auth = TcapLogin(http, login_url_for(server.url), server.username, server.password, clock=clock)
    with pytest.raises(ListSyncError, match=r"refused the token \(401\)"):
        await TcapClient(server.url, auth, http).pull(HashList("tat"), None)
    assert server.logins == 2


async def test_a_wrong_password_names_the_login_endpoint_and_status_and_leaks_no_secret(
    server: TcapServer, http: aiohttp.ClientSession, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "wrong-Pw-77#unique"
    caplog.set_level(logging.DEBUG)
    config = TcapSourceConfig("tat", "tcap+" + server.url, "", username=server.username, password=wrong)
    syncer = ListSyncer([], [config], http=http, state=MemorySyncStateStore())
    with structlog.testing.capture_logs() as logs:
        result = await syncer.refresh()
    assert len(result.errors) == 1
    error = result.errors[0]
    assert "/token-auth/tcap/" in error and "HTTP 400" in error and "login" in error
    assert server.requests == []  # no page was asked for without a token
    assert_secrets_absent([wrong, server.password], error, repr(logs), caplog.text, repr(config), repr(syncer))

    # The right password: the token it yields stays out of the logs too.
    good = TcapSourceConfig("tat", "tcap+" + server.url, "", username=server.username, password=server.password)
    with structlog.testing.capture_logs() as logs:
        ok = await ListSyncer([], [good], http=http, state=MemorySyncStateStore()).refresh()
    assert ok.errors == [] and server.logins == 1
    assert any(entry["event"] == "tcap.logged_in" for entry in logs)
    assert_secrets_absent([server.password, *server.issued], repr(logs), caplog.text, repr(good))


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (b'{"token": "' + b"x" * (MAX_LOGIN_BYTES + 10) + b'"}', "too large"),
        (b"<html><body>Log in</body></html>", "not JSON"),
        (b'{"user": {"username": "tcap-analyst"}}', "no token"),
        (b'{"token": "abc\\r\\nX-Injected: 1"}', "not a usable header value"),
        (b'{"token": 12345}', "not a usable header value"),
    ],
)
async def test_a_login_answer_that_is_huge_not_json_or_without_a_token_is_a_clear_error(
    server: TcapServer, http: aiohttp.ClientSession, clock: Clock, answer: bytes, message: str
) -> None:
    server.login_answer = answer
    with pytest.raises(ListSyncError) as raised:
        await TcapClient(server.url, login(server, http, clock), http).pull(HashList("tat"), None)
    text = str(raised.value)
    assert message in text and "/token-auth/tcap/" in text and len(text) < 300
    assert server.password not in text and server.requests == []


async def test_concurrent_pulls_share_one_login(server: TcapServer, http: aiohttp.ClientSession, clock: Clock) -> None:
    auth = login(server, http, clock)
    pulls = await asyncio.gather(*(TcapClient(server.url, auth, http).pull(HashList("tat"), None) for _ in range(5)))
    assert [p.pages for p in pulls] == [3] * 5 and all(len(p.added) == 6 for p in pulls)
    assert server.logins == 1


async def test_a_configured_token_still_works_without_any_login(
    server: TcapServer, http: aiohttp.ClientSession
) -> None:
    config = TcapSourceConfig("tat", "tcap+" + server.url, server.token)
    result = await ListSyncer([], [config], http=http, state=MemorySyncStateStore()).refresh()
    assert result.errors == [] and len(result.added["tat"]) == 6 and server.logins == 0
