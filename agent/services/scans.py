"""One-off scans and local hashing, from explicit per-call options.

Settings are the agent's configuration, loaded once and never changed: what one call wants
different (gateways, mode, every video frame, ...) is an option of that call, and where the
pipeline reads it from the settings a derived copy carries it (`model_copy`), so two calls in
one process (an API server) never see each other's choices."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from agent.services.errors import Invalid

if TYPE_CHECKING:
    from agent.config import Settings
    from agent.lists.catalog import ListCatalog
    from agent.model.report import ItemReport, ScanReport
    from agent.model.target import Target
    from agent.pipeline.local import FileSignals


@dataclass(frozen=True, slots=True)
class ScanOptions:
    # Trustless gateways for this scan (empty: [gateways] urls of the config).
    gateways: tuple[str, ...] = ()
    mode: Literal["car", "raw"] = "car"
    concurrency: int = 4
    # Hash lists or denylists loaded for this scan beside the configured [lists] sources.
    extra_lists: tuple[str, ...] = ()
    hash_media: bool = True


@dataclass(frozen=True, slots=True)
class HashOptions:
    # vPDQ: hash every video frame (as reference lists do), not the configured sample rate.
    every_frame: bool = False


@dataclass(frozen=True, slots=True)
class PreparedScan:
    """Everything checked and loaded that can be before a byte is fetched."""

    target: Target
    catalog: ListCatalog
    options: ScanOptions


def parse_target(text: str) -> Target:
    from agent.model.target import TargetError
    from agent.sources.targets import parse_target as parse

    try:
        return parse(text)
    except TargetError as exc:
        raise Invalid(str(exc)) from exc


def missing_list(source: str) -> str | None:
    """Why a local list source cannot be read, before anything is loaded or fetched."""
    if source.startswith(("http://", "https://")):
        return None  # a download failure names the URL and the reason when it happens
    try:
        path = Path(source).expanduser()
        if path.exists():
            return None
    except (RuntimeError, UnicodeError):
        return f"{source}: the home directory in that path is not known"
    except OSError as exc:
        return f"{source}: {(exc.strerror or str(exc)).lower()}"
    where = "" if path.is_absolute() else f" ({path.absolute()})"
    return f"{source}: no such file or directory{where}"


class ScansService:
    """Needs no store: a one-off scan records nothing."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    async def prepare(self, target: Target, options: ScanOptions) -> PreparedScan:
        """Check every list source and load the lists; Invalid("list ...") when one cannot be."""
        from agent.lists.catalog import ListLoadError
        from agent.pipeline import load_scan_catalog

        for source in [*self._settings.lists.sources, *options.extra_lists]:
            if (problem := missing_list(source)) is not None:
                raise Invalid(f"list {problem}")
        try:
            catalog = await load_scan_catalog(self._settings, list(options.extra_lists))
        except ListLoadError as exc:
            raise Invalid(f"list {exc}") from exc
        return PreparedScan(target, catalog, options)

    async def scan(self, prepared: PreparedScan, on_item: Callable[[ItemReport], None] | None = None) -> ScanReport:
        from agent.pipeline import Scanner

        o = prepared.options
        scanner = Scanner(
            self._settings,
            gateways=list(o.gateways),
            mode=o.mode,
            concurrency=o.concurrency,
            on_item=on_item,
            catalog=prepared.catalog,
            hash_media=o.hash_media,
        )
        return await scanner.scan(prepared.target)

    async def hash_files(self, paths: Sequence[Path], options: HashOptions) -> list[FileSignals]:
        """The signals of local files (one result per path, its error inside it)."""
        from agent.pipeline.local import hash_local_files

        settings = self._settings
        if options.every_frame:
            media = settings.media.model_copy(update={"video_fps_sample": 0.0})
            settings = settings.model_copy(update={"media": media})
        return await hash_local_files(settings, list(paths))
