"""Standard Webhooks signing: the body and headers of one delivery attempt.

Receivers verify with any Standard Webhooks library (https://www.standardwebhooks.com):
HMAC-SHA256 over ``{webhook-id}.{webhook-timestamp}.{body}``. We sign with the
`standardwebhooks` package itself rather than re-implementing the HMAC, so our
signatures are by construction what those libraries expect.

Secrets are credentials of the platforms: nothing here puts a secret (or a
fragment of one) in a log line or an exception message."""

from __future__ import annotations

import base64
import json
import math
import secrets as _secrets
from collections.abc import Sequence
from datetime import UTC, datetime

from standardwebhooks.webhooks import EmptyWebhookSecretError, Webhook

from agent.model.records import EventRow
from agent.model.time import iso_utc

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret


def new_secret() -> str:
    """A fresh signing secret: ``whsec_`` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(_secrets.token_bytes(32)).decode("ascii")


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        # A naive time would be read as UTC by standardwebhooks and silently
        # shift the signed timestamp by the local offset.
        raise ValueError("naive datetime: signing needs an aware time")
    return value.astimezone(UTC)


def event_body(event: EventRow) -> str:
    """The JSON body of an event, byte-for-byte the same on every attempt and replay.

    Only stored fields go in (no send time), so a retry's signature differs from
    the first attempt's only through the timestamp header."""
    created = iso_utc(event.created_at, timespec="microseconds")
    return json.dumps(
        {"type": event.type, "timestamp": created, "data": event.payload},
        separators=(",", ":"),
        sort_keys=False,
        allow_nan=False,
    )


def webhook_headers(event_id: str, body: str, secrets: Sequence[str], now: datetime) -> dict[str, str]:
    """Standard Webhooks headers for one attempt.

    `webhook-id` is the event id, so retries and replays carry the same id and
    a receiver can drop duplicates; `webhook-timestamp` is `now` (fresh per
    attempt: receivers refuse timestamps older than a few minutes); one `v1,`
    signature per secret, so during a rotation grace a receiver that knows
    only the old secret (or only the new one) still verifies."""
    unique = list(dict.fromkeys(s for s in secrets if s))
    if not unique:
        raise ValueError("no signing secret")
    when = _utc(now)
    signatures = []
    for secret in unique:
        try:
            signer = Webhook(secret)
        except (ValueError, TypeError, RuntimeError, EmptyWebhookSecretError):
            # `from None`: the underlying error (binascii) must not drag the
            # secret's text into a traceback that ends up in a log.
            raise ValueError("subscription secret is not valid base64 (expected whsec_<base64>)") from None
        signatures.append(signer.sign(event_id, when, body))
    return {
        "webhook-id": event_id,
        "webhook-timestamp": str(math.floor(when.timestamp())),
        "webhook-signature": " ".join(signatures),
    }
