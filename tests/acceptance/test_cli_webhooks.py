"""`dweb-agent webhooks` and `findings` as an operator and an analyst use them."""

from __future__ import annotations

import asyncio
import json
import re
import socket
from pathlib import Path

from standardwebhooks import Webhook

from agent.alerts.events import FindingOutbox
from agent.model.events import ItemContext
from agent.model.signals import ItemSignals, Signal, SignalType
from agent.model.status import ItemState
from agent.store import FindingRow, ItemRow, LocationRow, Store
from tests.support.cli import run_cli
from tests.support.webhook_receiver import WebhookReceiver


def env(tmp_path: Path) -> dict[str, str]:
    return {
        "DWEB_AGENT_AGENT_DATA_DIR": str(tmp_path / "data"),
        "DWEB_AGENT_AGENT_HEALTH_PORT": "9",
        "DWEB_AGENT_ALERTS_ALLOW_HOSTS": "127.0.0.1",
    }


async def test_add_test_rotate_list_remove(tmp_path: Path) -> None:
    e = env(tmp_path)
    refused = await run_cli("webhooks", "add", "http://10.0.0.1/hook", env=e)
    assert refused.code == 2 and "10.0.0.1" in refused.stderr
    metadata = await run_cli("webhooks", "add", "http://169.254.169.254/latest", env=e)
    assert metadata.code == 2

    async with WebhookReceiver([]) as receiver:
        added = await run_cli(
            "webhooks",
            "add",
            receiver.url("/hook"),
            "--lists",
            "tcap",
            "--allow-unknown-lists",
            "--format",
            "json",
            env=e,
        )
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
        assert gone.code == 2 and "not delivered: HTTP 410" in gone.stdout and "now disabled" in gone.stdout
        listed = json.loads((await run_cli("webhooks", "list", "--format", "json", env=e)).stdout)
        assert listed[0]["enabled"] is False and "410" in listed[0]["disabled_reason"]

    assert (await run_cli("webhooks", "remove", str(sub["id"]), env=e)).code == 0
    assert json.loads((await run_cli("webhooks", "list", "--format", "json", env=e)).stdout) == []


ISO_SECONDS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


SIGNALS = ItemSignals((Signal(SignalType.MD5, "0" * 32),))


async def record_a_finding(tmp_path: Path) -> None:
    """What the daemon records for a match: the item, where it was seen, the finding and its alert."""
    async with await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'data' / 'agent.sqlite3'}") as store:
        target = await store.targets.add("ipns://k51example", "ipns", 600)
        await store.subscriptions.add("https://platform.example/hook", "whsec_" + "A" * 43)
        context = ItemContext(
            key="1220aa",
            cid="bafkreiexample",
            path="dir/a b.jpg",
            root="bafybeiroot",
            target_id=target.id,
            target_url=target.url,
            size=1234,
            media_type="image/jpeg",
            signals=SIGNALS,
        )
        await store.items.record(
            ItemRow(
                key="1220aa",
                status=ItemState.VERIFIED,
                cid="bafkreiexample",
                size=1234,
                media_type="image/jpeg",
                signals=SIGNALS,
            ),
            LocationRow(
                item_key="1220aa",
                path="dir/a b.jpg",
                target_id=target.id,
                root_cid="bafybeiroot",
                gateway="http://127.0.0.1:8080",
            ),
            [
                FindingRow(
                    "1220aa",
                    "tcap",
                    "tcap:1",
                    "0" * 32,
                    SignalType.MD5,
                    0.0,
                    labels=("ideology:far-right",),
                    query="0" * 32,
                    list_source="tcap.json",
                )
            ],
            outbox=FindingOutbox(context, ["http://127.0.0.1:8080"]),
        )


async def test_findings_list_and_show_say_where_what_and_the_review_state(tmp_path: Path) -> None:
    e = {**env(tmp_path), "DWEB_AGENT_GATEWAYS_URLS": "http://127.0.0.1:8080"}
    (tmp_path / "data").mkdir()
    await record_a_finding(tmp_path)
    (finding,) = json.loads((await run_cli("findings", "list", "--format", "json", env=e)).stdout)
    assert {
        k: finding[k]
        for k in (
            "path",
            "cid",
            "root",
            "target",
            "query",
            "list",
            "entry_id",
            "entry",
            "distance",
            "labels",
            "review",
            "retracted",
            "link",
        )
    } == {
        "path": "dir/a b.jpg",
        "cid": "bafkreiexample",
        "root": "bafybeiroot",
        "target": {"id": 1, "url": "ipns://k51example"},
        "query": "0" * 32,
        "list": "tcap",
        "entry_id": "tcap:1",
        "entry": "0" * 32,
        "distance": 0.0,
        "labels": ["ideology:far-right"],
        "review": "unreviewed",
        "retracted": False,
        "link": "http://127.0.0.1:8080/ipfs/bafybeiroot/dir/a%20b.jpg",
    }
    assert ISO_SECONDS.match(finding["created_at"]), finding["created_at"]

    table = await run_cli("findings", "list", "--format", "table", env=e)
    assert table.code == 0 and "dir/a b.jpg" in table.stdout and "unreviewed" in table.stdout

    shown = json.loads((await run_cli("findings", "show", str(finding["id"]), "--format", "json", env=e)).stdout)
    assert shown["path"] == "dir/a b.jpg" and shown["item"]["media_type"] == "image/jpeg"
    assert shown["detail"] == {"list_source": "tcap.json"}
    assert [loc["gateway"] for loc in shown["locations"]] == ["http://127.0.0.1:8080"]
    assert [(d["event_type"], d["subscription_url"], d["status"]) for d in shown["deliveries"]] == [
        ("finding.created", "https://platform.example/hook", "pending")
    ]
    assert shown["reviews"] == [] and shown["content"] is None
    assert all(
        ISO_SECONDS.match(v)
        for v in (shown["created_at"], shown["item"]["first_seen_at"], shown["locations"][0]["first_seen_at"])
    )
    text = await run_cli("findings", "show", str(finding["id"]), "--format", "table", env=e)
    assert text.code == 0 and "matched hash: " + "0" * 32 in text.stdout and "ipns://k51example" in text.stdout
    missing = await run_cli("findings", "show", "999", env=e)
    assert missing.code == 2 and "no finding 999" in missing.stderr


async def test_findings_review_keeps_an_audit_trail(tmp_path: Path) -> None:
    e = env(tmp_path)
    (tmp_path / "data").mkdir()
    await record_a_finding(tmp_path)
    (finding,) = json.loads((await run_cli("findings", "list", "--format", "json", env=e)).stdout)
    fid = str(finding["id"])
    assert finding["retracted"] is False

    both = await run_cli("findings", "review", fid, "--confirmed", "--false-positive", env=e)
    assert both.code == 2 and "exactly one verdict" in both.stderr
    neither = await run_cli("findings", "review", fid, env=e)
    assert neither.code == 2 and "exactly one verdict" in neither.stderr
    assert json.loads((await run_cli("findings", "reviews", fid, "--format", "json", env=e)).stdout) == []

    confirmed = await run_cli("findings", "review", fid, "--confirmed", "--reviewer", "a1", env=e)
    assert confirmed.code == 0
    (finding,) = json.loads((await run_cli("findings", "list", "--format", "json", env=e)).stdout)
    assert finding["review"] == "confirmed" and ISO_SECONDS.match(finding["reviewed_at"])
    wrong = await run_cli(
        "findings", "review", fid, "--false-positive", "--note", "a bridge", "--reviewer", "a2", env=e
    )
    assert wrong.code == 0 and "retracted" in wrong.stdout
    (finding,) = json.loads((await run_cli("findings", "list", "--format", "json", env=e)).stdout)
    assert finding["retracted"] is True and finding["review"] == "false_positive"
    assert finding["retraction"]["reason"] == "false_positive"

    trail = json.loads((await run_cli("findings", "reviews", fid, "--format", "json", env=e)).stdout)
    assert [(r["verdict"], r["reviewer"], r["note"]) for r in trail] == [
        ("confirmed", "a1", None),
        ("false_positive", "a2", "a bridge"),
    ]
    assert all(ISO_SECONDS.match(r["created_at"]) for r in trail)
    everyone = json.loads((await run_cli("findings", "reviews", "--format", "json", env=e)).stdout)
    assert [r["verdict"] for r in everyone] == ["false_positive", "confirmed"], "newest first across findings"
    assert everyone[0]["list"] == "tcap" and everyone[0]["entry_id"] == "tcap:1"
    shown = json.loads((await run_cli("findings", "show", fid, "--format", "json", env=e)).stdout)
    assert [r["verdict"] for r in shown["reviews"]] == ["confirmed", "false_positive"]
    assert [d["event_type"] for d in shown["deliveries"]] == ["finding.created", "finding.retracted"]

    missing = await run_cli("findings", "review", "999", "--confirmed", env=e)
    assert missing.code == 2 and "no finding 999" in missing.stderr
    assert (await run_cli("findings", "reviews", "999", env=e)).code == 2


def without_allow_hosts(e: dict[str, str]) -> dict[str, str]:
    return {**e, "DWEB_AGENT_ALERTS_ALLOW_HOSTS": ""}


async def test_a_guard_refusal_is_explained_retried_and_never_disables(tmp_path: Path) -> None:
    e = env(tmp_path)
    async with WebhookReceiver([]) as receiver:
        added = json.loads((await run_cli("webhooks", "add", receiver.url("/hook"), "--format", "json", env=e)).stdout)
        receiver.secrets.append(added["secret"])
        sid = str(added["id"])

        # Run without the configuration that allowed the host: refused, explained, kept.
        refused = await run_cli("webhooks", "test", sid, env=without_allow_hosts(e))
        assert refused.code == 2 and receiver.received == []
        line = refused.stdout.strip()
        assert line.startswith("not delivered: refused by the SSRF guard: "), line
        assert "[alerts] allow_hosts" in line and "'127.0.0.1'" in line and "loopback address 127.0.0.1" in line
        assert "HTTP -" not in line and "the agent tries again at " in line
        (listed,) = json.loads((await run_cli("webhooks", "list", "--format", "json", env=e)).stdout)
        assert listed["enabled"] is True and listed["failing_since"] is None

        # With the right configuration the same subscription works, with its original secret.
        ok = await run_cli("webhooks", "test", sid, env=e)
        assert ok.code == 0 and ok.stdout.strip() == "delivered: HTTP 204", ok.stdout
        assert receiver.received and all(r.verified for r in receiver.received)


async def test_enable_brings_a_disabled_subscription_back_with_its_secret(tmp_path: Path) -> None:
    e = env(tmp_path)
    async with WebhookReceiver([]) as receiver:
        added = json.loads((await run_cli("webhooks", "add", receiver.url("/hook"), "--format", "json", env=e)).stdout)
        secret, sid = added["secret"], str(added["id"])
        receiver.secrets.append(secret)
        receiver.script("/hook", statuses=[410])
        assert (await run_cli("webhooks", "test", sid, env=e)).code == 2

        disabled = await run_cli("webhooks", "test", sid, env=e)
        assert disabled.code == 2 and f"webhooks enable {sid}" in disabled.stderr, disabled.stderr
        assert "410" in disabled.stderr and len(receiver.received) == 1, "a disabled subscription is not sent to"

        enabled = await run_cli("webhooks", "enable", sid, env=e)
        assert enabled.code == 0 and "was disabled: endpoint answered 410 Gone" in enabled.stdout, enabled.stdout
        (listed,) = json.loads((await run_cli("webhooks", "list", "--format", "json", env=e)).stdout)
        assert listed["enabled"] is True and listed["disabled_reason"] is None and listed["failing_since"] is None
        ok = await run_cli("webhooks", "test", sid, env=e)
        assert ok.code == 0, ok.stdout
        Webhook(secret).verify(receiver.received[-1].body, receiver.received[-1].headers)

    missing = await run_cli("webhooks", "enable", "999", env=e)
    assert missing.code == 2 and "no subscription 999" in missing.stderr


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_test_says_why_a_delivery_failed(tmp_path: Path) -> None:
    e = {**env(tmp_path), "DWEB_AGENT_ALERTS_DELIVERY_TIMEOUT_S": "1"}
    nobody = json.loads(
        (await run_cli("webhooks", "add", f"http://127.0.0.1:{closed_port()}/hook", "--format", "json", env=e)).stdout
    )
    refused = await run_cli("webhooks", "test", str(nobody["id"]), env=e)
    assert refused.code == 2 and refused.stdout.startswith("not delivered: connection refused: "), refused.stdout

    async with WebhookReceiver([]) as receiver:
        receiver.script("/slow", hold=asyncio.Event())
        receiver.script("/broken", status=500)
        slow = json.loads((await run_cli("webhooks", "add", receiver.url("/slow"), "--format", "json", env=e)).stdout)
        broken = json.loads(
            (await run_cli("webhooks", "add", receiver.url("/broken"), "--format", "json", env=e)).stdout
        )
        timed_out = await run_cli("webhooks", "test", str(slow["id"]), env=e)
        assert timed_out.code == 2 and timed_out.stdout.startswith("not delivered: timed out after 1 s")
        failed = await run_cli("webhooks", "test", str(broken["id"]), env=e)
        assert failed.code == 2 and failed.stdout.startswith("not delivered: HTTP 500; the agent tries again at ")
    for result in (refused, timed_out, failed):
        assert "HTTP -" not in result.stdout


async def test_add_checks_list_names_and_stores_labels_as_the_lists_spell_them(tmp_path: Path) -> None:
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "mylist.txt").write_text("md5 " + "0" * 32 + "\n")
    e = {**env(tmp_path), "DWEB_AGENT_LISTS_SOURCES": str(lists / "mylist.txt")}
    url = "https://hooks.example/dweb"

    unknown = await run_cli("webhooks", "add", url, "--lists", "mylist,nosuchlist", env=e)
    assert unknown.code == 2 and "unknown list nosuchlist" in unknown.stderr, unknown.stderr
    assert "known: mylist" in unknown.stderr and "--allow-unknown-lists" in unknown.stderr
    assert json.loads((await run_cli("webhooks", "list", "--format", "json", env=e)).stdout) == []

    # A list an agent synced (with another configuration) is known from the store.
    async with await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'data' / 'agent.sqlite3'}") as store:
        await store.lists.record_version("tcap", "https://tcap.example/api", "h1", 10, 0, 0)
    added = await run_cli(
        "webhooks",
        "add",
        url,
        "--lists",
        "mylist,tcap",
        "--labels",
        "ideology=far-right,category:terrorism,Propaganda",
        env=e,
    )
    assert added.code == 0, added.stderr
    assert "labels stored as the lists spell them: ideology=far-right as ideology:far-right" in added.stdout
    later = await run_cli("webhooks", "add", url, "--lists", "gifct", "--allow-unknown-lists", env=e)
    assert later.code == 0, later.stderr
    listed = json.loads((await run_cli("webhooks", "list", "--format", "json", env=e)).stdout)
    assert [(s["lists"], s["labels"]) for s in listed] == [
        (["mylist", "tcap"], ["ideology:far-right", "category:terrorism", "Propaganda"]),
        (["gifct"], []),
    ]
