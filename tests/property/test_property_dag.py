"""dag-cbor / dag-json documents and their links: only DagError comes out,
and every link path is confined to the root or refused."""

from __future__ import annotations

from hypothesis import example, given

from agent.ipfs.dagpb import DAG_CBOR
from tests.property.targets import TARGETS

DOCUMENT = TARGETS["document"]


@given(DOCUMENT.strategy)
@example((DAG_CBOR, b"\xa1\x62..\xd8\x2a\x45\x00\x01\x55\x00\x00"))  # key ".." to an identity CID
def test_document_links_raise_only_dag_errors(value: tuple[int, bytes]) -> None:
    DOCUMENT.check(value)
