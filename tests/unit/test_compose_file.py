"""The top-level docker-compose.yml: two agents on one PostgreSQL, published on loopback only,
configured through environment variables the agent really reads."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from agent.config import load_settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
# The configuration the image ships (Dockerfile: COPY config/agent.toml /etc/dweb-agent/agent.toml).
IMAGE_CONFIG = ROOT / "config" / "agent.toml"
AGENTS = ("agent-a", "agent-b")
# ${NAME:-default}: the one interpolation form the file uses; a test run sees the defaults.
INTERPOLATION = re.compile(r"\$\{([A-Z_][A-Z0-9_]*):-([^}]*)\}")


def _services() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    services = document["services"]
    assert isinstance(services, dict)
    return services


def _environment(service: dict[str, Any]) -> dict[str, str]:
    """The service's environment as the container sees it with no variables set on the host."""
    env = service["environment"]
    assert isinstance(env, dict), "environment is written as a mapping"
    return {str(k): INTERPOLATION.sub(lambda m: m.group(2), str(v)) for k, v in env.items()}


def test_compose_runs_postgres_and_two_agents() -> None:
    services = _services()
    assert set(services) == {"postgres", *AGENTS}
    postgres = services["postgres"]
    assert re.fullmatch(r"postgres:\d+", postgres["image"]), "the official image, pinned to a major version"
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert any(str(v).endswith(":/var/lib/postgresql/data") for v in postgres["volumes"]), "data on a named volume"
    password = str(postgres["environment"]["POSTGRES_PASSWORD"])
    assert password.startswith("${POSTGRES_PASSWORD:-"), "the password comes from the host's environment"


def test_agents_wait_for_a_healthy_database_and_restart() -> None:
    services = _services()
    for name in AGENTS:
        agent = services[name]
        assert agent["build"] == "."
        assert agent["depends_on"] == {"postgres": {"condition": "service_healthy"}}
        assert agent["restart"] == "unless-stopped"


def test_agent_ports_are_published_on_loopback_only() -> None:
    services = _services()
    host_ports = []
    for name in AGENTS:
        ports = [str(p) for p in services[name]["ports"]]
        for port in ports:
            host, host_port, container_port = port.split(":")
            assert host == "127.0.0.1", f"{name} publishes {port} beyond loopback"
            assert container_port == "9465", "only the API/console; /healthz stays inside the container"
            host_ports.append(host_port)
    assert len(host_ports) == len(AGENTS) and len(set(host_ports)) == len(AGENTS)
    assert "ports" not in services["postgres"], "the database is reachable by the agents only"


def test_both_agents_load_one_database_url_and_distinct_node_names() -> None:
    """Every DWEB_AGENT_* key must name a real setting (load_settings refuses unknown ones), and the
    settings the agents start with point at the compose database under different node names."""
    services = _services()
    loaded = {name: load_settings(IMAGE_CONFIG, environ=_environment(services[name])) for name in AGENTS}
    urls = {s.agent.database() for s in loaded.values()}
    assert len(urls) == 1
    (url,) = urls
    assert url.startswith("postgresql+asyncpg://dweb:") and url.endswith("@postgres:5432/dweb_agent")
    postgres_env = services["postgres"]["environment"]
    assert url.endswith(f"@postgres:5432/{postgres_env['POSTGRES_DB']}")
    assert url.startswith(f"postgresql+asyncpg://{postgres_env['POSTGRES_USER']}:")
    password = INTERPOLATION.sub(lambda m: m.group(2), str(postgres_env["POSTGRES_PASSWORD"]))
    assert f":{password}@" in url, "the agents use the password the database is created with"
    assert {name: s.agent.node_name for name, s in loaded.items()} == {name: name for name in AGENTS}
