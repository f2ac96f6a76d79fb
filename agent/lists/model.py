"""The entry model shared by every list format and by the match index.

A list entry is one signal (a hash value of a known type) with the labels the
list publisher attached to it and where it came from (file and line), so that
every Finding can name the exact list line that caused it."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from agent.model.signals import PERCEPTUAL_BITS, SignalType, VideoFrameHash

# Hex length of a value per signal type. vPDQ values are ids, not hashes, and
# colorhash has no fixed width (it depends on the hasher's bin count).
HEX_LENGTH: Mapping[SignalType, int] = MappingProxyType(
    {
        SignalType.MD5: 32,
        SignalType.SHA1: 40,
        SignalType.SHA256: 64,
        **{t: bits // 4 for t, bits in PERCEPTUAL_BITS.items()},
    }
)
_HEX = re.compile(r"[0-9a-f]+")
# colorhash values are short; anything longer than a PDQ hash is not one.
_COLORHASH_MAX_HEX = 64

# The industry's PDQ rule (ThreatExchange, HMA). bench/fp_corpus.py found no
# false match up to distance 37 on 1,870 unrelated images (none of quality
# >= 50), and distance 31 still finds every edit of the bridge-mods fixtures.
DEFAULT_PDQ_DISTANCE = 31
DEFAULT_PDQ_MIN_QUALITY = 50
DEFAULT_VPDQ_MATCH_PERCENT = 80.0
# pHash, dHash, aHash, wHash and colorhash are NOT matched unless a list asks
# for a distance ([lists.thresholds.<name>] <type>_distance). On the
# bench/fp_corpus.py corpus none of them reaches zero false positives at any
# threshold, not even 0: every flat or near-flat image has the same value
# (pHash 8000000000000000, aHash 0000000000000000, colorhash 07000000000 for
# any greyscale image), and these hashes carry no quality score that would
# let such images be skipped as PDQ's does. A list that matched them by
# default accused unrelated images (issue 8).
NOT_MATCHED_BY_DEFAULT = frozenset(
    {SignalType.PHASH, SignalType.DHASH, SignalType.AHASH, SignalType.WHASH, SignalType.COLORHASH}
)


@dataclass(frozen=True, slots=True)
class ParseProblem:
    """A line (or a whole input) that was skipped, and why. Never fatal."""

    source: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = self.source if self.line is None else f"{self.source}:{self.line}"
        return f"{where}: {self.message}"


@dataclass(frozen=True, slots=True)
class ListEntry:
    """One signal on one list. `value` is normalised (lower-case hex, or the
    video id for vPDQ); `frames` is only set for vPDQ entries."""

    list_name: str
    signal_type: SignalType
    value: str
    labels: tuple[str, ...] = ()
    source: str = ""
    line: int | None = None
    entry_id: str = ""
    deleted: bool = False
    frames: tuple[VideoFrameHash, ...] = ()

    def __post_init__(self) -> None:
        # A stable id that survives reordering of the list file.
        if not self.entry_id:
            object.__setattr__(self, "entry_id", f"{self.signal_type.value}:{self.value}")


@dataclass(frozen=True, slots=True)
class HashList:
    """A named, immutable set of entries plus the thresholds to match them with.

    Thresholds are per list because publishers calibrate differently: a list of
    verified terrorist content may be matched more tightly than a research list."""

    name: str
    entries: tuple[ListEntry, ...] = ()
    pdq_distance: int = DEFAULT_PDQ_DISTANCE
    pdq_min_quality: int = DEFAULT_PDQ_MIN_QUALITY
    # Max distance per imagehash type (pHash, dHash, aHash, wHash, colorhash);
    # a type absent here is not matched at all (see NOT_MATCHED_BY_DEFAULT).
    imagehash_distance: Mapping[SignalType, int] = field(default_factory=dict)
    vpdq_match_percent: float = DEFAULT_VPDQ_MATCH_PERCENT
    # Share of the *list* video's frames that must match too; 0 = not required
    # (the ThreatExchange default only thresholds the query side).
    vpdq_compared_percent: float = 0.0

    def distance_for(self, signal_type: SignalType) -> int | None:
        """Max Hamming distance for a perceptual type, None = not matched."""
        if signal_type is SignalType.PDQ:
            return self.pdq_distance
        return self.imagehash_distance.get(signal_type)

    def with_entries(self, entries: Iterable[ListEntry]) -> HashList:
        return replace(self, entries=tuple(entries))

    def live_entries(self) -> tuple[ListEntry, ...]:
        return tuple(e for e in self.entries if not e.deleted)


def normalise_value(signal_type: SignalType, raw: str) -> str:
    """Lower-case hex value checked against the type's length.

    Raises ValueError with a message fit for a ParseProblem."""
    value = raw.strip().lower()
    if value.startswith("0x"):
        value = value[2:]
    if signal_type is SignalType.VPDQ:
        if not value:
            raise ValueError("empty vpdq id")
        return value
    if not _HEX.fullmatch(value):
        raise ValueError(f"{signal_type.value} value is not hex: {raw[:80]!r}")
    if signal_type is SignalType.COLORHASH:
        if len(value) > _COLORHASH_MAX_HEX:
            raise ValueError(f"colorhash value too long ({len(value)} hex chars)")
        return value
    expected = HEX_LENGTH[signal_type]
    if len(value) != expected:
        raise ValueError(f"{signal_type.value} value must be {expected} hex chars, got {len(value)}")
    return value


def parse_signal_type(raw: str) -> SignalType:
    """ThreatExchange / HMA names, case-insensitive. Raises ValueError."""
    name = raw.strip().lower()
    # HMA exports sometimes say "pdq_hash" / "video_md5"; accept the common ones.
    aliases = {
        "pdq_hash": "pdq",
        "photo_pdq": "pdq",
        "video_md5": "md5",
        "photo_md5": "md5",
        "vpdq_hash": "vpdq",
        "sha-256": "sha256",
        "sha-1": "sha1",
    }
    name = aliases.get(name, name)
    try:
        return SignalType(name)
    except ValueError:
        raise ValueError(f"unknown signal type {raw[:40]!r}") from None
