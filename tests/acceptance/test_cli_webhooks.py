"""`dweb-agent webhooks` and `findings` as an operator and an analyst use them."""

from __future__ import annotations

import json
from pathlib import Path

from standardwebhooks import Webhook

from agent.store import FindingRow, ItemRow, Store
from tests.support.cli import run_cli
from tests.support.webhook_receiver import WebhookReceiver


def env(tmp_path: Path) -> dict[str, str]:
    return {"DWEB_AGENT_AGENT_DATA_DIR": str(tmp_path / "data"), "DWEB_AGENT_AGENT_HEALTH_PORT": "9",
            "DWEB_AGENT_ALERTS_ALLOW_HOSTS": "127.0.0.1"}


async def test_add_test_rotate_list_remove(tmp_path: Path) -> None:
    e = env(tmp_path)
    refused = await run_cli("webhooks", "add", "http://10.0.0.1/hook", env=e)
    assert refused.code == 2 and "10.0.0.1" in refused.stderr
    metadata = await run_cli("webhooks", "add", "http://169.254.169.254/latest", env=e)
    assert metadata.code == 2

    async with WebhookReceiver([]) as receiver:
        added = await run_cli("webhooks", "add", receiver.url("/hook"), "--lists", "tcap", "--format", "json", env=e)
        assert added.code == 0, added.stderr
        sub = json.loads(added.stdout)
        secret = sub["secret"]
        assert secret.startswith("whsec_") and sub["lists"] == ["tcap"]
        receiver.secrets.append(secret)

        tested = await run_cli("webhooks", "test", str(sub["id"]), env=e)
        assert tested.code == 0 and "delivered: HTTP 204" in tested.stdout
        (got,) = receiver.at("/hook")
        assert got.verified and json.loads(got.body)["type"] == "webhook.test"

        listed = json.loads((await run_cli("webhooks", "list", "--format", "json", env=e)).stdout)
        assert [s["url"] for s in listed] == [receiver.url("/hook")]
        assert "secret" not in listed[0] and secret not in json.dumps(listed)

        rotated = await run_cli("webhooks", "rotate-secret", str(sub["id"]), "--grace", "3600", env=e)
        new = rotated.stdout.split("store it now): ")[1].split()[0]
        assert new.startswith("whsec_") and new != secret
        assert (await run_cli("webhooks", "test", str(sub["id"]), env=e)).code == 0
        second = receiver.at("/hook")[1]
        assert len(second.headers["webhook-signature"].split()) == 2, "old and new secret both sign during the grace"
        Webhook(new).verify(second.body, second.headers)
        Webhook(secret).verify(second.body, second.headers)

        receiver.script("/hook", status=410)
        gone = await run_cli("webhooks", "test", str(sub["id"]), env=e)
        assert gone.code == 2 and "410" in gone.stdout
        listed = json.loads((await run_cli("webhooks", "list", "--format", "json", env=e)).stdout)
        assert listed[0]["enabled"] is False and "410" in listed[0]["disabled_reason"]

    assert (await run_cli("webhooks", "remove", str(sub["id"]), env=e)).code == 0
    assert json.loads((await run_cli("webhooks", "list", "--format", "json", env=e)).stdout) == []


async def test_findings_review_keeps_an_audit_trail(tmp_path: Path) -> None:
    e = env(tmp_path)
    (tmp_path / "data").mkdir()
    async with await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'data' / 'agent.sqlite3'}") as store:
        await store.record_item(ItemRow(key="1220aa", status="verified", signals={"md5": "0" * 32}), None,
                                [FindingRow("1220aa", "tcap", "tcap:1", "0" * 32, "md5", 0.0)])
    (finding,) = json.loads((await run_cli("findings", "list", "--format", "json", env=e)).stdout)
    assert finding["retracted"] is False
    confirmed = await run_cli("findings", "review", str(finding["id"]), "--confirmed", "--reviewer", "a1", env=e)
    assert confirmed.code == 0
    wrong = await run_cli("findings", "review", str(finding["id"]), "--false-positive", "--note", "a bridge",
                          "--reviewer", "a2", env=e)
    assert wrong.code == 0 and "retracted" in wrong.stdout
    (finding,) = json.loads((await run_cli("findings", "list", "--format", "json", env=e)).stdout)
    assert finding["retracted"] is True
    async with await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'data' / 'agent.sqlite3'}") as store:
        assert [(r.verdict, r.reviewer, r.note) for r in await store.reviews_of(finding["id"])] == [
            ("confirmed", "a1", None), ("false_positive", "a2", "a bridge")]
    missing = await run_cli("findings", "review", "999", "--confirmed", env=e)
    assert missing.code == 2 and "no finding 999" in missing.stderr
