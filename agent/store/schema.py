"""The current schema, as SQLAlchemy Core tables.

These objects are what the queries use. The DDL that creates them lives in
`agent.store.migrations`: a database is only ever changed by a numbered
migration, never by `create_all` on this metadata.

Portability rules followed here (the same DDL runs on SQLite and PostgreSQL):
- JSON columns are `sa.JSON` (TEXT on SQLite, json on PostgreSQL); the one
  JSON operator in a query (a finding's labels, `store.views`) is spelled per
  dialect: json_each on SQLite, a jsonb cast and @> on PostgreSQL.
- datetimes are `UTCDateTime` (timestamptz / UTC text), always filled in by
  Python, never by a server default, so every value has the same format.
- surrogate ids are `BigId` (INTEGER rowid on SQLite, BIGINT identity on PG).
"""

from __future__ import annotations

import sqlalchemy as sa

from agent.store.types import BigId, UTCDateTime, json_type

# Constraint names are spelled out so that a later migration can drop or
# alter one by name on both dialects.
metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    }
)

_EMPTY_JSON_OBJECT = sa.text("'{}'")

schema_migrations = sa.Table(
    "schema_migrations",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("applied_at", UTCDateTime, nullable=False),
)

targets = sa.Table(
    "targets",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("url", sa.Text, nullable=False, unique=True),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("interval_s", sa.Integer, nullable=False),
    sa.Column("options", json_type(), nullable=False, server_default=_EMPTY_JSON_OBJECT),
    sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("last_poll_at", UTCDateTime, nullable=True),
    sa.Column("last_success_at", UTCDateTime, nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("consecutive_failures", sa.Integer, nullable=False, server_default=sa.text("0")),
    sa.Column("next_run_at", UTCDateTime, nullable=True),
    # Per-source cursors: last root CID, Arweave cursor/height, seen pins...
    sa.Column("state", json_type(), nullable=False, server_default=_EMPTY_JSON_OBJECT),
    sa.Index(None, "next_run_at"),
)

SCAN_STATUSES = ("running", "ok", "failed", "interrupted")

scans = sa.Table(
    "scans",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    # SET NULL: removing a target keeps its scan history (audit trail);
    # target_url still says what was scanned.
    sa.Column("target_id", sa.Integer, sa.ForeignKey("targets.id", ondelete="SET NULL"), nullable=True),
    sa.Column("target_url", sa.Text, nullable=False),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("finished_at", UTCDateTime, nullable=True),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("root_cid", sa.Text, nullable=True),
    sa.Column("summary", json_type(), nullable=False, server_default=_EMPTY_JSON_OBJECT),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("node", sa.Text, nullable=True),
    sa.CheckConstraint("status IN ('running', 'ok', 'failed', 'interrupted')", name="status"),
    sa.Index(None, "status"),
    sa.Index(None, "started_at"),
    sa.Index(None, "target_id"),
)

items = sa.Table(
    "items",
    metadata,
    # Hex of the content's multihash for IPFS (so CIDv0/v1 of the same bytes
    # are one item), or 'ar:<txid>' for Arweave.
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("cid", sa.Text, nullable=True),
    sa.Column("size", sa.BigInteger, nullable=True),
    sa.Column("media_type", sa.Text, nullable=True),
    sa.Column("status", sa.Text, nullable=False),
    # The report's signals object.
    sa.Column("signals", json_type(), nullable=False, server_default=_EMPTY_JSON_OBJECT),
    # [[frame, quality, pdq_hex, timestamp], ...] kept for vPDQ re-matching.
    sa.Column("video_frames", json_type(nullable=True), nullable=True),
    sa.Column("first_seen_at", UTCDateTime, nullable=False),
    sa.Column("last_seen_at", UTCDateTime, nullable=False),
)

item_locations = sa.Table(
    "item_locations",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("item_key", sa.Text, sa.ForeignKey("items.key"), nullable=False),
    sa.Column("target_id", sa.Integer, sa.ForeignKey("targets.id", ondelete="CASCADE"), nullable=True),
    sa.Column("root_cid", sa.Text, nullable=True),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("gateway", sa.Text, nullable=True),
    sa.Column("first_seen_at", UTCDateTime, nullable=False),
    sa.Column("last_seen_at", UTCDateTime, nullable=False),
    sa.Index(None, "target_id"),
)

# UNIQUE(item_key, target_id, root_cid, path) as a plain constraint would not
# hold: SQL treats NULLs as distinct, so a one-off scan (target_id NULL) or an
# Arweave item (root_cid NULL) could be recorded at the same place again and
# again. PostgreSQL 15 has NULLS NOT DISTINCT, SQLite has nothing like it; a
# unique index over COALESCEd expressions works on both, and ON CONFLICT can
# name it by repeating the same expressions. Target ids start at 1, so 0 is a
# safe stand-in for "no target".
LOCATION_CONFLICT_TARGET = (
    item_locations.c.item_key,
    sa.func.coalesce(item_locations.c.target_id, sa.literal_column("0")),
    sa.func.coalesce(item_locations.c.root_cid, sa.literal_column("''")),
    item_locations.c.path,
)
sa.Index("ux_item_locations_place", *LOCATION_CONFLICT_TARGET, unique=True)

findings = sa.Table(
    "findings",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("item_key", sa.Text, sa.ForeignKey("items.key"), nullable=False),
    sa.Column("list_name", sa.Text, nullable=False),
    sa.Column("entry_id", sa.Text, nullable=False),
    sa.Column("entry_value", sa.Text, nullable=False),
    sa.Column("signal_type", sa.Text, nullable=False),
    sa.Column("distance", sa.Float, nullable=False),
    sa.Column("labels", json_type(), nullable=False, server_default=sa.text("'[]'")),
    sa.Column("query", sa.Text, nullable=True),
    sa.Column("detail", json_type(), nullable=False, server_default=_EMPTY_JSON_OBJECT),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("retroactive", sa.Boolean, nullable=False, server_default=sa.false()),
    # The finding's identity: recording it again (a re-scan, a retroactive
    # pass, two nodes racing) must not create a second row or a second alert.
    sa.UniqueConstraint("item_key", "list_name", "entry_id", "signal_type"),
    sa.Index(None, "created_at"),
)
FINDING_CONFLICT_TARGET = (
    findings.c.item_key,
    findings.c.list_name,
    findings.c.entry_id,
    findings.c.signal_type,
)

list_versions = sa.Table(
    "list_versions",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("content_hash", sa.Text, nullable=False),
    sa.Column("entries", sa.Integer, nullable=False),
    sa.Column("deny_rules", sa.Integer, nullable=False),
    sa.Column("problems", sa.Integer, nullable=False),
    sa.Column("loaded_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("name", "content_hash"),
)

list_state = sa.Table(
    "list_state",
    metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("etag", sa.Text, nullable=True),
    sa.Column("last_modified", sa.Text, nullable=True),
    sa.Column("checkpoint", sa.Text, nullable=True),
    sa.Column("content_hash", sa.Text, nullable=True),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

job_slots = sa.Table(
    "job_slots",
    metadata,
    sa.Column("job", sa.Text, primary_key=True),
    sa.Column("slot", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("node", sa.Text, nullable=False),
    sa.Column("claimed_at", UTCDateTime, nullable=False),
    sa.Index(None, "claimed_at"),
)

# ----------------------------------------------------------- alerts (migration 2)

subscriptions = sa.Table(
    "subscriptions",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("secret", sa.Text, nullable=False),
    # During a rotation both secrets sign, until previous_secret_until.
    sa.Column("previous_secret", sa.Text, nullable=True),
    sa.Column("previous_secret_until", UTCDateTime, nullable=True),
    # Filters; an empty list means "all".
    sa.Column("lists", json_type(), nullable=False, server_default=sa.text("'[]'")),
    sa.Column("labels", json_type(), nullable=False, server_default=sa.text("'[]'")),
    sa.Column("targets", json_type(), nullable=False, server_default=sa.text("'[]'")),
    sa.Column("event_types", json_type(), nullable=False, server_default=sa.text("'[]'")),
    sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("disabled_reason", sa.Text, nullable=True),
    sa.Column("failing_since", UTCDateTime, nullable=True),
    sa.Column("max_in_flight", sa.Integer, nullable=False, server_default=sa.text("4")),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    # Migration 4: the principal that created it through the API; NULL: the CLI.
    sa.Column("owner", sa.Text, nullable=True),
)

events = sa.Table(
    "events",
    metadata,
    # The Standard Webhooks `webhook-id`: stable across retries and replays.
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("type", sa.Text, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("finding_id", BigId, sa.ForeignKey("findings.id"), nullable=True),
    sa.Column("item_key", sa.Text, nullable=True),
    sa.Column("payload", json_type(), nullable=False),
    sa.Index(None, "created_at"),
    sa.Index(None, "finding_id"),
)

deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.Text, sa.ForeignKey("events.id"), nullable=False),
    sa.Column("subscription_id", BigId, sa.ForeignKey("subscriptions.id", ondelete="CASCADE"), nullable=False),
    sa.Column("status", sa.Text, nullable=False),  # pending | succeeded | failed | cancelled
    sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
    sa.Column("next_attempt_at", UTCDateTime, nullable=False),
    sa.Column("last_attempt_at", UTCDateTime, nullable=True),
    sa.Column("last_status", sa.Integer, nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("succeeded_at", UTCDateTime, nullable=True),
    # A worker holds a delivery until lease_until; a crashed worker's lease expires.
    sa.Column("lease_until", UTCDateTime, nullable=True),
    sa.Column("lease_node", sa.Text, nullable=True),
    sa.UniqueConstraint("event_id", "subscription_id"),
    sa.Index(None, "status", "next_attempt_at"),
    sa.Index(None, "subscription_id"),
)

delivery_attempts = sa.Table(
    "delivery_attempts",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("delivery_id", BigId, sa.ForeignKey("deliveries.id", ondelete="CASCADE"), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("status", sa.Integer, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("duration_ms", sa.Integer, nullable=False),
    sa.Index(None, "delivery_id"),
)

reviews = sa.Table(
    "reviews",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("finding_id", BigId, sa.ForeignKey("findings.id"), nullable=False),
    sa.Column("verdict", sa.Text, nullable=False),  # false_positive | confirmed
    sa.Column("note", sa.Text, nullable=True),
    sa.Column("reviewer", sa.Text, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Index(None, "finding_id"),
)

retractions = sa.Table(
    "retractions",
    metadata,
    sa.Column("finding_id", BigId, sa.ForeignKey("findings.id"), primary_key=True, autoincrement=False),
    sa.Column("reason", sa.Text, nullable=False),  # false_positive | entry_deleted
    sa.Column("detail", sa.Text, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

# A false positive is never alerted again for the same item and list entry,
# whatever signal would match it next time.
suppressions = sa.Table(
    "suppressions",
    metadata,
    sa.Column("item_key", sa.Text, primary_key=True),
    sa.Column("list_name", sa.Text, primary_key=True),
    sa.Column("entry_id", sa.Text, primary_key=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

content_status = sa.Table(
    "content_status",
    metadata,
    sa.Column("item_key", sa.Text, sa.ForeignKey("items.key"), primary_key=True),
    sa.Column("state", sa.Text, nullable=False),  # available | unavailable
    sa.Column("first_alert_at", UTCDateTime, nullable=False),
    sa.Column("changed_at", UTCDateTime, nullable=False),
    sa.Column("last_checked_at", UTCDateTime, nullable=False),
    sa.Column("detail", json_type(), nullable=False, server_default=_EMPTY_JSON_OBJECT),
)

# --------------------------------------------------------------- API (migration 4)

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("role", sa.Text, nullable=False),
    # SHA-256 hex of the token; the token itself is shown once and never stored.
    sa.Column("token_hash", sa.Text, nullable=False, unique=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("last_used_at", UTCDateTime, nullable=True),
    sa.Column("revoked_at", UTCDateTime, nullable=True),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("status", sa.Integer, nullable=False),
    sa.Column("principal", sa.Text, nullable=True),
    # No foreign key: the trail outlives the tokens it names.
    sa.Column("token_id", sa.Integer, nullable=True),
    sa.Column("role", sa.Text, nullable=True),
    sa.Column("resource", sa.Text, nullable=True),
    sa.Column("remote", sa.Text, nullable=True),
    sa.Column("detail", json_type(), nullable=False, server_default=_EMPTY_JSON_OBJECT),
    sa.Index(None, "at"),
    sa.Index(None, "principal"),
)

JOB_STATUSES = ("queued", "running", "done", "failed", "cancelled")

scan_jobs = sa.Table(
    "scan_jobs",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("target", sa.Text, nullable=False),
    sa.Column("options", json_type(), nullable=False, server_default=_EMPTY_JSON_OBJECT),
    sa.Column("requested_by", sa.Text, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("started_at", UTCDateTime, nullable=True),
    sa.Column("finished_at", UTCDateTime, nullable=True),
    # A running job is held by `node` until lease_until; a dead node's lease expires.
    sa.Column("node", sa.Text, nullable=True),
    sa.Column("lease_until", UTCDateTime, nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
    sa.Column("progress", json_type(), nullable=False, server_default=_EMPTY_JSON_OBJECT),
    sa.Column("report", json_type(nullable=True), nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("cancel_requested", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.CheckConstraint("status IN ('queued', 'running', 'done', 'failed', 'cancelled')", name="status"),
    sa.Index(None, "status", "created_at"),
)


# --------------------------------------------------------------- console (migration 5)

# A console login: the cookie holds a random session id; the store keeps only its SHA-256.
# Deleting (or revoking) the token ends its sessions: the row is checked on every request.
console_sessions = sa.Table(
    "console_sessions",
    metadata,
    sa.Column("id_hash", sa.Text, primary_key=True),
    sa.Column("token_id", sa.Integer, sa.ForeignKey("api_tokens.id", ondelete="CASCADE"), nullable=False),
    sa.Column("csrf", sa.Text, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("last_seen_at", UTCDateTime, nullable=False),
    sa.Index(None, "token_id"),
    sa.Index(None, "last_seen_at"),
)

# A reviewer's own settings, by principal (the token's name, so a rotated token keeps them).
console_preferences = sa.Table(
    "console_preferences",
    metadata,
    sa.Column("principal", sa.Text, primary_key=True),
    sa.Column("blur_previews", sa.Boolean, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

# A gateway one node caught serving a wrong block, distrusted by every node until `until`.
gateway_marks = sa.Table(
    "gateway_marks",
    metadata,
    sa.Column("url", sa.Text, primary_key=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("cid", sa.Text, nullable=False),
    sa.Column("node", sa.Text, nullable=False),
    sa.Column("marked_at", UTCDateTime, nullable=False),
    sa.Column("until", UTCDateTime, nullable=False),
)
