"""--out: checked before the scan, written whole at the end, nothing left in between."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from agent.cli.common import OutputFileError, ReportFile


def test_the_check_leaves_the_directory_as_it_was(tmp_path: Path) -> None:
    # A scan of the directory the report goes to must not find a file of ours in it.
    ReportFile(tmp_path / "report.json")
    assert list(tmp_path.iterdir()) == []


def test_commit_replaces_the_file_in_one_step_and_follows_a_symlink(tmp_path: Path) -> None:
    real = tmp_path / "real.json"
    real.write_text("old\n")
    link = tmp_path / "link.json"
    link.symlink_to(real)
    out = ReportFile(link)
    out.commit("new\n")
    assert link.is_symlink() and real.read_text() == "new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.json", "real.json"]


def test_a_new_report_gets_the_usual_permissions(tmp_path: Path) -> None:
    umask = os.umask(0o022)
    try:
        ReportFile(tmp_path / "r.json").commit("{}\n")
    finally:
        os.umask(umask)
    assert stat.S_IMODE((tmp_path / "r.json").stat().st_mode) == 0o644


@pytest.mark.parametrize(
    ("where", "reason"),
    [
        ("missing/r.json", "does not exist"),
        ("a-file/r.json", "is not a directory"),
    ],
)
def test_unusable_paths_are_refused_with_the_reason(tmp_path: Path, where: str, reason: str) -> None:
    (tmp_path / "a-file").write_text("")
    with pytest.raises(OutputFileError, match=reason):
        ReportFile(tmp_path / where)
