"""`dweb-agent findings`: list, show and review findings; the review audit trail."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.table import Table

from agent.cli.common import call, emit, fail, load
from agent.cli.main import main
from agent.model.status import Verdict
from agent.model.time import iso_seconds
from agent.services.findings import finding_links

if TYPE_CHECKING:
    from agent.model.records import (
        ContentStatusRow,
        DeliveryReport,
        FindingDetail,
        FindingView,
        PlacedLocation,
        ReviewRow,
    )

UNREVIEWED = "unreviewed"


@main.group()
def findings() -> None:
    """Findings: list and show them, review them (every review is kept: `findings reviews`)."""


def view_dict(view: FindingView, gateways: Sequence[str]) -> dict[str, Any]:
    f, where = view.finding, view.provenance
    links = finding_links(view, gateways)
    retraction = view.retraction
    return {
        "id": f.id,
        "path": where.path,
        "cid": view.cid,
        "root": where.root_cid,
        "target": {"id": where.target_id, "url": where.target_url} if where.target_url or where.target_id else None,
        "item": f.item_key,
        "media_type": view.media_type,
        "size": view.size,
        "query": f.query,
        "list": f.list_name,
        "entry_id": f.entry_id,
        "entry": f.entry_value,
        "signal_type": f.signal_type,
        "distance": f.distance,
        "labels": list(f.labels),
        "link": links[0] if links else None,
        "links": links,
        "review": view.review.verdict if view.review else UNREVIEWED,
        "reviewed_at": iso_seconds(view.review.created_at) if view.review else None,
        "retracted": retraction is not None,
        "retraction": {
            "reason": retraction.reason,
            "detail": retraction.detail,
            "at": iso_seconds(retraction.created_at),
        }
        if retraction
        else None,
        "retroactive": f.retroactive,
        "provenance": where.source,
        "created_at": iso_seconds(f.created_at),
    }


def review_dict(r: ReviewRow) -> dict[str, Any]:
    return {
        "id": r.id,
        "finding_id": r.finding_id,
        "verdict": r.verdict,
        "reviewer": r.reviewer,
        "note": r.note,
        "created_at": iso_seconds(r.created_at),
    }


def _short(value: str | None, n: int) -> str:
    if not value:
        return "-"
    return value if len(value) <= n else value[: n - 1] + "…"


@findings.command("list")
@click.option("--limit", type=click.IntRange(1), default=100, show_default=True)
@click.option("--list", "list_name", help="Only this list.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default=None)
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path), help="Configuration file.")
def findings_list(limit: int, list_name: str | None, fmt: str | None, config: Path | None) -> None:
    """Newest first: where each item was seen, what matched, its review and retraction."""
    settings = load(config)
    views = call(settings, lambda svc: svc.findings.latest(limit=limit, list_name=list_name))
    fmt = fmt or ("table" if sys.stdout.isatty() else "json")
    data = [view_dict(v, settings.gateways.urls) for v in views]
    table = Table()
    for col in (
        "id",
        "list",
        "entry",
        "signal",
        "dist",
        "labels",
        "path",
        "cid",
        "target",
        "review",
        "retracted",
        "at",
    ):
        table.add_column(col, overflow="fold")
    for d in data:
        target = d["target"]["url"] if d["target"] else None
        table.add_row(
            str(d["id"]),
            d["list"],
            _short(d["entry_id"], 24),
            d["signal_type"],
            f"{d['distance']:g}",
            ", ".join(d["labels"]) or "-",
            _short(d["path"], 32),
            _short(d["cid"], 20),
            _short(target, 32),
            d["review"].replace("_", " "),
            d["retraction"]["reason"].replace("_", " ") if d["retracted"] else "",
            d["created_at"] or "-",
        )
    emit(data, fmt, table)


def detail_dict(detail: FindingDetail, gateways: Sequence[str]) -> dict[str, Any]:
    item = detail.item
    return {
        **view_dict(detail.view, gateways),
        "detail": detail.view.finding.detail_view(),
        "item": {
            "key": detail.view.finding.item_key,
            "cid": item.cid,
            "size": item.size,
            "media_type": item.media_type,
            "status": item.status,
            "signals": item.signals.to_view(),
            "first_seen_at": iso_seconds(item.first_seen_at),
            "last_seen_at": iso_seconds(item.last_seen_at),
        }
        if item
        else {"key": detail.view.finding.item_key},
        "locations": [_location_dict(p) for p in detail.locations],
        "reviews": [review_dict(r) for r in detail.reviews],
        "content": _content_dict(detail.content),
        "events": [{"id": e.id, "type": e.type, "created_at": iso_seconds(e.created_at)} for e in detail.events],
        "deliveries": [_delivery_dict(d) for d in detail.deliveries],
    }


def _location_dict(p: PlacedLocation) -> dict[str, Any]:
    loc = p.location
    return {
        "path": loc.path,
        "root": loc.root_cid,
        "target": {"id": loc.target_id, "url": p.target_url} if loc.target_id is not None else None,
        "gateway": loc.gateway,
        "first_seen_at": iso_seconds(loc.first_seen_at),
        "last_seen_at": iso_seconds(loc.last_seen_at),
    }


def _content_dict(c: ContentStatusRow | None) -> dict[str, Any] | None:
    if c is None:
        return None
    return {
        "state": c.state,
        "changed_at": iso_seconds(c.changed_at),
        "last_checked_at": iso_seconds(c.last_checked_at),
        "first_alert_at": iso_seconds(c.first_alert_at),
        "detail": dict(c.detail),
    }


def _delivery_dict(d: DeliveryReport) -> dict[str, Any]:
    row = d.delivery
    return {
        "event_id": row.event_id,
        "event_type": d.event_type,
        "subscription_id": row.subscription_id,
        "subscription_url": d.subscription_url,
        "status": row.status,
        "attempts": row.attempts,
        "last_status": row.last_status,
        "last_error": row.last_error,
        "last_attempt_at": iso_seconds(row.last_attempt_at),
        "next_attempt_at": iso_seconds(row.next_attempt_at),
        "succeeded_at": iso_seconds(row.succeeded_at),
    }


def _show_text(d: dict[str, Any]) -> None:
    """The human form of `findings show`: one fact per line, sections for histories."""
    target = d["target"]["url"] if d["target"] else "-"
    facts = [
        ("finding", str(d["id"])),
        ("list", d["list"]),
        ("entry", f"{d['entry_id']} ({d['entry']})"),
        ("signal", f"{d['signal_type']}, distance {d['distance']:g}"),
        ("matched hash", d["query"] or "-"),
        ("labels", ", ".join(d["labels"]) or "-"),
        ("path", d["path"] or "-"),
        ("cid", d["cid"] or "-"),
        ("root", d["root"] or "-"),
        ("target", target),
        ("link", d["link"] or "-"),
        ("review", d["review"].replace("_", " ")),
        ("retracted", f"{d['retraction']['reason']} at {d['retraction']['at']}" if d["retracted"] else "no"),
        ("content", d["content"]["state"] if d["content"] else "not checked yet"),
        ("created", d["created_at"] + (" (retroactive)" if d["retroactive"] else "")),
    ]
    for key, value in facts:
        click.echo(f"{key:>13}: {value}")
    click.echo("locations:")
    for loc in d["locations"] or [{"path": "-", "root": "-", "target": None, "first_seen_at": "-"}]:
        click.echo(
            f"  {loc['path'] or '-'} under {loc['root'] or '-'}"
            f" ({loc['target']['url'] if loc['target'] else 'one-off'}) since {loc['first_seen_at']}"
        )
    click.echo("reviews:" + ("" if d["reviews"] else " none"))
    for r in d["reviews"]:
        click.echo(
            f"  {r['created_at']} {r['verdict'].replace('_', ' ')} by {r['reviewer'] or '-'}"
            + (f": {r['note']}" if r["note"] else "")
        )
    click.echo("deliveries:" + ("" if d["deliveries"] else " none"))
    for x in d["deliveries"]:
        click.echo(
            f"  {x['event_type']} to subscription {x['subscription_id']}: {x['status']} after "
            f"{x['attempts']} attempts" + (f" ({x['last_error']})" if x["last_error"] else "")
        )


@findings.command("show")
@click.argument("finding_id", type=int)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default=None)
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path), help="Configuration file.")
def findings_show(finding_id: int, fmt: str | None, config: Path | None) -> None:
    """Everything known about one finding: provenance, review history, content state, deliveries."""
    settings = load(config)
    detail = call(settings, lambda svc: svc.findings.show(finding_id))
    data = detail_dict(detail, settings.gateways.urls)
    if (fmt or ("table" if sys.stdout.isatty() else "json")) == "json":
        emit(data, "json", None)
    else:
        _show_text(data)


@findings.command("reviews")
@click.argument("finding_id", type=int, required=False)
@click.option(
    "--limit",
    type=click.IntRange(1),
    default=100,
    show_default=True,
    help="Without FINDING_ID: how many of the newest reviews.",
)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default=None)
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path), help="Configuration file.")
def findings_reviews(finding_id: int | None, limit: int, fmt: str | None, config: Path | None) -> None:
    """The audit trail: every review of FINDING_ID in order, or the newest reviews of all findings."""
    trail = call(load(config), lambda svc: svc.findings.reviews(finding_id, limit=limit))
    data = [{**review_dict(a.review), "list": a.list_name, "entry_id": a.entry_id, "item": a.item_key} for a in trail]
    table = Table()
    for col in ("review", "finding", "verdict", "reviewer", "note", "list", "entry", "at"):
        table.add_column(col, overflow="fold")
    for d in data:
        table.add_row(
            str(d["id"]),
            str(d["finding_id"]),
            d["verdict"].replace("_", " "),
            d["reviewer"] or "-",
            d["note"] or "",
            d["list"],
            _short(d["entry_id"], 24),
            d["created_at"],
        )
    emit(data, fmt or ("table" if sys.stdout.isatty() else "json"), table)


@findings.command("review")
@click.argument("finding_id", type=int)
@click.option("--false-positive", is_flag=True, help="Retract it and suppress it.")
@click.option("--confirmed", is_flag=True, help="Confirm it.")
@click.option("--note", help="Why (kept with the review).")
@click.option("--reviewer", help="Who reviewed (default: $USER).")
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path), help="Configuration file.")
def findings_review(
    finding_id: int, false_positive: bool, confirmed: bool, note: str | None, reviewer: str | None, config: Path | None
) -> None:
    """Record a review: exactly one of --false-positive or --confirmed. A false positive sends
    finding.retracted to the subscribers that got it and suppresses future alerts for that
    item and list entry."""
    from agent.services.errors import Invalid
    from agent.services.findings import ReviewRequest, verdict_of

    try:
        verdict = verdict_of(false_positive=false_positive, confirmed=confirmed)
    except Invalid as exc:
        fail(exc.message)
    request = ReviewRequest(finding_id, verdict, note=note, reviewer=reviewer)
    review = call(load(config), lambda svc: svc.findings.review(request))
    click.echo(
        f"review {review.id}: finding {finding_id} {verdict.value.replace('_', ' ')}"
        + (" (retracted; the running agent delivers finding.retracted)" if verdict is Verdict.FALSE_POSITIVE else "")
    )
