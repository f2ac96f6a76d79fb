"""Run the installed `dweb-agent` command as a user would, without blocking the test's event loop."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path


def dweb_agent_command() -> list[str]:
    script = Path(sys.executable).parent / "dweb-agent"
    if script.exists():
        return [str(script)]
    found = shutil.which("dweb-agent")
    return [found] if found else [sys.executable, "-m", "agent"]


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str


# ASYNC109: the bound is part of each caller's statement of the test (a daemon run gets 60 s);
# the helper applies it to the subprocess alone, not to the caller's surrounding work.
async def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> Result:  # noqa: ASYNC109
    full_env = {**os.environ, **(env or {})}
    proc = await asyncio.create_subprocess_exec(
        *dweb_agent_command(),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=full_env,
        stdin=asyncio.subprocess.DEVNULL,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode(), err.decode())


async def spawn_agent(config: Path, log: Path, node: str) -> asyncio.subprocess.Process:
    """`dweb-agent run --config CONFIG` in the background, its logs appended to LOG.

    A file, not a pipe: an unread pipe would fill up and stall the agent."""
    with log.open("ab") as sink:
        return await asyncio.create_subprocess_exec(
            *dweb_agent_command(),
            "run",
            "--config",
            str(config),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=sink,
            env={**os.environ, "DWEB_AGENT_AGENT_NODE_NAME": node},
        )
