"""The real `dweb-agent run` as a subprocess on 127.0.0.1, for tests that drive it from outside (a browser).

    text = config_toml(tmp_path / "data", gateways=[gw.url], lists=[list_dir])
    async with AgentProcess.start(tmp_path, config_text=text) as agent:
        token = await agent.token(Role.INVESTIGATOR, "alice")
        await page.goto(agent.ui_url)

The agent reads only the config file written here (every inherited DWEB_AGENT_* variable is
dropped, so the developer's shell cannot point it elsewhere) and listens on free ports; its
`agent.started` log line says where. At exit it is stopped with SIGTERM (SIGKILL after a
deadline) and the test fails if it exited early or with an error, did not stop in time,
logged a traceback, or left a process behind."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import tomllib
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from agent.model.access import Role
from tests.support.cli import Result, dweb_agent_command
from tests.support.postgres import connect_admin, postgres_url
from tests.support.processes import in_session, wait_until_gone
from tests.support.wait import until

TomlValue = str | int | float | bool | Path | Sequence[str | int | float | Path]
# Generous for a busy CI machine; a fast one never waits for them (each is polled).
START_S = 90.0
STOP_S = 60.0
_CLI_S = 120.0
_TRACEBACK = "Traceback (most recent call last)"
_TAIL = 40  # log lines quoted in a failure


def config_toml(
    data_dir: Path,
    *,
    gateways: Sequence[str] = (),
    lists: Sequence[str | Path] = (),
    allow_hosts: Sequence[str] = ("127.0.0.1",),
    webhook_hosts: Sequence[str] = ("127.0.0.1",),
    database_url: str = "",
    settings: Mapping[str, Mapping[str, TomlValue]] | None = None,
    extra: str = "",
) -> str:
    """A valid agent.toml: data in `data_dir` (empty `database_url`: SQLite there), free health
    and API ports, one media worker, these [gateways] urls and [lists] sources. Loopback may be
    named by API callers ([api] allow_hosts: a scan form's gateway on 127.0.0.1) and receive
    webhooks ([alerts] allow_hosts) unless the test passes other hosts. `settings` adds or
    overrides keys section by section ({"console": {"blur_previews": False}}); `extra` is TOML
    appended as it is, for tables of their own ([[targets]], [console.label_weights."*"])."""
    sections: dict[str, dict[str, TomlValue]] = {
        "agent": {"data_dir": data_dir, "health_port": 0, "database_url": database_url},
        "api": {"port": 0, "allow_hosts": list(allow_hosts)},
        "gateways": {"urls": list(gateways)},
        "lists": {"sources": list(lists)},
        "alerts": {"allow_hosts": list(webhook_hosts)},
        "media": {"workers": 1},
    }
    for name, keys in (settings or {}).items():
        sections[name] = {**sections.get(name, {}), **keys}
    lines: list[str] = []
    for name, keys in sections.items():
        lines += [f"[{name}]", *(f"{key} = {_toml(value)}" for key, value in keys.items()), ""]
    text = "\n".join(lines) + (extra.strip() + "\n" if extra.strip() else "")
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:  # most likely `extra` redefining a table above
        raise ValueError(f"config_toml made invalid TOML ({exc}):\n{text}") from exc
    return text


@contextlib.asynccontextmanager
async def fresh_postgres_database() -> AsyncIterator[str]:
    """The URL of a new, empty PostgreSQL database on the test server (dropped at exit), for an
    agent process: unlike the in-process store fixture it cannot be handed a schema of its own.
    A server that is down skips the test, or fails it under CI (tests.support.postgres)."""
    admin = await connect_admin(postgres_url())
    name = f"t_{uuid.uuid4().hex[:12]}"
    # CREATE and DROP DATABASE cannot run inside a transaction.
    engine = admin.execution_options(isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        try:
            yield make_url(postgres_url()).set(database=name).render_as_string(hide_password=False)
        finally:
            async with engine.connect() as conn:
                # FORCE: a killed agent may still hold a connection the server has not dropped yet.
                await conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()


def _toml(value: TomlValue) -> str:
    # TOML's basic strings take JSON's escapes, so json.dumps spells a string for both.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str | Path):
        return json.dumps(str(value))
    return "[" + ", ".join(_toml(v) for v in value) + "]"


def _agent_env(env: Mapping[str, str] | None) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DWEB_AGENT_")}
    return {**clean, **(env or {})}


class _Lines:
    """Lines of one pipe, read to its end as they come (an unread pipe would stall the agent)."""

    def __init__(self, stream: asyncio.StreamReader, into: list[str]) -> None:
        self._stream = stream
        self._into = into
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        # Chunks, not readline(): a line longer than the reader's limit (a long traceback)
        # must not end the reading.
        pending = b""
        while chunk := await self._stream.read(65536):
            pending += chunk
            *done, pending = pending.split(b"\n")
            self._into.extend(line.decode(errors="replace") for line in done)
        if pending:
            self._into.append(pending.decode(errors="replace"))


class AgentProcess:
    """One running `dweb-agent run` (see the module docstring); made by `AgentProcess.start`."""

    def __init__(self, proc: asyncio.subprocess.Process, config_path: Path, env: dict[str, str]) -> None:
        self.proc = proc
        self.config_path = config_path
        self._env = env
        self._logs: list[str] = []
        assert proc.stdout is not None and proc.stderr is not None
        self._readers = [_Lines(proc.stderr, self._logs), _Lines(proc.stdout, self._logs)]
        self.api_url = ""  # http://127.0.0.1:PORT, from agent.started
        self.health_url = ""  # http://127.0.0.1:PORT/healthz

    @property
    def ui_url(self) -> str:
        assert self.api_url, "the agent serves no API ([api] enabled = false), so no console"
        return self.api_url + "/ui/"

    @property
    def logs(self) -> list[str]:
        """Every line the agent wrote so far (stderr and stdout; JSON, one record a line)."""
        return list(self._logs)

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        """The JSON log records so far, only those whose `event` is `name` when given."""
        records: list[dict[str, Any]] = []
        for line in self._logs:
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if isinstance(record, dict) and (name is None or record.get("event") == name):
                    records.append(record)
        return records

    async def wait_for_event(self, name: str, seconds: float = START_S) -> dict[str, Any]:
        """The first log record named `name`, once the agent has written it (fails after `seconds`,
        or at once if the agent exited)."""

        await until(
            lambda: bool(self.events(name)) or self.proc.returncode is not None,
            seconds,
            lambda: self._why(f"logged no {name} within {seconds} s"),
        )
        if not self.events(name):  # it exited: its last words may still be in the pipes
            await self._drain(STOP_S)
            raise AssertionError(self._why(f"exited before logging {name}"))
        return self.events(name)[0]

    async def _drain(self, seconds: float) -> None:
        # The pipes close once every process holding them is gone.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*(r.task for r in self._readers)), seconds)

    async def cli(self, *args: str) -> Result:
        """`dweb-agent ARGS` against this agent's config and database, as an operator would run it."""
        env = {**self._env, "DWEB_AGENT_CONFIG": str(self.config_path)}
        proc = await asyncio.create_subprocess_exec(
            *dweb_agent_command(),
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), _CLI_S)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise AssertionError(f"dweb-agent {' '.join(args)} did not finish within {_CLI_S} s") from None
        assert proc.returncode is not None
        return Result(proc.returncode, out.decode(errors="replace"), err.decode(errors="replace"))

    async def token(self, role: Role | str, name: str) -> str:
        """A new API token of `role` for principal `name` (`dweb-agent tokens add`)."""
        made = await self.cli(
            "tokens", "add", "--role", Role(role).value, "--name", name, "--config", str(self.config_path)
        )
        token = made.stdout.strip()
        assert made.code == 0 and token and "\n" not in token, f"tokens add failed ({made.code}): {made.stderr}"
        return token

    def _why(self, what: str) -> str:
        tail = "\n".join(self._logs[-_TAIL:])
        code = "" if self.proc.returncode is None else f" (exit code {self.proc.returncode})"
        return f"the agent {what}{code}; its last log lines:\n{tail}"

    @classmethod
    @contextlib.asynccontextmanager
    async def start(
        cls,
        tmp_path: Path,
        *,
        config_text: str | None = None,
        env: Mapping[str, str] | None = None,
        start_s: float = START_S,
        stop_s: float = STOP_S,
    ) -> AsyncIterator[AgentProcess]:
        """Write `config_text` (default: `config_toml(tmp_path / "data")`) to tmp_path/agent.toml,
        start the agent on it with `env` added, and return once it logged agent.started."""
        config_path = tmp_path / "agent.toml"
        config_path.write_text(config_text if config_text is not None else config_toml(tmp_path / "data"))
        full_env = _agent_env(env)
        proc = await asyncio.create_subprocess_exec(
            *dweb_agent_command(),
            "run",
            "--config",
            str(config_path),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=full_env,
            cwd=tmp_path,
            # Its own session: its media workers can be found, and killed, as one group.
            start_new_session=True,
        )
        agent = cls(proc, config_path, full_env)
        try:
            started = await agent.wait_for_event("agent.started", start_s)
            agent.api_url = str(started.get("api") or "")
            agent.health_url = str(started["health"])
        except BaseException:
            await agent._stop(stop_s)
            raise
        try:
            yield agent
        except BaseException as exc:
            problems = await agent._stop(stop_s)
            for problem in problems:
                exc.add_note(f"agent: {problem}")
            exc.add_note(agent._why("was running when the test failed"))
            raise
        problems = await agent._stop(stop_s)
        assert not problems, agent._why("did not stop cleanly: " + "; ".join(problems))

    async def _stop(self, stop_s: float) -> list[str]:
        """SIGTERM, then SIGKILL to its whole session after `stop_s`; what went wrong."""
        problems: list[str] = []
        session = self.proc.pid
        if self.proc.returncode is not None:
            problems.append(f"exited on its own while the test ran, code {self.proc.returncode}")
        else:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), stop_s)
            except TimeoutError:
                problems.append(f"did not stop within {stop_s} s of SIGTERM (killed)")
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(session, signal.SIGKILL)
                await self.proc.wait()
            else:
                if self.proc.returncode != 0:
                    problems.append(f"exited with code {self.proc.returncode} on SIGTERM")
        left = await wait_until_gone(lambda: in_session(session), stop_s)
        if left:
            problems.append("left processes behind: " + ", ".join(f"{p.pid} {p.cmdline!r}" for p in left))
            with contextlib.suppress(ProcessLookupError):
                os.killpg(session, signal.SIGKILL)
        await self._drain(stop_s)
        if any(_TRACEBACK in line for line in self._logs):
            problems.append("logged a traceback")
        return problems
