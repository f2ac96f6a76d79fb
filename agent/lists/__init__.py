"""Hash lists and CID denylists: formats, loading, and the match index.

Knows nothing of scanning, alerts, storage or the API (see DESIGN.md)."""

from agent.lists.denylist import DenyDecision, Denylist, DenyRule, parse_denylist
from agent.lists.detect import ListFormat, detect_format
from agent.lists.fetch import ListTooLarge, fetch_list
from agent.lists.formats import ParseResult
from agent.lists.formats.plain import parse_plain
from agent.lists.formats.tcap import TcapPage, apply_tcap_page, parse_tcap_page
from agent.lists.formats.te_csv import parse_te_csv
from agent.lists.formats.vpdq_text import parse_vpdq_file
from agent.lists.index import HammingIndex, NumpyHammingIndex
from agent.lists.limits import DEFAULT_LIMITS, ParseLimits, TooLarge
from agent.lists.load import LoadResult, load_list, parse_list_bytes
from agent.lists.matcher import Match, MatchIndex
from agent.lists.model import HashList, ListEntry, ParseProblem

__all__ = [
    "DEFAULT_LIMITS",
    "DenyDecision",
    "DenyRule",
    "Denylist",
    "HammingIndex",
    "HashList",
    "ListEntry",
    "ListFormat",
    "ListTooLarge",
    "LoadResult",
    "Match",
    "MatchIndex",
    "NumpyHammingIndex",
    "ParseLimits",
    "ParseProblem",
    "ParseResult",
    "TcapPage",
    "TooLarge",
    "apply_tcap_page",
    "detect_format",
    "fetch_list",
    "load_list",
    "parse_denylist",
    "parse_list_bytes",
    "parse_plain",
    "parse_tcap_page",
    "parse_te_csv",
    "parse_vpdq_file",
]
