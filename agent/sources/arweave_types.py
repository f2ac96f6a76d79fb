"""Arweave's vocabulary here: transaction ids, transactions, pages, fetched content, errors."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from agent.ipfs.errors import TooLarge

# A transaction id is the base64url (unpadded) SHA-256 of its signature: 43 characters.
_TXID = re.compile(r"^[A-Za-z0-9_-]{43}$")
MAX_PAGE_SIZE = 100  # arweave.net and Goldsky refuse more per page; ar.io allows 1000


class ArweaveError(Exception):
    """Base of every error raised here."""


class InvalidTxid(ArweaveError, ValueError):
    pass


class ArweaveGatewayError(ArweaveError):
    """A gateway did not give a usable answer (status, timeout, connection, GraphQL error)."""

    def __init__(self, gateway: str, detail: str, status: int | None = None) -> None:
        self.gateway = gateway
        self.status = status
        super().__init__(f"{gateway}: {detail}")


class ArweaveQueryError(ArweaveGatewayError):
    """The GraphQL endpoint answered with `errors` (bad cursor, unknown field, limits)."""


class ArweaveNotFound(ArweaveGatewayError):
    pass


class ArweaveBlocked(ArweaveGatewayError):
    """410 or 451: the gateway operator blocked this content (a policy answer, not a fault)."""


class ArweaveRateLimited(ArweaveGatewayError):
    def __init__(self, gateway: str, retry_after: float | None) -> None:
        self.retry_after = retry_after
        super().__init__(gateway, f"429 Too Many Requests (Retry-After {retry_after})", 429)


class ArweaveTooLarge(ArweaveError, TooLarge):
    """Over the caller's byte limit; a TooLarge like the IPFS side's, so the scan treats both alike."""


class ArweaveIntegrityError(ArweaveError):
    """The bytes do not hash to the digest the gateway announced for them: discarded."""

    def __init__(self, gateway: str, txid: str, detail: str) -> None:
        self.gateway = gateway
        self.txid = txid
        super().__init__(f"{gateway} served {txid}: {detail}; bytes discarded")


def check_txid(txid: str) -> str:
    if not isinstance(txid, str) or not _TXID.match(txid):
        shown = repr(txid)[:60]
        raise InvalidTxid(f"{shown} is not an Arweave transaction id (43 base64url characters)")
    return txid


@dataclass(frozen=True, slots=True)
class ArweaveTx:
    id: str
    owner: str
    tags: tuple[tuple[str, str], ...]  # in transaction order; a name may repeat
    data_size: int
    data_type: str | None
    block_height: int | None  # None while pending
    block_timestamp: int | None
    cursor: str

    def tag_map(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for name, value in self.tags:
            out.setdefault(name, []).append(value)
        return out

    def tag(self, name: str) -> str | None:
        return next((v for n, v in self.tags if n == name), None)

    @property
    def pending(self) -> bool:
        return self.block_height is None


@dataclass(frozen=True, slots=True)
class ArweavePage:
    txs: list[ArweaveTx]
    has_next_page: bool

    @property
    def end_cursor(self) -> str | None:
        return self.txs[-1].cursor if self.txs else None


@dataclass(frozen=True, slots=True)
class ArweaveContent:
    txid: str
    data: bytes = field(repr=False)
    sha256: str  # hex
    digest_checked: bool  # False: the gateway sent no digest, the bytes are unchecked
    gateway: str
    content_type: str | None = None


def int_or_none(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None
