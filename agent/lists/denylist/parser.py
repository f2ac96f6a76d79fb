"""Parse IPIP-383 `.deny` files into rules.

Spec: https://specs.ipfs.tech/ipips/ipip-0383/ (compact denylist format);
behaviour follows ipfs-shipyard/nopfs, the reference implementation. A bad
rule line is reported with its line number and skipped; it never aborts."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from types import MappingProxyType

from agent.ipfs.multihash import SHA2_256, encode_multihash, split_multihash
from agent.lists.denylist.multihash import (
    SUPPORTED_DOUBLE_HASH_CODES,
    cid_multihash,
    decode_b58_multihash,
    decode_cid,
    name_multihash,
)
from agent.lists.denylist.names import normalise_dns_name
from agent.lists.denylist.paths import BlockedPath
from agent.lists.denylist.rules import DenylistHeader, DenyRule, RuleKind
from agent.lists.limits import ParseLimits, ProblemLog, decode_text, entry_limit_problem, numbered_lines
from agent.lists.model import ParseProblem

MAX_HEADER_BYTES = 1024 * 1024  # per the spec
# The spec allows 2 MiB lines; real rules are < 200 bytes, so the default is
# far lower (callers can raise it) to bound work per line.
DENYLIST_LIMITS = ParseLimits(max_line_length=64 * 1024)
CURRENT_VERSION = 1


@dataclass(frozen=True, slots=True)
class DenylistParse:
    header: DenylistHeader
    rules: tuple[DenyRule, ...]
    problems: tuple[ParseProblem, ...]


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def _parse_header(lines: list[str], source: str, problems: ProblemLog) -> DenylistHeader | None:
    """The YAML header, read as the flat `key: value` map (plus a `hints:` map
    of indented `key: value` lines) that denylists use. Returns None when the
    header is unusable, which per the spec means: load no rules."""
    fields: dict[str, str] = {}
    hints: dict[str, str] = {}
    in_hints = False
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        indented = line[0] in " \t"
        key, sep, value = line.strip().partition(":")
        if not sep:
            problems.append(ParseProblem(source, number, "header line is not `key: value`"))
            return None
        if indented and in_hints:
            hints[key.strip()] = _unquote(value)
            continue
        in_hints = key.strip() == "hints" and not value.strip()
        if not in_hints:
            fields[key.strip()] = _unquote(value)
    version = 1
    if "version" in fields:
        try:
            version = int(fields["version"])
        except ValueError:
            problems.append(ParseProblem(source, None, f"bad header version {fields['version']!r}"))
            return None
    if version != CURRENT_VERSION:
        problems.append(ParseProblem(source, None, f"unsupported denylist version {version}"))
        return None
    return DenylistHeader(
        version=version,
        name=fields.get("name", ""),
        description=fields.get("description", ""),
        author=fields.get("author", ""),
        hints=MappingProxyType(hints),
    )


def _split_header(text: str) -> tuple[list[str], int]:
    """(header lines, number of lines before the first rule line). No `---`
    within the first MiB means there is no header."""
    end = text.find("\n---\n", 0, MAX_HEADER_BYTES)
    if text.startswith("---\n"):
        return [], 1
    if end < 0:
        return [], 0
    header = text[:end].split("\n")
    return header, len(header) + 1


def _double_hash_keys(value: str) -> list[bytes]:
    """Keys for a `//` rule. A string that is both a base58 multihash and a
    64-char hex string yields both keys, as the spec requires."""
    keys: list[bytes] = []
    try:
        mh = decode_b58_multihash(value)
        code, _ = split_multihash(mh)
        if code in SUPPORTED_DOUBLE_HASH_CODES:
            keys.append(mh)
    except ValueError:
        pass
    if len(value) == 64:
        with contextlib.suppress(ValueError):  # not hex: the base58 reading alone decides
            keys.append(encode_multihash(SHA2_256, bytes.fromhex(value)))
    if not keys:
        raise ValueError("double-hash is neither a base58 sha2-256/blake3 multihash nor a hex sha256")
    return keys


def _parse_rule(rule: str, allow: bool, hints: dict[str, str], raw: str, source: str, line: int) -> list[DenyRule]:
    def make(kind: RuleKind, key: bytes | str, path: BlockedPath) -> DenyRule:
        return DenyRule(kind, key, path, allow, raw, source, line, MappingProxyType(hints))

    if rule.startswith("//"):
        return [make(RuleKind.DOUBLE_HASH, k, BlockedPath()) for k in _double_hash_keys(rule[2:])]
    for prefix in ("/ipfs/", "/ipld/"):
        if rule.startswith(prefix):
            cid_text, _, sub = rule[len(prefix) :].partition("/")
            return [make(RuleKind.IPFS, cid_multihash(decode_cid(cid_text)), BlockedPath.parse(sub))]
    if rule.startswith("/ipns/"):
        name, _, sub = rule[len("/ipns/") :].partition("/")
        if not name:
            raise ValueError("empty IPNS name")
        key: bytes | str | None = name_multihash(name)
        if key is None:
            key = normalise_dns_name(name)
        return [make(RuleKind.IPNS, key, BlockedPath.parse(sub))]
    if rule.startswith("/") and len(rule) > 1:
        return [make(RuleKind.PATH, "", BlockedPath.parse(rule))]
    raise ValueError(f"not a denylist rule: {rule[:80]!r}")


def parse_denylist(data: bytes | str, *, source: str, limits: ParseLimits = DENYLIST_LIMITS) -> DenylistParse:
    """Raises TooLarge if the input exceeds limits.max_bytes."""
    text = decode_text(data, source, limits).replace("\r\n", "\n")
    problems = ProblemLog()
    header_lines, skip = _split_header(text)
    header = _parse_header(header_lines, source, problems) if header_lines else DenylistHeader()
    if header is None:
        return DenylistParse(DenylistHeader(), (), problems.result())
    parts = text.split("\n", skip)
    body = (parts[skip] if len(parts) > skip else "") if skip else text
    rules: list[DenyRule] = []
    for number, line in numbered_lines(body, source, limits, problems, first_line=skip + 1):
        if not line.strip() or line.startswith("#"):
            continue
        if len(rules) >= limits.max_entries:
            problems.append(entry_limit_problem(source, number, limits))
            break
        fields = line.split()
        rule, allow = fields[0], False
        if rule.startswith("!"):
            rule, allow = rule[1:], True
        # Header hints apply to every rule; a rule's own hints win.
        hints = dict(header.hints)
        for item in fields[1:]:
            key, sep, value = item.partition("=")
            if not sep:
                key, sep, value = item.partition(":")
            if sep:
                hints[key] = value
        try:
            rules.extend(_parse_rule(rule, allow, hints, line.strip(), source, number))
        except (ValueError, UnicodeDecodeError) as exc:
            problems.append(ParseProblem(source, number, str(exc)))
    return DenylistParse(header, tuple(rules), problems.result())
