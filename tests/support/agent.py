"""Settings for an in-process Agent under test: its own data directory, one media
worker, no fixed health or API port, the given gateways and lists."""

from __future__ import annotations

from pathlib import Path

from agent.config import AgentSettings, ApiSettings, GatewaySettings, ListSettings, MediaSettings, Settings


def settings_for(tmp_path: Path, *gateways: str, lists: list[str] | None = None) -> Settings:
    return Settings(
        agent=AgentSettings(data_dir=tmp_path / "data", health_port=0),
        api=ApiSettings(port=0),
        gateways=GatewaySettings(urls=list(gateways), read_timeout_s=5),
        media=MediaSettings(workers=1),
        lists=ListSettings(sources=lists or []),
    )
