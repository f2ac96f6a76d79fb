"""Load lists from files, directories or downloaded bytes into one HashList
and one Denylist, collecting every problem instead of stopping at the first."""

from __future__ import annotations

import dataclasses
import errno
from dataclasses import dataclass
from pathlib import Path

from agent.lists.denylist import DENYLIST_LIMITS, Denylist, parse_denylist
from agent.lists.detect import LIST_SUFFIXES, ListFormat, detect_format
from agent.lists.formats.plain import parse_plain
from agent.lists.formats.tcap import apply_tcap_page, parse_tcap_page
from agent.lists.formats.te_csv import parse_te_csv
from agent.lists.formats.vpdq_text import parse_vpdq_file
from agent.lists.limits import DEFAULT_LIMITS, ParseLimits, ProblemLog, TooLarge
from agent.lists.model import HashList, ParseProblem
from agent.model.signals import SignalType

_READ_CHUNK = 1024 * 1024


@dataclass(frozen=True, slots=True)
class LoadResult:
    list: HashList
    denylist: Denylist
    problems: tuple[ParseProblem, ...]


class ListAccumulator:
    def __init__(self, hash_list: HashList) -> None:
        self.list = hash_list
        self.denylists: list[Denylist] = []
        self.problems = ProblemLog()

    def result(self) -> LoadResult:
        return LoadResult(self.list, Denylist.combine(self.denylists), self.problems.result())


def parse_into(
    acc: ListAccumulator,
    data: bytes,
    *,
    source: str,
    fmt: ListFormat,
    default_type: SignalType | None,
    limits: ParseLimits,
) -> None:
    name = acc.list.name
    try:
        if fmt is ListFormat.DENYLIST:
            deny_limits = ParseLimits(limits.max_bytes, DENYLIST_LIMITS.max_line_length, limits.max_entries)
            parsed = parse_denylist(data, source=source, limits=deny_limits)
            acc.denylists.append(Denylist(tuple(dataclasses.replace(rule, list=name) for rule in parsed.rules)))
            acc.problems.extend(parsed.problems)
            return
        if fmt is ListFormat.TCAP_JSON:
            page = parse_tcap_page(data, list_name=name, source=source, limits=limits)
            acc.list = apply_tcap_page(acc.list, page)
            acc.problems.extend(page.problems)
            return
        if fmt is ListFormat.TE_CSV:
            result = parse_te_csv(data, list_name=name, source=source, limits=limits)
        elif fmt is ListFormat.VPDQ:
            result = parse_vpdq_file(data, list_name=name, source=source, limits=limits)
        else:
            result = parse_plain(data, list_name=name, source=source, default_type=default_type, limits=limits)
    except TooLarge as exc:
        acc.problems.append(ParseProblem(source, None, str(exc)))
        return
    acc.list = acc.list.with_entries(acc.list.entries + result.entries)
    acc.problems.extend(result.problems)


def parse_list_bytes(
    data: bytes,
    *,
    source: str,
    name: str,
    fmt: ListFormat | None = None,
    default_type: SignalType | None = None,
    limits: ParseLimits = DEFAULT_LIMITS,
) -> LoadResult:
    """Parse one downloaded list (see fetch_list). `fmt` None = detect from
    the source's extension and the content."""
    acc = ListAccumulator(HashList(name))
    parse_into(
        acc,
        data,
        source=source,
        fmt=fmt or detect_format(source, data),
        default_type=default_type,
        limits=limits,
    )
    return acc.result()


def read_list_file(path: Path, limits: ParseLimits) -> bytes:
    """The bytes of a list file. Raises OSError, or TooLarge over limits.max_bytes."""
    size = path.stat().st_size
    if size > limits.max_bytes:
        raise TooLarge(f"{size} bytes exceeds the limit of {limits.max_bytes}")
    # In chunks: read(max_bytes + 1) would allocate the whole limit (256 MiB)
    # for a list of a few lines. The file may grow meanwhile, hence the loop.
    chunks: list[bytes] = []
    total = 0
    with path.open("rb") as handle:
        while chunk := handle.read(min(_READ_CHUNK, limits.max_bytes + 1 - total)):
            chunks.append(chunk)
            total += len(chunk)
            if total > limits.max_bytes:
                raise TooLarge(f"more than {limits.max_bytes} bytes")
    return b"".join(chunks)


def load_list(
    path_or_dir: str | Path,
    name: str | None = None,
    default_type: SignalType | None = None,
    limits: ParseLimits = DEFAULT_LIMITS,
) -> LoadResult:
    """Load a list file, or every list file (.deny .csv .json .txt) directly in
    a directory, in name order (so later denylists override earlier ones and
    TCAP pages apply in sequence). All hash entries go into one HashList named
    `name` (default: the file stem or directory name); all denylist rules into
    one Denylist. Unreadable or oversized files become problems.

    Raises FileNotFoundError if `path_or_dir` does not exist."""
    root = Path(path_or_dir)
    if not root.exists():
        raise FileNotFoundError(errno.ENOENT, "no such file or directory", str(root))
    if root.is_dir():
        files = sorted(
            p
            for p in root.iterdir()
            if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in LIST_SUFFIXES
        )
        list_name = name or root.name
    else:
        files = [root]
        list_name = name or root.stem
    acc = ListAccumulator(HashList(list_name))
    for path in files:
        source = str(path)
        try:
            data = read_list_file(path, limits)
        except (OSError, TooLarge) as exc:
            acc.problems.append(ParseProblem(source, None, f"not loaded: {exc}"))
            continue
        parse_into(
            acc,
            data,
            source=source,
            fmt=detect_format(path.name, data),
            default_type=default_type,
            limits=limits,
        )
    return acc.result()
