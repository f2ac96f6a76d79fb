"""CAR v1/v2 streams and CAR files walked as DAGs: only IpfsError comes out."""

from __future__ import annotations

from hypothesis import example, given

from tests.property import strategies as s
from tests.property.targets import TARGETS

CAR = TARGETS["car"]
CARFILE = TARGETS["carfile"]


@given(CAR.strategy)
@example(b"")
@example(s.car_v2(b"\x00"))
def test_car_reader_raises_only_ipfs_errors(data: bytes) -> None:
    CAR.check(data)


@given(CARFILE.strategy)
def test_car_file_index_and_walk_raise_only_ipfs_errors(data: bytes) -> None:
    CARFILE.check(data)
