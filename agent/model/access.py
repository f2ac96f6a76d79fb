"""Who may call the API: roles, tokens (never their secret) and the audit trail."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class Role(StrEnum):
    """What a token may do (the API's route table says which role reaches which route)."""

    ADMIN = "admin"  # everything, tokens and the audit log included
    INVESTIGATOR = "investigator"  # scans, findings and their reviews, targets (add), lists, match, hash
    PLATFORM = "platform"  # its own webhooks, match and hash, the findings delivered to it
    VIEWER = "viewer"  # reads scans, findings, targets and lists


@dataclass(frozen=True, slots=True)
class TokenRow:
    """A stored API token: its name (the principal), role and dates. The secret is never
    stored; the store keeps only its SHA-256 and never hands that out in a row."""

    id: int
    name: str
    role: Role
    created_at: datetime
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller of one request, as authenticated from its token."""

    token_id: int
    name: str
    role: Role


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One mutating call: who (principal, token), what (action, resource, outcome), when, from where."""

    action: str  # "POST /v1/webhooks", "DELETE /v1/targets/{id}", "tokens add" (the CLI)
    status: int  # the HTTP status answered (the CLI records 0)
    principal: str | None = None
    token_id: int | None = None
    role: Role | None = None
    resource: str | None = None  # "webhook:3", "scan:12", ...
    remote: str | None = None  # the caller's address
    detail: dict[str, Any] = field(default_factory=dict)  # JSON edge: what the call named, never a secret
    at: datetime | None = None  # None: when it is recorded


@dataclass(frozen=True, slots=True)
class AuditRow:
    id: int
    at: datetime
    action: str
    status: int
    principal: str | None
    token_id: int | None
    role: Role | None
    resource: str | None
    remote: str | None
    detail: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ConsoleSession:
    """A console login as the store keeps it: whose token, the form token every POST must
    carry, when it began and when it was last used (the idle limit counts from there)."""

    id_hash: str
    principal: Principal
    csrf: str
    created_at: datetime
    last_seen_at: datetime


@dataclass(frozen=True, slots=True)
class Preferences:
    """A reviewer's own console settings."""

    blur_previews: bool
