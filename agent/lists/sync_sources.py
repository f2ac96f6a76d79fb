"""One list source between refreshes: its last good version in memory, the
outcome of refreshing it, and reading a local file or directory of lists.

Files are read and parsed in a worker thread (agent.lists.sync runs
`load_files` through asyncio.to_thread): big lists must not stall the loop."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from agent.lists.catalog import name_for
from agent.lists.denylist import Denylist

# load.py's accumulator is reused so a directory parses exactly as load_list
# parses it (TCAP pages applied in name order, denylists combined), but from
# the bytes we hashed rather than from a second read that could differ.
from agent.lists.detect import LIST_SUFFIXES, detect_format
from agent.lists.limits import ParseLimits, TooLarge
from agent.lists.load import ListAccumulator, LoadResult, parse_into, read_list_file
from agent.lists.model import HashList, ListEntry, ParseProblem
from agent.lists.sync_state import SyncState, TcapSourceConfig, content_hash
from agent.lists.tcap_client import ListSyncError

# A file modified this recently may change again within the same mtime tick
# without changing size, so its (mtime_ns, size) is not trusted on the next
# refresh: the bytes are hashed instead (git's "racily clean" rule).
_RACY_NS = 2_000_000_000


# -- per-source state held in memory -------------------------------------------


@dataclass(frozen=True, slots=True)
class LoadedVersion:
    """One loaded version of a source."""

    hash_list: HashList
    denylist: Denylist
    problems: tuple[ParseProblem, ...]
    content_hash: str
    raw_digest: str = ""  # sha256 of the bytes it was parsed from (files, URLs)
    stamp: tuple[tuple[str, int, int], ...] | None = None  # trusted (name, mtime_ns, size) of files
    etag: str | None = None
    last_modified: str | None = None
    checkpoint: str | None = None


@dataclass(frozen=True, slots=True)
class RefreshOutcome:
    """What one source's refresh produced: a new version, the old one kept
    (`version` is the old one, `loaded` False), or an error."""

    version: LoadedVersion | None
    loaded: bool
    error: str | None = None
    added: tuple[ListEntry, ...] = ()
    removed: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ListSource:
    """A configured list source under the name its state is kept by."""

    name: str
    source: str
    kind: str  # "file", "url", "tcap"
    tcap: TcapSourceConfig | None = None


def source_name(source: str) -> str:
    """load_catalog's name for a source, also for a file that does not exist
    yet: the name keys saved state, so it must not change when it appears."""
    path = Path(source).expanduser()
    if source.startswith(("http://", "https://")) or path.exists():
        return name_for(source)
    return path.stem if path.suffix.lower() in LIST_SUFFIXES else path.name or source


def unique_names(sources: Sequence[tuple[str, str, str, TcapSourceConfig | None]]) -> list[ListSource]:
    """Names key the state store; two sources that would share one (lists/a.txt
    and other/a.txt) get a numeric suffix instead of clobbering each other."""
    seen: dict[str, int] = {}
    out: list[ListSource] = []
    for name, source, kind, tcap in sources:
        count = seen.get(name, 0) + 1
        seen[name] = count
        out.append(ListSource(name if count == 1 else f"{name}-{count}", source, kind, tcap))
    return out


# -- files and directories (run in a worker thread: reading and parsing big
#    lists must not stall the event loop) -------------------------------------


def _list_files(root: Path) -> list[Path]:
    if root.is_dir():
        return sorted(
            p
            for p in root.iterdir()
            if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in LIST_SUFFIXES
        )
    return [root]


def _stamp(files: list[Path]) -> tuple[tuple[str, int, int], ...]:
    out = []
    for path in files:
        st = path.stat()
        out.append((path.name, st.st_mtime_ns, st.st_size))
    return tuple(out)


def load_files(root: Path, name: str, limits: ParseLimits, previous: LoadedVersion | None) -> RefreshOutcome:
    """Raises OSError or ListSyncError; the caller keeps the previous version."""
    root = root.expanduser()  # here, in the worker thread: it may read the password database
    if not root.exists():
        raise ListSyncError(f"{root}: not found")
    files = _list_files(root)
    stamp = _stamp(files)
    if previous is not None and previous.stamp == stamp:
        return RefreshOutcome(previous, loaded=False)
    started = time.time_ns()
    blobs: list[tuple[Path, bytes]] = []
    digest = hashlib.sha256()
    for path in files:
        try:
            data = read_list_file(path, limits)
        except TooLarge as exc:
            # Loading the rest would silently drop this file's entries.
            raise ListSyncError(f"{path}: {exc}") from None
        blobs.append((path, data))
        digest.update(f"{path.name}\0{len(data)}\0".encode())
        digest.update(data)
    raw_digest = digest.hexdigest()
    trusted = stamp if all(mtime < started - _RACY_NS for _, mtime, _ in stamp) else None
    if previous is not None and previous.raw_digest == raw_digest:
        # Touched, not changed.
        return RefreshOutcome(replace(previous, stamp=trusted), loaded=False)
    acc = ListAccumulator(HashList(name))
    for path, data in blobs:
        parse_into(acc, data, source=str(path), fmt=detect_format(path.name, data), default_type=None, limits=limits)
    result = acc.result()
    return RefreshOutcome(version_of(result, raw_digest, stamp=trusted), loaded=True)


def version_of(
    result: LoadResult,
    raw_digest: str,
    *,
    stamp: tuple[tuple[str, int, int], ...] | None = None,
    etag: str | None = None,
    last_modified: str | None = None,
) -> LoadedVersion:
    return LoadedVersion(
        result.list,
        result.denylist,
        result.problems,
        content_hash(result.list, result.denylist),
        raw_digest=raw_digest,
        stamp=stamp,
        etag=etag,
        last_modified=last_modified,
    )


def state_of(src: ListSource, v: LoadedVersion) -> SyncState:
    return SyncState(src.name, src.source, v.etag, v.last_modified, v.checkpoint, v.content_hash)
