"""Findings: list and show them, their review trail, and reviews with their retractions.

A false-positive review is the one business rule here: it is kept in the audit trail,
suppresses the item + list entry, and queues finding.retracted to every subscription that
was sent the finding, in the store's transaction (so a retraction is never lost or sent
for a review that was not recorded)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from agent.model.records import FindingOrder, LabelWeights
from agent.model.status import ContentState, RetractionReason, Verdict
from agent.model.time import utcnow
from agent.services.errors import Invalid, NotFound

if TYPE_CHECKING:
    from agent.model.access import Principal
    from agent.model.records import (
        AuditedReview,
        FindingDetail,
        FindingFacets,
        FindingFilter,
        FindingView,
        ReviewRow,
    )
    from agent.store import Store

# The most findings one page holds (the API's `limit`).
MAX_PAGE = 500


@dataclass(frozen=True, slots=True)
class FindingPage:
    """One page. Newest first: `next_before` is the cursor of the next page; in priority
    order: `next_offset` is where the next page starts. None: this is the last page."""

    findings: list[FindingView]
    next_before: int | None
    next_offset: int | None = None


@dataclass(frozen=True, slots=True)
class ReviewRequest:
    finding_id: int
    verdict: Verdict
    note: str | None = None
    # None: the login name of whoever runs the command ($USER).
    reviewer: str | None = None


def verdict_of(*, false_positive: bool, confirmed: bool) -> Verdict:
    """Exactly one verdict from two flags, or Invalid."""
    if false_positive == confirmed:
        # Two verdicts in one review would make the audit trail say something nobody decided.
        raise Invalid("give exactly one verdict: --false-positive or --confirmed")
    return Verdict.FALSE_POSITIVE if false_positive else Verdict.CONFIRMED


def finding_links(view: FindingView, gateways: Sequence[str]) -> list[str]:
    """Where an analyst can look at a finding's content: the gateway that served the bytes
    first (it is known to have had them), then the configured ones; the links an alert gives."""
    from agent.alerts.events import gateway_links

    where = view.provenance
    served = [where.gateway] if where.gateway else []
    return gateway_links(list(dict.fromkeys([*served, *gateways])), view.cid, where.root_cid, where.path or "")


class FindingsService:
    def __init__(self, store: Store, label_weights: Mapping[str, Mapping[str, float]] | None = None) -> None:
        """`label_weights`: `[console.label_weights]`, the priority order's weights (list
        name or "*" -> label -> weight); ValueError for one that is not a finite number."""
        self._store = store
        self._weights = LabelWeights.from_config(label_weights or {})

    async def latest(self, *, limit: int = 100, list_name: str | None = None) -> list[FindingView]:
        """Newest first, each with where it was seen, its latest review and its retraction."""
        return list(await self._store.views.recent(limit=limit, list_name=list_name))

    async def show(self, finding_id: int) -> FindingDetail:
        detail = await self._store.views.detail(finding_id)
        if detail is None:
            raise NotFound(f"no finding {finding_id}")
        return detail

    async def page(
        self,
        flt: FindingFilter,
        *,
        limit: int = 50,
        before_id: int | None = None,
        order: FindingOrder = FindingOrder.NEWEST,
        offset: int = 0,
    ) -> FindingPage:
        """The findings `flt` selects: newest first, older than `before_id` (the cursor); or
        in the review queue's priority order (`FindingOrder`, by the configured label
        weights), from `offset`."""
        if not 1 <= limit <= MAX_PAGE:
            raise Invalid(f"limit must be between 1 and {MAX_PAGE}, not {limit}")
        if offset < 0:
            raise Invalid(f"offset must not be negative, not {offset}", field="offset")
        if order is FindingOrder.PRIORITY and before_id is not None:
            # The cursor is an id, and ids are not in priority order: it would skip findings.
            raise Invalid("a cursor pages findings newest first only; the priority order pages by offset")
        # One more than asked says whether another page follows, without a count.
        views = list(
            await self._store.views.page(
                flt, limit=limit + 1, before_id=before_id, order=order, offset=offset, weights=self._weights
            )
        )
        more = len(views) > limit
        views = views[:limit]
        if order is FindingOrder.PRIORITY:
            return FindingPage(views, None, offset + len(views) if more else None)
        last = views[-1].finding.id if views else None
        return FindingPage(views, last if more else None)

    async def content_states(self, item_keys: Sequence[str]) -> dict[str, ContentState]:
        """Each item's content state, for those takedown tracking has checked (one query for a page)."""
        return await self._store.content.states(list(item_keys))

    async def count(self, flt: FindingFilter) -> int:
        return await self._store.views.count(flt)

    def weight(self, view: FindingView) -> float:
        """What a finding weighs in the priority order (the configured label weights)."""
        return self._weights.of(view.finding.list_name, view.finding.labels)

    async def facets(self) -> FindingFacets:
        """The list names and labels the findings can be filtered by (at most 500 of each)."""
        return await self._store.views.facets()

    async def show_for(self, finding_id: int, principal: Principal) -> FindingDetail:
        """`show`, as `principal` may see it: a platform sees only the findings delivered to
        one of its subscriptions (any other is NotFound to it, as if absent)."""
        from agent.model.access import Role

        if principal.role is Role.PLATFORM and not await self._store.findings.delivered_to(finding_id, principal.name):
            raise NotFound(f"no finding {finding_id}")
        return await self.show(finding_id)

    async def reviews(self, finding_id: int | None = None, *, limit: int = 100) -> list[AuditedReview]:
        """Every review of `finding_id` in order, or the newest `limit` reviews of all findings."""
        from agent.model.records import AuditedReview

        if finding_id is None:
            return list(await self._store.reviews.audit_trail(limit=limit))
        finding = await self._store.findings.get(finding_id)
        if finding is None:
            raise NotFound(f"no finding {finding_id}")
        return [
            AuditedReview(r, finding.list_name, finding.entry_id, finding.item_key)
            for r in await self._store.reviews.of(finding_id)
        ]

    async def review(self, request: ReviewRequest) -> ReviewRow:
        """Record a review; a false positive also retracts (finding.retracted) and suppresses."""
        from agent.alerts.events import finding_retracted

        store = self._store
        finding = await store.findings.get(request.finding_id)
        if finding is None:
            raise NotFound(f"no finding {request.finding_id}")
        subs = await store.subscriptions.all()
        at = utcnow()
        note = request.note
        try:
            return await store.reviews.review(
                request.finding_id,
                request.verdict.value,
                note=note,
                reviewer=request.reviewer if request.reviewer is not None else os.environ.get("USER"),
                # Called inside the review's transaction with the subscriptions that got the finding.
                retraction=lambda recipients: finding_retracted(
                    finding, RetractionReason.FALSE_POSITIVE.value, note, subs, recipients, at
                ),
            )
        except LookupError as exc:  # removed between the look-up and the review
            raise NotFound(f"no finding {request.finding_id}") from exc

    async def retract_deleted_entries(self, list_name: str, entry_ids: Sequence[str]) -> list[int]:
        """Entries deleted upstream (a TCAP deletion, a line removed from a list): their findings
        are retracted, each with finding.retracted to the subscriptions that were sent it (in the
        store's transaction). Returns the ids of the findings retracted now."""
        from agent.alerts.events import finding_retracted

        subs = await self._store.subscriptions.all()
        at = utcnow()
        return await self._store.reviews.retract_entries(
            list_name,
            list(entry_ids),
            f"entry deleted from {list_name}",
            lambda f, recipients: finding_retracted(
                f, RetractionReason.ENTRY_DELETED, f"deleted from {list_name}", subs, recipients, at
            ),
        )
