"""Path parts of denylist rules: exact and prefix matching as in IPIP-383."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote


@dataclass(frozen=True, slots=True)
class BlockedPath:
    """`path` is stored without leading/trailing slashes. With `prefix`, any
    path starting with it matches (`/*` therefore includes the empty path)."""

    path: str = ""
    prefix: bool = False

    @classmethod
    def parse(cls, raw: str) -> BlockedPath:
        # The wildcard is looked at before unescaping: an escaped "%2A" at the
        # end is a literal star in a file name, not a wildcard.
        prefix = False
        if raw.endswith("/*"):
            raw, prefix = raw[:-2], True
        elif raw.endswith("*"):
            raw, prefix = raw[:-1], True
        path = unquote(raw, errors="strict")
        return cls(path.strip("/"), prefix)

    def matches(self, path: str) -> bool:
        path = sanitise(path)
        if self.prefix:
            return path.startswith(self.path)
        return path == self.path


def sanitise(path: str) -> str:
    return path.strip("/")
