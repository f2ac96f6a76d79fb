"""What a scan is built from, from the configuration: the media hasher, the lists'
thresholds and the loaded catalog, and the gateway pool of a CID target."""

from __future__ import annotations

from collections.abc import Mapping

import aiohttp

from agent.config import Settings
from agent.ipfs.gateway import DistrustNote, GatewayPool, RetrievalMode
from agent.ipfs.trustless import TrustlessGateway
from agent.lists.catalog import ListCatalog, Thresholds, load_catalog
from agent.media import MediaHasher, MediaLimits
from agent.model.signals import SignalType
from agent.net.http import Purpose, client_session


def media_hasher(settings: Settings) -> MediaHasher:
    """The process pool for decoding and perceptual hashing, with the [media] limits."""
    m = settings.media
    limits = MediaLimits(
        max_pixels=m.max_pixels,
        max_frames=m.max_frames,
        max_bytes=m.max_bytes,
        max_video_seconds=m.max_video_seconds,
        timeout_s=m.timeout_s,
        video_fps_sample=m.video_fps_sample,
        worker_start_timeout_s=m.worker_start_timeout_s,
        max_worker_memory_bytes=m.max_worker_memory_bytes,
    )
    return MediaHasher(limits, workers=m.workers or None)


def list_thresholds(settings: Settings) -> dict[str, Thresholds]:
    """[lists.thresholds.<name>] from the configuration, in the lists layer's terms."""
    out: dict[str, Thresholds] = {}
    for name, t in settings.lists.thresholds.items():
        image = {
            SignalType(kind): value
            for kind in ("phash", "dhash", "ahash", "whash")
            if (value := getattr(t, f"{kind}_distance")) is not None
        }
        out[name] = Thresholds(t.pdq_distance, t.pdq_min_quality, image, t.vpdq_match_percent, t.vpdq_compared_percent)
    return out


async def load_scan_catalog(settings: Settings, extra_sources: list[str] | None = None) -> ListCatalog:
    """The configured lists plus any given for this scan, with their thresholds."""
    sources = [*settings.lists.sources, *(extra_sources or [])]
    if not sources:
        return ListCatalog.empty()
    # List URLs are the operator's own choice (CLI or config), so they are not
    # subject to the SSRF guard that protects webhook and API-supplied URLs.
    async with client_session(Purpose.LISTS) as http:  # its default timeout: five minutes in all
        return await load_catalog(
            sources, http=http, max_bytes=settings.lists.max_list_bytes, thresholds=list_thresholds(settings)
        )


def gateway_pool(
    settings: Settings,
    urls: list[str],
    http: aiohttp.ClientSession,
    mode: RetrievalMode,
    *,
    distrusted: Mapping[str, DistrustNote] | None = None,
) -> GatewayPool:
    """The trustless gateways a CID target is fetched from, with the [gateways] and [limits] bounds;
    `distrusted`: liars other scans caught, never asked."""
    g, limits = settings.gateways, settings.limits
    return GatewayPool(
        [
            TrustlessGateway(
                u,
                http,
                max_block_bytes=limits.max_block_bytes,
                connect_timeout_s=g.connect_timeout_s,
                read_timeout_s=g.read_timeout_s,
                response_deadline_s=g.response_deadline_s,
                min_bytes_per_s=g.min_bytes_per_s,
                throughput_grace_s=g.throughput_grace_s,
            )
            for u in urls
        ],
        mode=mode,
        max_buffered_bytes=limits.max_buffered_bytes,
        max_unrequested_bytes=limits.max_unrequested_bytes,
        max_retry_after_s=g.max_retry_after_s,
        distrusted=dict(distrusted or {}),
    )
