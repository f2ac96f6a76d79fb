"""Which parser a list file needs: by extension first, then by content."""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import PurePosixPath

from agent.lists.model import parse_signal_type


class ListFormat(StrEnum):
    DENYLIST = "deny"
    TE_CSV = "csv"
    TCAP_JSON = "tcap-json"
    VPDQ = "vpdq"
    PLAIN = "plain"


EXTENSIONS = {".deny": ListFormat.DENYLIST, ".csv": ListFormat.TE_CSV, ".json": ListFormat.TCAP_JSON}
# Files a directory load picks up; anything else (README.md, ...) is skipped.
LIST_SUFFIXES = frozenset({*EXTENSIONS, ".txt"})

_VPDQ_LINE = re.compile(r"\d+,\d+,[0-9a-fA-F]{64},\d+(\.\d+)?")
_SNIFF_BYTES = 64 * 1024


def detect_format(name: str, data: bytes) -> ListFormat:
    """`.deny`, `.csv`, `.json` decide by extension (the IPIP-383 spec makes
    `.deny` mandatory). Otherwise the first content line decides: a vPDQ frame
    line, a denylist rule or header, JSON, a CSV row starting with a signal
    type, and plain `<type> <value>` or bare values for everything else."""
    suffix = PurePosixPath(name).suffix.lower()
    if suffix in EXTENSIONS:
        return EXTENSIONS[suffix]
    head = data[:_SNIFF_BYTES].decode("utf-8", errors="replace").lstrip("\ufeff")
    if head.lstrip().startswith("{"):
        return ListFormat.TCAP_JSON
    for line in head.split("\n"):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if _VPDQ_LINE.fullmatch(line):
            return ListFormat.VPDQ
        if line.startswith(("/ipfs/", "/ipns/", "/ipld/", "//", "!/")) or line == "---":
            return ListFormat.DENYLIST
        if line.startswith(("version:", "name:")):
            return ListFormat.DENYLIST
        first = line.split(",", 1)[0]
        if "," in line and (first.lower() == "signal_type" or _is_signal_type(first)):
            return ListFormat.TE_CSV
        return ListFormat.PLAIN
    return ListFormat.PLAIN


def _is_signal_type(text: str) -> bool:
    try:
        parse_signal_type(text)
    except ValueError:
        return False
    return True
