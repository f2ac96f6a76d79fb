"""The ids and sources a denylist finding carries out of the agent.

A finding's `entry_id` goes to platforms in webhooks and keys suppressions, so
it must not depend on where the operator keeps the file or how its path was
typed, nor on the rule's line number (which moves when lines are added
above it): it is the list name plus a hash of the rule itself. The hash is of
the rule token only (`/ipfs/CID/path*`, `!/ipns/name`, `//hash`), not of
its hints, so re-annotating a rule keeps its id."""

from __future__ import annotations

import hashlib
import re
from pathlib import PurePath, PurePosixPath, PureWindowsPath
from urllib.parse import urlsplit, urlunsplit

_ID_HEX = 16
# `<anything>:<line number>`: the id scheme before this module existed.
_LEGACY_ID = re.compile(r"(?P<source>.+):(?P<line>[0-9]+)")
DENY_SIGNAL_TYPES = frozenset({"cid", "path"})


def rule_token(raw: str) -> str:
    """The rule of a rule line, without its hints."""
    fields = raw.split()
    return fields[0] if fields else ""


def list_name_of(source: str) -> str:
    """The list a denylist file or URL belongs to: its file stem."""
    path = urlsplit(source).path if _is_url(source) else source
    return PurePosixPath(path.replace("\\", "/")).stem or path or source


def deny_entry_id(list_name: str, raw: str) -> str:
    """`<list>:<first 16 hex of sha256(rule token)>`."""
    digest = hashlib.sha256(rule_token(raw).encode("utf-8", "surrogatepass")).hexdigest()
    return f"{list_name}:{digest[:_ID_HEX]}"


def public_source(source: str) -> str:
    """Where a rule came from, fit to leave the machine: a URL without
    credentials, query or fragment; for a file, its name only (no folder)."""
    if _is_url(source):
        parts = urlsplit(source)
        netloc = parts.netloc.rpartition("@")[2]  # user:password@ never leaves
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    pure: PurePath = PureWindowsPath(source) if "\\" in source else PurePosixPath(source)
    return pure.name or source


def migrated_entry_id(list_name: str, entry_id: str, entry_value: str, signal_type: str) -> str | None:
    """The new id for a stored denylist finding or suppression made under the
    old `<file path>:<line>` scheme, or None when `entry_id` is not one (hash
    list ids, ids already migrated). `entry_value` is the stored rule line."""
    if signal_type not in DENY_SIGNAL_TYPES or not rule_token(entry_value):
        return None
    legacy = _LEGACY_ID.fullmatch(entry_id)
    if legacy is None or _legacy_list_name(legacy["source"]) != list_name:
        return None
    return deny_entry_id(list_name, entry_value)


def _is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def _legacy_list_name(source: str) -> str:
    # How the list name was derived when these ids were made (by the scan, before list names followed the loaded list).
    return PurePath(source).stem or source
