"""POST /v1/match and POST /v1/hash: a caller's own hashes, or an upload's, against the
running agent's lists (agent.services.matching). Neither is audited: they change nothing,
and a platform checking each of its uploads would flood the trail.

/v1/hash reads one multipart/form-data file part in chunks, never whole, at most [api]
max_upload_bytes (413 on the declared Content-Length and again while reading, since a
chunked upload declares none). The bytes are hashed in the media pool and never stored."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Final

from aiohttp import BodyPartReader, MultipartReader, web
from aiohttp.http_exceptions import HttpProcessingError
from pydantic import Field

from agent.api.problems import FieldError, Problem
from agent.api.routes.scans import invalid_field
from agent.api.routing import Call, Route
from agent.api.schemas import Body, Out, Query
from agent.model.access import Role
from agent.model.finding import Finding
from agent.services import Invalid
from agent.services.matching import HashedUpload, MatchResult, SignalQuery, UploadTooLarge

MATCHERS = frozenset({Role.ADMIN, Role.INVESTIGATOR, Role.PLATFORM})
# One request's signals: a platform batching a few uploads' hashes. Bigger batches are more
# requests, each answered quickly (a perceptual query costs a scan of every list entry).
MAX_SIGNALS: Final = 100
MULTIPART: Final = "multipart/form-data"
FILE_PART: Final = "file"
_CHUNK: Final = 64 * 1024
# The multipart framing around the file (boundaries, part headers) on top of the file's bytes.
_FRAMING: Final = 16 * 1024


class SignalIn(Body):
    type: str = Field(
        min_length=1, max_length=64, description="pdq, md5, sha256, ... (ThreatExchange names) or cid (the denylists)"
    )
    value: str = Field(min_length=1, max_length=4096, description="the hash (hex) or the CID")
    quality: int | None = Field(
        default=None, ge=0, le=100, description="PDQ quality; held to each list's minimum when given"
    )


class MatchIn(Body):
    signals: list[SignalIn] = Field(min_length=1, max_length=MAX_SIGNALS)


class MatchedEntry(Out):
    """A list entry (or denylist rule) matched, as a finding names it."""

    list_name: str = Field(serialization_alias="list")
    entry: str
    entry_id: str
    signal_type: str
    distance: float = Field(description="0 for exact types; Hamming bits for PDQ; % of frames matched for vPDQ")
    labels: list[str]
    query: str | None = Field(description="the value that matched")
    list_source: str | None
    list_line: int | None
    compared_percent: float | None = Field(description="vPDQ: the list video's share of frames matched")

    @classmethod
    def fields_of(cls, f: Finding) -> dict[str, object]:
        return {
            "list_name": f.list_name,
            "entry": f.entry,
            "entry_id": f.entry_id,
            "signal_type": f.signal_type.value,
            "distance": f.distance,
            "labels": list(f.labels),
            "query": f.query,
            "list_source": f.list_source,
            "list_line": f.list_line,
            "compared_percent": f.compared_percent,
        }

    @classmethod
    def of(cls, f: Finding) -> MatchedEntry:
        return cls.model_validate(cls.fields_of(f))


class MatchOut(MatchedEntry):
    index: int = Field(description="the position of the matching signal in the request")

    @classmethod
    def of_result(cls, r: MatchResult) -> MatchOut:
        return cls.model_validate({"index": r.index, **cls.fields_of(r.finding)})


class MatchesOut(Out):
    matches: list[MatchOut] = Field(description="in request order; a signal may match several entries, or none")


class HashQuery(Query):
    match: bool = Field(default=False, description="also match the upload's signals against the lists")


class SignalOut(Out):
    type: str
    value: str
    quality: int | None


class FrameOut(Out):
    frame: int
    quality: int
    pdq: str
    timestamp: float


class HashOut(Out):
    filename: str | None
    size: int
    media_type: str = Field(description="as sniffed from the bytes")
    signals: list[SignalOut]
    vpdq: list[FrameOut] = Field(description="a video's per-second frame hashes")
    error: str | None = Field(description="what could not be hashed (a corrupt image still has its digests)")
    matches: list[MatchedEntry] | None = Field(description="with ?match=true: what a scan would find for it")

    @classmethod
    def of(cls, upload: HashedUpload, matches: list[Finding] | None) -> HashOut:
        s = upload.signals
        return cls(
            filename=upload.filename,
            size=upload.size,
            media_type=upload.media_type,
            signals=[SignalOut(type=h.type.value, value=h.value, quality=h.quality) for h in s.hashes],
            vpdq=[FrameOut(frame=f.frame, quality=f.quality, pdq=f.pdq_hex, timestamp=f.timestamp) for f in s.frames],
            error=upload.error,
            matches=[MatchedEntry.of(f) for f in matches] if matches is not None else None,
        )


async def match_signals(call: Call) -> MatchesOut:
    body = call.body(MatchIn)
    queries = [SignalQuery(s.type, s.value, s.quality) for s in body.signals]
    try:
        results = await call.context.matcher.match(queries)
    except Invalid as exc:
        raise invalid_field(exc) from None
    return MatchesOut(matches=[MatchOut.of_result(r) for r in results])


# What aiohttp's multipart reader raises for a body that is not valid multipart.
_UNREADABLE = (ValueError, HttpProcessingError)


def _unreadable(exc: Exception) -> Problem:
    why = exc.message if isinstance(exc, HttpProcessingError) else str(exc)
    return Problem(400, f"the multipart body cannot be read: {why}"[:500])


async def _file_part(request: web.Request) -> BodyPartReader:
    """The upload's one file part, or the problem with its upload (415, 413, 422)."""
    if request.content_type != MULTIPART:
        raise Problem(415, f"send the file as {MULTIPART} (one part named {FILE_PART!r}), not {request.content_type}")
    try:
        reader: MultipartReader = await request.multipart()
        part = await reader.next()
    except _UNREADABLE as exc:
        raise _unreadable(exc) from None
    if not isinstance(part, BodyPartReader) or (part.filename is None and part.name != FILE_PART):
        raise Problem(
            422,
            f"the upload's first part must be the file (a part named {FILE_PART!r} or with a filename)",
            errors=[FieldError(field=FILE_PART, message="no file part")],
        )
    return part


async def _chunks(part: BodyPartReader) -> AsyncIterator[bytes]:
    while chunk := await part.read_chunk(_CHUNK):
        yield chunk


async def hash_upload(call: Call) -> HashOut:
    matcher = call.context.matcher
    limit = call.context.settings.api.max_upload_bytes
    declared = call.request.content_length
    if declared is not None and declared > limit + _FRAMING:
        raise Problem(413, f"the upload is {declared} bytes; at most {limit} are accepted")
    part = await _file_part(call.request)
    try:
        upload = await matcher.hash(_chunks(part), limit=limit, filename=part.filename)
    except UploadTooLarge as exc:
        raise Problem(413, f"the upload is larger than {exc.limit} bytes") from None
    except _UNREADABLE as exc:
        raise _unreadable(exc) from None
    matches = await matcher.matches_for(upload) if call.query(HashQuery).match else None
    return HashOut.of(upload, matches)


_UPLOAD = {
    MULTIPART: {
        "schema": {
            "type": "object",
            "required": [FILE_PART],
            # Any bytes at all are a file to hash: no `type`, which would claim some bytes are not one.
            "properties": {FILE_PART: {"contentMediaType": "application/octet-stream"}},
        }
    }
}

ROUTES = [
    Route(
        "POST",
        "/v1/match",
        match_signals,
        MATCHERS,
        "Match hashes against the agent's lists",
        "matching",
        body=MatchIn,
        responses={200: MatchesOut},
        mutating=False,
        description=f"At most {MAX_SIGNALS} signals a request. A PDQ hash without a quality is matched by "
        "distance alone (as HMA's lookup); with one it is held to each list's minimum quality, as a scan is. "
        "`cid` signals are checked against the denylists.",
    ),
    Route(
        "POST",
        "/v1/hash",
        hash_upload,
        MATCHERS,
        "Hash an uploaded file (and match it with ?match=true)",
        "matching",
        query=HashQuery,
        responses={200: HashOut},
        mutating=False,
        upload=_UPLOAD,
        description="One multipart/form-data part named `file` (or with a filename), at most [api] "
        "max_upload_bytes. The bytes are hashed as a scanned file would be and never stored.",
    ),
]
