"""Item keys: the store's name for one piece of content, whatever its source.

IPFS content is keyed by its multihash in hex (a CIDv0 and a CIDv1 of the same
bytes are one item); an Arweave transaction by `ar:<txid>`. The spellings are
what existing databases hold, so they never change."""

from __future__ import annotations

from typing import NewType

ItemKey = NewType("ItemKey", str)

ARWEAVE_PREFIX = "ar:"


def content_key(multihash: bytes) -> ItemKey:
    """The key of IPFS content: its multihash bytes, hex (see agent.ipfs.cid.block_key)."""
    return ItemKey(multihash.hex())


def arweave_key(txid: str) -> ItemKey:
    """The key of an Arweave transaction's data."""
    return ItemKey(f"{ARWEAVE_PREFIX}{txid}")


def is_arweave_key(key: str) -> bool:
    """Whether `key` names an Arweave transaction (not IPFS content)."""
    return key.startswith(ARWEAVE_PREFIX)
