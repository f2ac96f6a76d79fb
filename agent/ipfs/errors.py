"""Errors of content addressing and retrieval; each names what went wrong precisely."""

from __future__ import annotations


class IpfsError(Exception):
    """Base of every error raised by agent.ipfs.

    `provenance` (an agent.ipfs.blocks.Provenance) is attached when the error
    ended a retrieval, so a report can still say which gateways lied or blocked."""

    provenance: object | None = None


class InvalidCid(IpfsError):
    """A string or byte sequence is not a valid CID."""


class InvalidMultihash(InvalidCid, ValueError):
    """Bytes that are not a multihash (a CID's, a peer ID's, a denylist rule's).

    A ValueError too: the denylist parser refuses a rule on any ValueError."""


class UnsupportedHash(IpfsError):
    """A multihash function we cannot compute: its blocks can never be verified."""


class BlockMismatch(IpfsError):
    """Bytes served for a CID do not hash to that CID."""

    def __init__(self, cid: str, source: str | None = None) -> None:
        self.cid = cid
        self.source = source
        where = f" from {source}" if source else ""
        super().__init__(f"block {cid}{where} does not match its CID: bytes discarded")


class BlockTooLarge(IpfsError):
    """A block over the configured size limit (untrusted input is bounded)."""


class CarError(IpfsError):
    """A CAR stream is malformed or truncated."""


class DagError(IpfsError):
    """A block decodes to something that is not a well-formed node, or a DAG is pathological."""


class DagCycle(DagError):
    """A link leads back to one of its own ancestors."""


class PathEscape(DagError):
    """A link name would make a path leave the root (`..`, `/`, empty)."""


class MissingBlock(IpfsError):
    """No source could supply a block: the DAG is incomplete."""

    def __init__(self, cid: str, detail: str = "") -> None:
        self.cid = cid
        super().__init__(f"block {cid} is not available{': ' + detail if detail else ''}")


class BlockedContent(IpfsError):
    """Every gateway that was asked refused the content for legal or policy reasons (410/451)."""

    def __init__(self, cid: str, gateways: dict[str, int]) -> None:
        self.cid = cid
        self.gateways = gateways
        where = ", ".join(f"{url} ({status})" for url, status in gateways.items())
        super().__init__(f"{cid} is blocked at {where}")


class TooLarge(IpfsError):
    """An item or a scan would exceed its configured byte or count budget."""
