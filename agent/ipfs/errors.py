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


class GatewayError(IpfsError):
    """A gateway did not give a usable answer (status, type, timeout, connection).

    `detail` is the message without the gateway's URL (a caller that names the
    gateway itself, like the content probe, shows only this); `location` is
    the Location of a redirect that was not followed."""

    def __init__(self, url: str, detail: str, status: int | None = None, *, location: str | None = None) -> None:
        self.url = url
        self.status = status
        self.detail = detail
        self.location = location
        super().__init__(f"{url}: {detail}")


class NotFoundAtGateway(GatewayError):
    pass


class BlockedAtGateway(GatewayError):
    """410 Gone or 451 Unavailable For Legal Reasons: the operator blocked this content."""


class SlowGateway(GatewayError):
    """A response broke its total deadline or fell below the minimum throughput."""

    def __init__(self, url: str, detail: str, *, too_slow: bool) -> None:
        self.too_slow = too_slow  # below the minimum throughput (not merely long)
        super().__init__(url, detail)


class RateLimited(GatewayError):
    def __init__(self, url: str, retry_after: float | None) -> None:
        self.retry_after = retry_after
        super().__init__(url, f"429 Too Many Requests (Retry-After {retry_after})", 429)
