"""`dweb-agent targets` and `status` as an operator uses them, on the agent's own database."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.cli import run_cli

CID = "bafybeihchr7vmgjaasntayyatmp5sv6xza57iy2h4xj7g46bpjij6yhrmy"


def env(tmp_path: Path) -> dict[str, str]:
    return {"DWEB_AGENT_AGENT_DATA_DIR": str(tmp_path / "data"), "DWEB_AGENT_AGENT_HEALTH_PORT": "9"}


async def test_targets_add_list_remove_and_status(tmp_path: Path) -> None:
    e = env(tmp_path)
    added = await run_cli("targets", "add", f"/ipfs/{CID}", "--interval", "120", env=e)
    assert added.code == 0 and f"ipfs://{CID}" in added.stdout
    dup = await run_cli("targets", "add", f"ipfs://{CID}", env=e)
    assert dup.code == 2 and "already watched" in dup.stderr
    bad = await run_cli("targets", "add", "ipns://not a name", env=e)
    assert bad.code == 2 and "neither an IPNS key nor a DNS name" in bad.stderr
    assert (await run_cli("targets", "add", "dnslink://example.org", env=e)).code == 0

    listed = json.loads((await run_cli("targets", "list", "--format", "json", env=e)).stdout)
    assert [(t["url"], t["kind"], t["interval_s"]) for t in listed] == [
        (f"ipfs://{CID}", "ipfs", 120),
        ("dnslink://example.org", "dnslink", 600),
    ]
    assert (tmp_path / "data" / "agent.sqlite3").is_file()

    status = json.loads((await run_cli("status", "--format", "json", env=e)).stdout)
    assert status["agent"]["running"] is False and status["database"] == "sqlite"
    assert len(status["targets"]) == 2 and status["items"] == 0 and status["findings"] == 0

    assert (await run_cli("targets", "remove", f"ipfs://{CID}", env=e)).code == 0
    assert (await run_cli("targets", "remove", "42", env=e)).code == 2
    listed = json.loads((await run_cli("targets", "list", "--format", "json", env=e)).stdout)
    assert [t["url"] for t in listed] == ["dnslink://example.org"]
