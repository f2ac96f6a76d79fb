"""Every target spelling the scan command documents."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.targets import TargetError, TargetKind, parse_target

CID = "bafybeihchr7vmgjaasntayyatmp5sv6xza57iy2h4xj7g46bpjij6yhrmy"


@pytest.mark.parametrize("text, path, hint", [
    (f"ipfs://{CID}", (), None),
    (f"ipfs://{CID}/a/b.jpg", ("a", "b.jpg"), None),
    (f"/ipfs/{CID}/a", ("a",), None),
    (CID, (), None),
    (f"https://gw.example/ipfs/{CID}/x%20y.png", ("x y.png",), "https://gw.example"),
    (f"https://{CID}.ipfs.gw.example/dir/", ("dir",), "https://gw.example"),
    (f"http://{CID}.ipfs.localhost:8080/", (), "http://localhost:8080"),
])
def test_ipfs_target_forms(text: str, path: tuple[str, ...], hint: str | None) -> None:
    target = parse_target(text)
    assert target.kind == TargetKind.IPFS and str(target.cid) == CID
    assert target.path == path and target.gateway_hint == hint


def test_local_car_and_local_paths(tmp_path: Path) -> None:
    car = tmp_path / "x.car"
    car.write_bytes(b"")
    assert parse_target(str(car)).kind == TargetKind.CAR_FILE
    assert parse_target(str(tmp_path)).kind == TargetKind.LOCAL


@pytest.mark.parametrize("text, message", [
    ("", "empty"),
    ("ipfs://nope", "not a CID"),
    (f"ipfs://{CID}/../etc", "not allowed"),
    ("https://example.org/some/page", "not a path"),
    ("ipns://example.org", "IPNS"),
    ("/no/such/file.car", "neither a CID"),
])
def test_unusable_targets_are_refused_with_a_reason(text: str, message: str) -> None:
    with pytest.raises(TargetError, match=message):
        parse_target(text)
