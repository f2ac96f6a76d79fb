"""What happened to an item, in the report's terms: its status from the error that
stopped it, where its bytes came from, its signals from what the hashers found."""

from __future__ import annotations

from agent.ipfs.blocks import Provenance
from agent.ipfs.errors import BlockedContent, MissingBlock, TooLarge
from agent.media import MediaResult
from agent.model.report import ItemSource, ItemStatus
from agent.model.signals import ItemSignals, VideoSummary
from agent.pipeline.content import Content

# The media type a document item is reported with, by its codec.
DOCUMENT_TYPES = {
    "dag-cbor": "application/vnd.ipld.dag-cbor",
    "dag-json": "application/vnd.ipld.dag-json",
    "cbor": "application/cbor",
    "json": "application/json",
}


def status_for(exc: BaseException) -> ItemStatus:
    if isinstance(exc, BlockedContent):
        return ItemStatus.BLOCKED
    if isinstance(exc, MissingBlock):
        return ItemStatus.INCOMPLETE
    if isinstance(exc, TooLarge):
        return ItemStatus.SKIPPED
    return ItemStatus.ERROR


def source_of(provenance: Provenance, status: ItemStatus) -> ItemSource:
    remote = [s for s in provenance.served_by if not s.startswith("car:")]
    local = next((s[len("car:") :] for s in provenance.served_by if s.startswith("car:")), None)
    return ItemSource(
        gateway=remote[0] if remote else None,
        local=local,
        verified=status == ItemStatus.VERIFIED,
        gateways=remote,
        lied=list(provenance.lied),
        blocked_at=dict(provenance.blocked_at),
    )


def media_signals(content: Content, media: MediaResult | None) -> ItemSignals:
    """The item's signals: its digests, then what the media hasher found (perceptual
    hashes, or a video's vPDQ frames and their summary)."""
    hashes = [*content.signals(), *(media.signals if media is not None else ())]
    if media is None or media.video is None:
        return ItemSignals(tuple(hashes))
    video = media.video
    summary = VideoSummary(len(video.frames), video.frame_rate, video.truncated)
    return ItemSignals(tuple(hashes), summary, tuple(media.video_frames))
