"""What a service refuses, in words a person can act on.

The CLI prints `error: <message>` and exits 2 for every one of them; an HTTP API maps
NotFound to 404 and Invalid to 400/422. No service raises click or HTTP errors itself."""

from __future__ import annotations


class ServiceError(Exception):
    """A request the core cannot carry out; str(exc) is the one line to show."""

    @property
    def message(self) -> str:
        return str(self)


class NotFound(ServiceError):
    """The target, finding or subscription named does not exist."""


class Invalid(ServiceError):
    """The request is malformed or would make something that can never work.

    `field` names the part of the request at fault ("url", "events", "lists") when one is,
    so the API can name it in the problem's `errors`; the CLI shows the message alone."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field
