"""Matching hashes a caller already has, and hashing an upload, against the running
agent's lists (POST /v1/match and POST /v1/hash): nothing is fetched and nothing stored.

A match answers as a scan's finding would (list, entry, distance, labels, where the list
line came from), so a platform can hash its own uploads and ask the agent, instead of
holding the lists itself.

PDQ without a quality is matched by distance alone, as HMA's lookup (`/m/raw_lookup`,
which has no quality parameter) matches it: callers built for HMA never send one, and
refusing to match their hashes would answer "no match" to every one of them, silently.
A caller that sends a quality is held to each list's `pdq_min_quality`, as a scan is.
Low-quality hashes (flat images) are what the quality gate exists for, so a caller that
can compute the quality should send it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agent.lists.denylist import DenyDecision
from agent.lists.model import normalise_value, parse_signal_type
from agent.media import MediaError, MediaResult
from agent.media.sniff import media_kind
from agent.model.finding import DenyBasis, Finding
from agent.model.signals import EXACT_TYPES, ItemSignals, Signal, SignalType
from agent.pipeline.content import Content
from agent.pipeline.findings import finding_from_match, finding_from_rule
from agent.pipeline.items import media_signals
from agent.services.errors import Invalid, ServiceError

if TYPE_CHECKING:
    from agent.config import Settings
    from agent.lists.catalog import ListCatalog
    from agent.media import MediaHasher

# One request's queries: a platform batching its uploads, not a list dump.
MAX_QUERIES = 1000
CID_TYPE = "cid"  # a CID checked against the denylists, beside the hash types
# What the matcher is given for a PDQ query without a quality (see the module docstring).
_UNGATED_QUALITY = 100
# Perceptual comparisons (queries x list entries) done on the event loop; more go to a thread.
# Counted at the brute-force cost (about 2 ms of numpy for 200,000), the worst case: the
# multi-index hashing index answers most queries far faster, but delegates to brute force
# for small lists and wide thresholds.
_INLINE_WORK = 200_000


class UploadTooLarge(ServiceError):
    """An upload over the limit; the API answers 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the upload is larger than {limit} bytes")
        self.limit = limit


@dataclass(frozen=True, slots=True)
class SignalQuery:
    """One hash to look up, as a caller spells it (type names as ThreatExchange / HMA's)."""

    type: str
    value: str
    quality: int | None = None


@dataclass(frozen=True, slots=True)
class MatchResult:
    """One list entry (or denylist rule) matched by the request's signals[index]; the
    finding's `query` is that signal's value."""

    index: int
    finding: Finding

    def to_view(self) -> dict[str, Any]:
        return {"index": self.index, **self.finding.to_view()}


@dataclass(frozen=True, slots=True)
class HashedUpload:
    """An upload's size, sniffed media type and signals; `error` says what could not be
    hashed (a corrupt image still has its digests)."""

    size: int
    media_type: str
    signals: ItemSignals
    error: str | None = None
    filename: str | None = None

    def to_view(self) -> dict[str, Any]:
        return {
            "filename": self.filename,
            "size": self.size,
            "media_type": self.media_type,
            "signals": [{"type": s.type.value, "value": s.value, "quality": s.quality} for s in self.signals.hashes],
            "vpdq": [
                {"frame": f.frame, "quality": f.quality, "pdq": f.pdq_hex, "timestamp": f.timestamp}
                for f in self.signals.frames
            ],
            "error": self.error,
        }


@dataclass(frozen=True, slots=True)
class _Checked:
    """A validated query: a signal for the index, or a CID for the denylists."""

    signal: Signal | None = None
    cid: str | None = None


def _checked(i: int, query: SignalQuery) -> _Checked:
    if query.type.strip().lower() == CID_TYPE:
        cid = query.value.strip()
        if not cid:
            raise Invalid(f"signals[{i}].value: an empty CID")
        return _Checked(cid=cid)
    try:
        kind = parse_signal_type(query.type)
    except ValueError as exc:
        raise Invalid(f"signals[{i}].type: {exc}") from None
    if kind is SignalType.VPDQ:
        raise Invalid(f"signals[{i}].type: vpdq is matched from a video's frames; hash the video with /v1/hash")
    try:
        value = normalise_value(kind, query.value)
    except ValueError as exc:
        raise Invalid(f"signals[{i}].value: {exc}") from None
    quality = None
    if kind is SignalType.PDQ:
        if query.quality is not None and not 0 <= query.quality <= 100:
            raise Invalid(f"signals[{i}].quality: PDQ quality is 0 to 100, not {query.quality}")
        quality = _UNGATED_QUALITY if query.quality is None else query.quality
    return _Checked(signal=Signal(kind, value, quality))


class MatchService:
    def __init__(self, catalog: Callable[[], ListCatalog], media: MediaHasher | None, settings: Settings) -> None:
        self._catalog = catalog
        self._media = media
        self._settings = settings

    def catalog(self) -> ListCatalog:
        """The lists matched against now (the running agent's current catalog)."""
        return self._catalog()

    async def match(self, queries: Sequence[SignalQuery]) -> list[MatchResult]:
        """Every list entry each query matches, in query order (Invalid names the bad one).

        A batch above `_INLINE_WORK` perceptual comparisons runs in a thread, off the event
        loop serving the API (the index is immutable and numpy releases the GIL); one PDQ
        query against 100,000 entries takes about 0.1 ms with the multi-index index (1.2 ms
        by brute force); exact types are dict look-ups."""
        if not queries:
            raise Invalid("signals: give at least one")
        if len(queries) > MAX_QUERIES:
            raise Invalid(f"signals: at most {MAX_QUERIES} in one request, not {len(queries)}")
        checked = [_checked(i, q) for i, q in enumerate(queries)]
        catalog = self._catalog()  # one catalog for the whole request, even if a refresh swaps it
        perceptual = sum(1 for c in checked if c.signal is not None and c.signal.type not in EXACT_TYPES)
        if perceptual * len(catalog.index) > _INLINE_WORK:
            return await asyncio.to_thread(self._match, checked, catalog)
        return self._match(checked, catalog)

    def _match(self, checked: Sequence[_Checked], catalog: ListCatalog) -> list[MatchResult]:
        found: list[MatchResult] = []
        # CIDs first: one that is not a CID is refused before the index is searched.
        for i, c in enumerate(checked):
            if c.cid is not None and (decision := self._denied(i, c.cid, catalog)) is not None:
                found.append(MatchResult(i, finding_from_rule(decision, DenyBasis.CID)))
        signals = [c.signal for c in checked if c.signal is not None]
        position = {id(c.signal): i for i, c in enumerate(checked) if c.signal is not None}
        for match in catalog.index.match(signals):
            if match.signal is not None:
                # A finding names the query's value, not its quality: nothing of the stand-in shows.
                found.append(MatchResult(position[id(match.signal)], finding_from_match(match)))
        found.sort(key=lambda r: r.index)
        return found

    async def matches_for(self, upload: HashedUpload) -> list[Finding]:
        """What a scan would find for the hashed upload: its signals and, for a video, its
        vPDQ frames against the current lists (`?match=true` of POST /v1/hash)."""
        catalog = self._catalog()
        signals = upload.signals

        def run() -> list[Finding]:
            matches = catalog.index.match(signals.hashes)
            if signals.frames:
                matches.extend(catalog.index.match_video(signals.frames))
            return [finding_from_match(m) for m in matches]

        if signals.frames or len(catalog.index) > _INLINE_WORK:
            return await asyncio.to_thread(run)
        return run()

    @staticmethod
    def _denied(i: int, cid: str, catalog: ListCatalog) -> DenyDecision | None:
        try:
            decision = catalog.denylist.check_cid(cid)
        except ValueError as exc:
            raise Invalid(f"signals[{i}].value: not a CID: {exc}") from None
        return decision if decision is not None and decision.blocked else None

    async def hash(self, chunks: AsyncIterable[bytes], *, limit: int, filename: str | None = None) -> HashedUpload:
        """The signals of an upload read from `chunks` (at most `limit` bytes, else
        UploadTooLarge). Images and videos go to the media pool through a temporary file,
        deleted before this returns; a corrupt one keeps its digests and says why."""
        retain = self._settings.media.max_bytes if self._media is not None else 0
        content = Content(self._settings.scan.sniff_bytes, retain_limit=retain)
        try:
            async for chunk in chunks:
                if content.size + len(chunk) > limit:
                    raise UploadTooLarge(limit)
                await content.feed(chunk)
            content.finish()
            media_type = content.media_type or "application/octet-stream"
            media, error = await self._perceptual(content, media_type)
            if content.size == 0:
                error = "empty upload: nothing to hash but its digests"
            return HashedUpload(content.size, media_type, media_signals(content, media), error, filename)
        finally:
            content.discard()

    async def _perceptual(self, content: Content, media_type: str) -> tuple[MediaResult | None, str | None]:
        if content.too_large:
            limit = self._settings.media.max_bytes
            return (
                None,
                f"{media_type}: {content.size} bytes is over media.max_bytes ({limit}); not hashed perceptually",
            )
        if media_kind(media_type) not in ("image", "video"):
            return None, None  # the digests are all there is to hash
        if self._media is None or content.path is None:
            return None, f"{media_type}: this agent has no media pool; not hashed perceptually"
        try:
            return await self._media.signals_for(content.path, media_type), None
        except MediaError as exc:
            return None, f"{media_type}: {exc}"
