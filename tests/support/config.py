"""agent.toml for a `dweb-agent run` under test, written from keyword sections
instead of an f-string each test spells its own way.

    cfg = write_agent_config(tmp_path, gateways={"urls": [gw.url]}, targets=[{"url": f"ipfs://{root}"}])

Defaults (merged key by key with what the test gives): its own data directory
under tmp_path, a free health port and API port, one media worker. `targets` (or any list of
tables) becomes [[targets]] blocks."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

TomlValue = str | int | float | bool | Path | Sequence[str | int | float | Path]
Section = Mapping[str, TomlValue]


@dataclass(frozen=True)
class AgentConfig:
    path: Path  # the agent.toml to pass as --config
    data_dir: Path
    database: str  # the SQLite URL the agent opens (the default, under data_dir)


def write_agent_config(tmp_path: Path, **sections: Section | Sequence[Section]) -> AgentConfig:
    agent = sections.get("agent", {})
    given = agent.get("data_dir") if isinstance(agent, Mapping) else None
    data_dir = Path(str(given)) if given is not None else tmp_path / "data"
    defaults: dict[str, Section] = {
        "agent": {"data_dir": data_dir, "health_port": 0},
        "api": {"port": 0},
        "media": {"workers": 1},
    }
    tables: dict[str, Section] = dict(defaults)
    arrays: dict[str, Sequence[Section]] = {}
    for name, body in sections.items():
        if isinstance(body, Mapping):
            tables[name] = {**defaults.get(name, {}), **body}
        else:
            arrays[name] = body
    lines: list[str] = []
    for name, table in tables.items():
        lines += [f"[{name}]", *(f"{key} = {_value(v)}" for key, v in table.items())]
    for name, blocks in arrays.items():
        for block in blocks:
            lines += [f"[[{name}]]", *(f"{key} = {_value(v)}" for key, v in block.items())]
    path = tmp_path / "agent.toml"
    path.write_text("\n".join(lines) + "\n")
    return AgentConfig(path, data_dir, f"sqlite+aiosqlite:///{data_dir / 'agent.sqlite3'}")


def _value(v: TomlValue) -> str:
    # TOML's basic strings take JSON's escapes, so json.dumps spells a string for both.
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str | Path):
        return json.dumps(str(v))
    return "[" + ", ".join(_value(x) for x in v) + "]"
