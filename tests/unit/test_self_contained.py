"""A clone alone passes its tests: nothing in tests/ or bench/ reads the
workplace's ../shared folder (the fixtures are copied into tests/fixtures,
with their origins in tests/fixtures/NOTICE)."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OUTSIDE = re.compile(r"""\.parent\s*/\s*["']shared["']|\.\./shared""")


def test_no_test_or_bench_reads_the_shared_folder() -> None:
    offenders = [
        f"{path.relative_to(REPO)}:{number}"
        for folder in ("tests", "bench")
        for path in sorted((REPO / folder).rglob("*.py"))
        if path.resolve() != Path(__file__).resolve()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert offenders == []


def test_every_fixture_folder_is_named_in_the_notice() -> None:
    notice = (REPO / "tests" / "fixtures" / "NOTICE").read_text(encoding="utf-8")
    for folder in ("gateway-conformance", "extras", "denylists", "pdq", "video", "vpdq-hashes", "docs"):
        assert f"{folder}/" in notice, folder
