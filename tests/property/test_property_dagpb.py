"""dag-pb nodes and UnixFS data: only DagError comes out."""

from __future__ import annotations

from hypothesis import given

from tests.property.targets import TARGETS

DAGPB = TARGETS["dagpb"]
UNIXFS = TARGETS["unixfs"]


@given(DAGPB.strategy)
def test_dagpb_decoding_raises_only_dag_errors(data: bytes) -> None:
    DAGPB.check(data)


@given(UNIXFS.strategy)
def test_unixfs_decoding_raises_only_dag_errors(data: bytes) -> None:
    UNIXFS.check(data)
