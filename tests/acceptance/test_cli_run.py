"""`dweb-agent run` with the shipped config: starts with no setup, logs JSON, stops on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp

from tests.conftest import MEDIA_FIXTURES
from tests.support.cli import dweb_agent_command, run_cli
from tests.support.gateway import FixtureGateway
from tests.support.unixfs_builder import UnixFSBuilder


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_run_starts_with_the_default_config_serves_health_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "DWEB_AGENT_AGENT_DATA_DIR": str(tmp_path / "data"), "DWEB_AGENT_AGENT_HEALTH_PORT": str(port)}
    proc = await asyncio.create_subprocess_exec(
        *dweb_agent_command(), "run", env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    assert proc.stderr is not None
    try:
        started: dict[str, object] = {}
        while started.get("event") != "agent.started":
            line = await asyncio.wait_for(proc.stderr.readline(), 60)
            assert line, "the agent exited before it started"
            started = json.loads(line)  # every line is JSON, because stderr is not a terminal
        assert started["level"] == "info" and started["targets"] == 0 and started["database"] == "sqlite"
        assert (tmp_path / "data" / "agent.sqlite3").is_file(), "the embedded database is created at start"
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                assert resp.status == 200 and (await resp.json())["status"] == "ok"
            async with http.get(f"http://127.0.0.1:{port}/metrics") as resp:
                assert "dweb_agent_up 1.0" in await resp.text()
        proc.send_signal(signal.SIGTERM)
        rest = (await asyncio.wait_for(proc.stderr.read(), 60)).decode()
        assert await asyncio.wait_for(proc.wait(), 60) == 0
        events = [json.loads(x)["event"] for x in rest.splitlines() if x.strip()]
        assert events[-2:] == ["agent.stopping", "agent.stopped"]
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_ctrl_c_after_a_poll_stops_run_with_exit_0_and_no_traceback(
    make_gateway: Callable[..., Awaitable[FixtureGateway]], tmp_path: Path
) -> None:
    """Ctrl-C at a terminal signals the whole process group: the agent and the media
    workers its poll started."""
    builder = UnixFSBuilder()
    cid, size = builder.add_file((MEDIA_FIXTURES / "pdq" / "bridge-mods" / "aaa-orig.jpg").read_bytes())
    root, _ = builder.add_directory({"photo.jpg": (cid, size)})
    gw = await make_gateway()
    gw.add_blocks(builder.blocks)
    env = {
        **os.environ,
        "DWEB_AGENT_AGENT_DATA_DIR": str(tmp_path / "data"),
        "DWEB_AGENT_AGENT_HEALTH_PORT": "0",
        "DWEB_AGENT_MEDIA_WORKERS": "1",
        "DWEB_AGENT_GATEWAYS_URLS": gw.url,
    }
    added = await run_cli("targets", "add", f"ipfs://{root}", env=env)
    assert added.code == 0, added.stderr
    proc = await asyncio.create_subprocess_exec(
        *dweb_agent_command(),
        "run",
        env=env,
        start_new_session=True,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stderr is not None
    seen: list[str] = []
    try:
        while "target.polled" not in seen:
            line = await asyncio.wait_for(proc.stderr.readline(), 90)
            assert line, f"the agent exited before it polled: {seen}"
            seen.append(json.loads(line)["event"])
        os.killpg(proc.pid, signal.SIGINT)
        rest = (await asyncio.wait_for(proc.stderr.read(), 60)).decode()
        assert await asyncio.wait_for(proc.wait(), 60) == 0, rest
        assert "Traceback" not in rest and "KeyboardInterrupt" not in rest, rest
        events = [json.loads(x)["event"] for x in rest.splitlines() if x.strip()]  # every line JSON
        assert events[-2:] == ["agent.stopping", "agent.stopped"]
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_run_that_cannot_start_says_why_in_json_lines_and_exits_2(tmp_path: Path) -> None:
    env = {"DWEB_AGENT_AGENT_DATA_DIR": str(tmp_path / "data"), "DWEB_AGENT_AGENT_HEALTH_PORT": "0"}
    bad_config = tmp_path / "agent.toml"
    bad_config.write_text("[agent]\nshutdown_grace_s = -1\n")
    unreachable = f"postgresql+asyncpg://postgres@127.0.0.1:{_free_port()}/test"  # nothing listens there
    for args, extra, why in (
        (["--config", str(bad_config)], {}, "shutdown_grace_s"),
        ([], {"DWEB_AGENT_AGENT_DATABASE_URL": unreachable}, "Connect"),
    ):
        result = await run_cli("run", *args, env={**env, **extra}, timeout=60)
        assert result.code == 2, result.stderr
        lines = [json.loads(x) for x in result.stderr.splitlines()]  # every line JSON, the traceback inside one
        assert lines[-1]["level"] == "error" and why in lines[-1]["error"], lines[-1]
