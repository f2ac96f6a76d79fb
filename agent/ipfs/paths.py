"""Link names and paths below a root: no name may leave it (".." , "/", NUL, ...)."""

from __future__ import annotations

from agent.ipfs.errors import PathEscape

__all__ = ["check_link_name", "join", "safe_join", "safe_join_all"]


def check_link_name(name: str) -> None:
    if name in ("", ".", "..") or "/" in name or "\\" in name or "\x00" in name:
        raise PathEscape(f"link name {name!r} would leave the directory; not followed")


def join(parent: str, name: str) -> str:
    return f"{parent}/{name}" if parent else name


def safe_join(parent: str, name: str) -> str:
    """Join a link name to its directory's path, refusing any name that leaves the root.

    UnixFS names should not contain '/', but real DAGs do (the gateway
    conformance suite has `../file` inside a subdirectory). Like Kubo's TAR
    export, a name is resolved against its directory and accepted only if the
    result stays inside the root."""
    if name in ("", ".", "..") or "\x00" in name or "\\" in name or name.startswith("/"):
        raise PathEscape(f"link name {name!r} would leave the directory; not followed")
    if "/" not in name:
        return join(parent, name)
    parts: list[str] = parent.split("/") if parent else []
    for part in name.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if len(parts) <= 0:
                raise PathEscape(
                    f"link name {name!r} under {parent or 'the root'!r} would leave the root; not followed"
                )
            parts.pop()
        else:
            parts.append(part)
    if not parts:
        raise PathEscape(f"link name {name!r} resolves to the root itself; not followed")
    return "/".join(parts)


def safe_join_all(parent: str, segments: tuple[str, ...]) -> str:
    """safe_join over several names (a document's map keys and list indexes)."""
    path = parent
    for segment in segments:
        path = safe_join(path, segment)
    return path
