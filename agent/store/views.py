"""Read models for analysts: findings with their item, provenance, review and
retraction, newest first or in the review queue's priority order; what they can
be filtered by; and everything known about one finding. Reads across aggregates,
each in one read transaction with a few batched queries."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.ext.asyncio import AsyncConnection

from agent.model.finding import DenyBasis
from agent.model.records import (
    ALL_LISTS,
    DeliveryReport,
    FindingDetail,
    FindingFacets,
    FindingFilter,
    FindingOrder,
    FindingView,
    LabelWeights,
    PlacedLocation,
    Provenance,
    RetractionRow,
    ReviewRow,
)
from agent.model.signals import EXACT_TYPES, SignalType
from agent.model.status import ProvenanceSource, ReviewState
from agent.store.content import content_from_row
from agent.store.engine import DialectName, Engine, chunks
from agent.store.findings import delivered_to_clause, finding_from_row
from agent.store.items import item_from_row
from agent.store.locations import IN_SEEN_ORDER, location_from_row
from agent.store.outbox import delivery_from_row, event_from_row
from agent.store.reviews import retraction_from_row, review_from_row
from agent.store.schema import (
    content_status,
    deliveries,
    events,
    findings,
    item_locations,
    items,
    retractions,
    reviews,
    subscriptions,
    targets,
)

_CONTENT_EVENTS = ("content.unavailable", "content.available")
_NOWHERE = Provenance(None, None, None, None, None, ProvenanceSource.NONE)
# The priority queue's first tier: matches that say "these are the listed bytes" (or the
# denylisted CID or path) outright, before any perceptual likeness.
_EXACT_TIER = tuple(sorted({*(t.value for t in EXACT_TYPES), *(b.value for b in DenyBasis)}))
# The most list names (and labels) `facets` offers to filter by.
MAX_FACETS = 500
# Every finding weighs the same: the priority order is by kind and closeness only.
NO_WEIGHTS = LabelWeights()


def _alerted_provenance(payload: dict[str, Any]) -> Provenance:
    """Where the finding.created event said the item was (kept after its location is gone)."""
    item: dict[str, Any] = payload["item"] if isinstance(payload.get("item"), dict) else {}
    target: dict[str, Any] = payload["target"] if isinstance(payload.get("target"), dict) else {}
    path, root, target_id, target_url = item.get("path"), payload.get("root"), target.get("id"), target.get("url")
    return Provenance(
        path=path if isinstance(path, str) else None,
        root_cid=root if isinstance(root, str) else None,
        target_id=target_id if isinstance(target_id, int) else None,
        target_url=target_url if isinstance(target_url, str) else None,
        gateway=None,
        source=ProvenanceSource.EVENT,
    )


async def _first_places(conn: AsyncConnection, keys: Sequence[str]) -> dict[str, Provenance]:
    """Each item's first recorded location (the one its first alert was built from)."""
    out: dict[str, Provenance] = {}
    for part in chunks(keys):
        ranked = (
            sa.select(
                item_locations,
                sa.func.row_number().over(partition_by=item_locations.c.item_key, order_by=IN_SEEN_ORDER).label("rank"),
            )
            .where(item_locations.c.item_key.in_(part))
            .subquery()
        )
        query = (
            sa.select(ranked, targets.c.url.label("target_url"))
            .outerjoin(targets, targets.c.id == ranked.c.target_id)
            .where(ranked.c.rank == 1)
        )
        for r in (await conn.execute(query)).mappings():
            out[r["item_key"]] = Provenance(
                path=r["path"],
                root_cid=r["root_cid"],
                target_id=r["target_id"],
                target_url=r["target_url"],
                gateway=r["gateway"],
                source=ProvenanceSource.LOCATION,
            )
    return out


async def _alerted_places(conn: AsyncConnection, finding_ids: Sequence[int]) -> dict[int, Provenance]:
    out: dict[int, Provenance] = {}
    for part in chunks(finding_ids):
        query = sa.select(events.c.finding_id, events.c.payload).where(
            events.c.type == "finding.created", events.c.finding_id.in_(part)
        )
        for r in (await conn.execute(query)).mappings():
            out[int(r["finding_id"])] = _alerted_provenance(dict(r["payload"] or {}))
    return out


def _has_label(label: str, dialect: DialectName) -> sa.ColumnElement[bool]:
    """The labels array holds exactly `label`: the value is bound, never spliced into a
    pattern, so quotes, % and _ in a label mean themselves."""
    if dialect == "postgresql":
        return sa.cast(findings.c.labels, pg.JSONB).contains([label])
    each = sa.func.json_each(findings.c.labels).table_valued("value")
    return sa.exists(sa.select(sa.literal(1)).select_from(each).where(each.c.value == label))


def _label_weight(weights: LabelWeights, dialect: DialectName) -> sa.ColumnElement[float]:
    """What a finding weighs (`LabelWeights.of`) as one SQL expression, so the order, the
    paging and the counts stay in the database: the entries heaviest first in one CASE,
    so the first that applies to the finding is its largest. Names and weights are bound
    parameters; a label is matched whole (`_has_label`)."""
    whens: list[tuple[sa.ColumnElement[bool], sa.ColumnElement[float]]] = []
    for entry in sorted(weights.entries, key=lambda e: e.weight, reverse=True):
        scope: sa.ColumnElement[bool]
        if entry.list_name == ALL_LISTS:
            # A list's own weight for the label replaces the every-list one.
            overridden = weights.overridden(entry)
            scope = findings.c.list_name.not_in(overridden) if overridden else sa.true()
        else:
            scope = findings.c.list_name == entry.list_name
        whens.append((sa.and_(scope, _has_label(entry.label, dialect)), sa.literal(entry.weight, sa.Float)))
    if not whens:
        return sa.literal(0.0, sa.Float)
    return sa.case(*whens, else_=sa.literal(0.0, sa.Float))


def _priority_order(weights: LabelWeights, dialect: DialectName) -> tuple[sa.ColumnElement[Any], ...]:
    tier = sa.case((findings.c.signal_type.in_(_EXACT_TIER), 0), else_=1)
    # vPDQ's distance is the share of the video's frames that matched (100: all): closer is higher.
    closeness = sa.case(
        (findings.c.signal_type == SignalType.VPDQ.value, 100.0 - findings.c.distance), else_=findings.c.distance
    )
    return (tier.asc(), _label_weight(weights, dialect).desc(), closeness.asc(), findings.c.id.desc())


def _latest_verdict() -> sa.ScalarSelect[Any]:
    return (
        sa.select(reviews.c.verdict)
        .where(reviews.c.finding_id == findings.c.id)
        .order_by(reviews.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )


def _filter_clauses(flt: FindingFilter, dialect: DialectName) -> list[sa.ColumnElement[bool]]:
    where: list[sa.ColumnElement[bool]] = []
    if flt.list_name is not None:
        where.append(findings.c.list_name == flt.list_name)
    if flt.label is not None:
        where.append(_has_label(flt.label, dialect))
    if flt.target_id is not None:
        where.append(
            sa.exists(
                sa.select(sa.literal(1)).where(
                    item_locations.c.item_key == findings.c.item_key, item_locations.c.target_id == flt.target_id
                )
            )
        )
    if flt.review is ReviewState.UNREVIEWED:
        where.append(~sa.exists(sa.select(sa.literal(1)).where(reviews.c.finding_id == findings.c.id)))
    elif flt.review is not None:
        where.append(_latest_verdict() == flt.review.value)
    if flt.since is not None:
        where.append(findings.c.created_at >= flt.since)
    if flt.delivered_to is not None:
        where.append(delivered_to_clause(flt.delivered_to))
    if flt.content is not None:
        where.append(
            sa.exists(
                sa.select(sa.literal(1)).where(
                    content_status.c.item_key == findings.c.item_key, content_status.c.state == flt.content.value
                )
            )
        )
    return where


async def _finding_views(
    conn: AsyncConnection,
    *,
    limit: int,
    list_name: str | None = None,
    finding_id: int | None = None,
    where: Sequence[sa.ColumnElement[bool]] = (),
    by_id: bool = False,
    order_by: Sequence[sa.ColumnElement[Any]] = (),
    offset: int = 0,
) -> list[FindingView]:
    # by_id: the order a cursor (`before_id`) pages in; otherwise by when recorded, unless `order_by` says.
    if order_by:
        order = tuple(order_by)
    else:
        order = (findings.c.id.desc(),) if by_id else (findings.c.created_at.desc(), findings.c.id.desc())
    query = (
        sa.select(
            findings,
            items.c.cid.label("i_cid"),
            items.c.media_type.label("i_media_type"),
            items.c.size.label("i_size"),
        )
        .outerjoin(items, items.c.key == findings.c.item_key)
        .where(*where)
        .order_by(*order)
        .limit(limit)
        .offset(offset or None)
    )
    if list_name is not None:
        query = query.where(findings.c.list_name == list_name)
    if finding_id is not None:
        query = query.where(findings.c.id == finding_id)
    rows = (await conn.execute(query)).mappings().all()
    if not rows:
        return []
    ids = [int(r["id"]) for r in rows]
    places = await _first_places(conn, sorted({r["item_key"] for r in rows}))
    alerted = await _alerted_places(conn, ids)
    latest: dict[int, ReviewRow] = {}
    retracted: dict[int, RetractionRow] = {}
    for part in chunks(ids):
        query_reviews = sa.select(reviews).where(reviews.c.finding_id.in_(part)).order_by(reviews.c.id)
        for r in (await conn.execute(query_reviews)).mappings():
            latest[int(r["finding_id"])] = review_from_row(r)
        query_retractions = sa.select(retractions).where(retractions.c.finding_id.in_(part))
        for r in (await conn.execute(query_retractions)).mappings():
            retracted[int(r["finding_id"])] = retraction_from_row(r)
    return [
        FindingView(
            finding=finding_from_row(r),
            cid=r["i_cid"],
            media_type=r["i_media_type"],
            size=r["i_size"],
            provenance=places.get(r["item_key"]) or alerted.get(int(r["id"])) or _NOWHERE,
            review=latest.get(int(r["id"])),
            retraction=retracted.get(int(r["id"])),
        )
        for r in rows
    ]


class FindingViewRepository:
    def __init__(self, engine: Engine) -> None:
        self._db = engine

    async def recent(self, *, limit: int = 100, list_name: str | None = None) -> list[FindingView]:
        """Newest first, each with its item's CID, where it was first seen, its
        latest review and its retraction."""
        async with self._db.read() as conn:
            return await _finding_views(conn, limit=limit, list_name=list_name)

    async def page(
        self,
        flt: FindingFilter,
        *,
        limit: int,
        before_id: int | None = None,
        order: FindingOrder = FindingOrder.NEWEST,
        offset: int = 0,
        weights: LabelWeights = NO_WEIGHTS,
    ) -> list[FindingView]:
        """The findings `flt` selects, as `recent` shows them.

        NEWEST: newest (highest id) first; `before_id` is the cursor: only findings older
        than that one, so a page never shifts when findings are recorded meanwhile.

        PRIORITY: exact hash and denylist matches, then perceptual ones; within each, the
        heaviest by `weights` first, then the closest match, then the newest; paged by
        `offset` (after skipping that many). Not by a cursor: a cursor here would have to
        carry the finding's weight, which is computed from the configuration and so can
        change between two pages, and compare floats across dialects; an offset stays
        right as long as the order does (a finding recorded meanwhile can show one again)."""
        if offset < 0:
            raise ValueError(f"offset must not be negative, not {offset}")
        where = _filter_clauses(flt, self._db.dialect)
        if before_id is not None:
            where.append(findings.c.id < before_id)
        order_by = _priority_order(weights, self._db.dialect) if order is FindingOrder.PRIORITY else ()
        async with self._db.read() as conn:
            return await _finding_views(conn, limit=limit, where=where, by_id=True, order_by=order_by, offset=offset)

    async def count(self, flt: FindingFilter) -> int:
        """How many findings `flt` selects."""
        query = sa.select(sa.func.count()).select_from(findings).where(*_filter_clauses(flt, self._db.dialect))
        async with self._db.read() as conn:
            return int(await conn.scalar(query) or 0)

    async def facets(self, *, limit: int = MAX_FACETS) -> FindingFacets:
        """The distinct list names and labels among all findings, sorted, at most `limit` each."""
        names = sa.select(findings.c.list_name).distinct().order_by(findings.c.list_name).limit(limit + 1)
        # The function reads each row's labels: a lateral join (SQLite's table-valued functions
        # see the tables left of them without the keyword, which it does not know).
        if self._db.dialect == "postgresql":
            array = sa.cast(findings.c.labels, pg.JSONB)
            each = sa.func.jsonb_array_elements_text(array).table_valued("value").lateral()
        else:
            each = sa.func.json_each(findings.c.labels).table_valued("value")
        labelled = sa.select(each.c.value).select_from(findings.join(each, sa.true()))
        labels = labelled.distinct().order_by(each.c.value).limit(limit + 1)
        async with self._db.read() as conn:
            found_lists = [str(r[0]) for r in (await conn.execute(names)).all()]
            found_labels = [str(r[0]) for r in (await conn.execute(labels)).all()]
        # Sorted again here: the two dialects collate text differently.
        return FindingFacets(
            lists=tuple(sorted(found_lists[:limit])),
            labels=tuple(sorted(found_labels[:limit])),
            more_lists=len(found_lists) > limit,
            more_labels=len(found_labels) > limit,
        )

    async def detail(self, finding_id: int) -> FindingDetail | None:
        """Everything known about one finding, read in one transaction."""
        async with self._db.read() as conn:
            views = await _finding_views(conn, limit=1, finding_id=finding_id)
            if not views:
                return None
            view = views[0]
            key = view.finding.item_key
            item = (await conn.execute(sa.select(items).where(items.c.key == key))).mappings().one_or_none()
            placed = (
                sa.select(item_locations, targets.c.url.label("target_url"))
                .outerjoin(targets, targets.c.id == item_locations.c.target_id)
                .where(item_locations.c.item_key == key)
                .order_by(*IN_SEEN_ORDER)
            )
            places = [
                PlacedLocation(location_from_row(r), r["target_url"]) for r in (await conn.execute(placed)).mappings()
            ]
            history_query = sa.select(reviews).where(reviews.c.finding_id == finding_id).order_by(reviews.c.id)
            history = [review_from_row(r) for r in (await conn.execute(history_query)).mappings()]
            content_query = sa.select(content_status).where(content_status.c.item_key == key)
            content = (await conn.execute(content_query)).mappings().one_or_none()
            # Its own events, and the item's availability changes (they concern every finding of the item).
            about = sa.or_(
                events.c.finding_id == finding_id, sa.and_(events.c.item_key == key, events.c.type.in_(_CONTENT_EVENTS))
            )
            events_query = sa.select(events).where(about).order_by(events.c.created_at, events.c.id)
            its_events = [event_from_row(r) for r in (await conn.execute(events_query)).mappings()]
            sent_query = (
                sa.select(deliveries, events.c.type.label("event_type"), subscriptions.c.url.label("subscription_url"))
                .join(events, events.c.id == deliveries.c.event_id)
                .outerjoin(subscriptions, subscriptions.c.id == deliveries.c.subscription_id)
                .where(about)
                .order_by(deliveries.c.created_at, deliveries.c.id)
            )
            sent = [
                DeliveryReport(delivery_from_row(r), r["event_type"], r["subscription_url"])
                for r in (await conn.execute(sent_query)).mappings()
            ]
        return FindingDetail(
            view=view,
            item=item_from_row(item) if item is not None else None,
            locations=tuple(places),
            reviews=tuple(history),
            content=content_from_row(content) if content is not None else None,
            events=tuple(its_events),
            deliveries=tuple(sent),
        )
