"""Which processes are alive, read from /proc (Linux): to check that the agent
and its media pools leave no child process behind."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    session: int
    cmdline: str


def processes() -> list[Proc]:
    out: list[Proc] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:  # exited meanwhile
            continue
        # The command name (field 2) is in parentheses and may hold spaces.
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] == "Z":  # a zombie has exited; only its parent has not reaped it yet
            continue
        out.append(Proc(int(entry.name), int(fields[1]), int(fields[3]), cmdline))
    return out


def descendants(pid: int) -> list[Proc]:
    """Living processes whose parent chain leads to `pid`."""
    table = processes()
    children: dict[int, list[Proc]] = {}
    for proc in table:
        children.setdefault(proc.ppid, []).append(proc)
    found: list[Proc] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child.pid)
    return found


def in_session(sid: int) -> list[Proc]:
    """Living processes of session `sid`: they stay in it when orphaned, unlike a parent chain."""
    return [p for p in processes() if p.session == sid]


def alive(pid: int) -> bool:
    return any(p.pid == pid for p in processes())


async def wait_until_gone(select: Callable[[], list[Proc]], deadline_s: float = 60.0) -> list[Proc]:
    """Poll `select()` until it returns no process or the deadline passes; the
    survivors are returned (empty when all are gone)."""
    end = time.monotonic() + deadline_s
    left: list[Proc] = select()
    while left and time.monotonic() < end:
        await asyncio.sleep(0.05)
        left = select()
    return left
