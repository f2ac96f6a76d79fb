"""The console's lists page over the real app and a real ThreatExchange CSV list: each list's
source, version, load time, counts, entries by signal type, thresholds and problems (as
text), the same figures GET /v1/lists gives; a list this agent has not loaded says so."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from agent.lists.catalog import ListCatalog, Thresholds, load_catalog
from agent.model.access import Role
from agent.model.signals import SignalType
from agent.store import Store
from tests.support.api import api_server
from tests.support.console import ConsoleUser

HOSTILE = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
VERSION = "ab" * 32


@pytest.fixture
async def catalog(tmp_path: Path) -> ListCatalog:
    """A TE CSV list of a PDQ, a SHA-256 and an MD5 entry and one line that is no hash
    (quoting markup), loaded with tighter PDQ and an opted-in pHash threshold."""
    listing = tmp_path / "gifct.csv"
    listing.write_text(
        "signal_type,signal_str,collab,category,tags\n"
        f"pdq,{'a' * 64},hashshare,terrorism,video_game\n"
        f"sha256,{'b' * 64},hashshare,terrorism,manifesto\n"
        f"md5,{'c' * 32},hashshare,terrorism,manifesto\n"
        f"pdq,{HOSTILE},hashshare,terrorism,manifesto\n"
    )
    thresholds = {"gifct": Thresholds(pdq_distance=20, imagehash_distance={SignalType.PHASH: 8})}
    return await load_catalog([str(listing)], thresholds=thresholds)


def facts(section: str) -> dict[str, str]:
    """A <dl class="facts">'s terms and definitions, as text."""
    pairs = re.findall(r"<dt>(.*?)</dt><dd[^>]*>(.*?)</dd>", section, re.S)
    return {dt.strip(): re.sub(r"<[^>]+>", "", dd).strip() for dt, dd in pairs}


def section_of(html: str, name: str) -> str:
    [section] = [s for s in html.split("<section")[1:] if f">{name}</h2>" in s]
    return section


async def test_the_lists_page_shows_each_lists_version_counts_thresholds_and_problems(
    store: Store, catalog: ListCatalog
) -> None:
    """The loaded list shows its source, version hash, load time, entries (by type too),
    deny rules, its thresholds as the agent applies them and its problem line escaped; a
    list only the store knows says its details are not known here; /v1/lists agrees."""
    [summary] = catalog.summaries
    await store.lists.record_version("gifct", summary.source, VERSION, summary.entries, 2, summary.problems)
    await store.lists.record_version("tcap", "https://tcap.example/list", "cd" * 32, 12, 0, 3)
    async with api_server(store, catalog=lambda: catalog, console=True) as api:
        async with ConsoleUser.login(api.url, await api.token(Role.VIEWER)) as viewer:
            page = await viewer.get("/ui/lists")
        listed = (await (await api.client(Role.VIEWER)).get("/v1/lists")).json()["lists"]

    assert page.status == 200 and HOSTILE not in page.text
    gifct = section_of(page.text, "gifct")
    shown = facts(gifct)
    assert shown["Source"] == summary.source and shown["Version (SHA-256 of its content)"] == VERSION
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", shown["Loaded at"])
    assert (shown["Entries"], shown["Deny rules"], shown["Problems"]) == ("3", "2", "1")
    by_type = re.findall(r"<tr><td>(\w+)</td><td class=\"num\">(\d+)</td></tr>", gifct)
    assert by_type == [("md5", "1"), ("pdq", "1"), ("sha256", "1")]
    assert shown["PDQ distance (at most)"] == "20" and shown["PDQ quality (at least)"] == "50"
    assert shown["phash distance (at most)"] == "8" and "dhash distance (at most)" not in shown
    assert shown["vPDQ frames matched (at least)"] == "80.0 %"
    assert f"{summary.source}:5: pdq value is not hex: &#39;{ESCAPED}&#39;" in gifct

    tcap = facts(section_of(page.text, "tcap"))
    assert (tcap["Source"], tcap["Entries"], tcap["Problems"]) == ("https://tcap.example/list", "12", "3")
    assert "This agent has not loaded this list" in section_of(page.text, "tcap")
    assert "not kept by this agent" in section_of(page.text, "tcap")
    assert "not loaded" not in gifct

    assert [(x["name"], x["entries_by_type"], len(x["problem_lines"])) for x in listed] == [
        ("gifct", {"md5": 1, "pdq": 1, "sha256": 1}, 1),
        ("tcap", None, 0),
    ]
    assert listed[0]["problem_lines"][0] == f"{summary.source}:5: pdq value is not hex: '{HOSTILE}'"


async def test_without_lists_the_page_says_how_to_load_one(store: Store) -> None:
    """No list version stored: the page says none is loaded and where lists are configured."""
    async with (
        api_server(store, console=True) as api,
        ConsoleUser.login(api.url, await api.token(Role.INVESTIGATOR)) as user,
    ):
        page = await user.get("/ui/lists")
    assert page.status == 200 and "No list is loaded yet" in page.text and "[lists] sources" in page.text
    assert "<section" not in page.text
