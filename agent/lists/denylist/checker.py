"""Answer "is this CID / content path / IPNS name blocked?" from denylist rules.

Order of checks and last-rule-wins follow nopfs (the IPIP-383 reference):
subpath rules, then rules on the CID's multihash or IPNS name, then double
hashes. Within one kind, rules are tried from the last line back, so a later
`!` exception overrides an earlier block and vice versa. Several files are
combined in the order given (alphabetical for a directory), so later files
override earlier ones, as the spec asks."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from multiformats import CID

from agent.ipfs.multihash import SHA2_256
from agent.lists.denylist.multihash import (
    b58_multihash,
    cid_multihash,
    cid_v1_base32,
    decode_cid,
    double_hash,
    name_multihash,
)
from agent.lists.denylist.names import is_never_blocked, normalise_dns_name
from agent.lists.denylist.paths import sanitise
from agent.lists.denylist.rules import DenyDecision, DenyRule, RuleKind


def _last_match(rules: Sequence[DenyRule], path: str, matched: str) -> DenyDecision | None:
    for rule in reversed(rules):
        if rule.path.matches(path):
            return DenyDecision(blocked=not rule.allow, rule=rule, matched=matched)
    return None


def _multihash_key(rule: DenyRule) -> bytes:
    """IPFS and double-hash rules are keyed by multihash bytes (the parser builds them so).
    A str key is a programming error, raised here even under `python -O`, unlike an assert."""
    if not isinstance(rule.key, bytes):
        raise TypeError(f"{rule.kind} rule {rule.raw!r} has a {type(rule.key).__name__} key, not multihash bytes")
    return rule.key


@dataclass(frozen=True)
class Denylist:
    """Immutable after construction: build a new one to apply changes."""

    rules: tuple[DenyRule, ...] = ()
    _ipfs: dict[bytes, list[DenyRule]] = field(init=False, repr=False, compare=False)
    _ipns: dict[bytes | str, list[DenyRule]] = field(init=False, repr=False, compare=False)
    _double: dict[bytes, list[DenyRule]] = field(init=False, repr=False, compare=False)
    _double_codes: tuple[int, ...] = field(init=False, repr=False, compare=False)
    _paths: tuple[DenyRule, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        ipfs: dict[bytes, list[DenyRule]] = {}
        ipns: dict[bytes | str, list[DenyRule]] = {}
        double: dict[bytes, list[DenyRule]] = {}
        paths: list[DenyRule] = []
        codes: set[int] = set()
        for rule in self.rules:
            if rule.kind is RuleKind.IPFS:
                ipfs.setdefault(_multihash_key(rule), []).append(rule)
            elif rule.kind is RuleKind.IPNS:
                ipns.setdefault(rule.key, []).append(rule)
            elif rule.kind is RuleKind.DOUBLE_HASH:
                key = _multihash_key(rule)
                double.setdefault(key, []).append(rule)
                codes.add(key[0])  # sha2-256 (0x12) and blake3 (0x1e) are 1-byte varints
            else:
                paths.append(rule)
        object.__setattr__(self, "_ipfs", ipfs)
        object.__setattr__(self, "_ipns", ipns)
        object.__setattr__(self, "_double", double)
        object.__setattr__(self, "_double_codes", tuple(sorted(codes)))
        object.__setattr__(self, "_paths", tuple(paths))

    @classmethod
    def combine(cls, denylists: Iterable[Denylist]) -> Denylist:
        return cls(tuple(rule for dl in denylists for rule in dl.rules))

    def __len__(self) -> int:
        return len(self.rules)

    # -- double hashes -------------------------------------------------------

    def _double_lookup(self, candidates: Iterable[str]) -> DenyDecision | None:
        for text in candidates:
            data = text.encode("utf-8")
            for code in self._double_codes:
                rules = self._double.get(double_hash(code, data))
                if rules:
                    return _last_match(rules, "", f"double-hash of {text}")
        return None

    def _double_sha256_lookup(self, text: str) -> DenyDecision | None:
        if SHA2_256 not in self._double_codes:
            return None
        rules = self._double.get(double_hash(SHA2_256, text.encode("utf-8")))
        return _last_match(rules, "", f"double-hash of {text}") if rules else None

    # -- public checks -------------------------------------------------------

    def check_cid(self, cid_str: str) -> DenyDecision | None:
        """The decision for the block itself, or None if no rule applies.
        Raises ValueError for a string that is not a CID."""
        cid = decode_cid(cid_str)
        if is_never_blocked(cid):
            return None
        mh = cid_multihash(cid)
        rules = self._ipfs.get(mh)
        if rules and (decision := _last_match(rules, "", f"/ipfs/{cid_str}")):
            return decision
        if not self._double_codes:
            return None
        # Legacy badbits anchors are sha256 of "<CIDv1 base32>/"; modern ones
        # hash the base58 multihash with each function the list uses.
        legacy = self._double_sha256_lookup(cid_v1_base32(cid) + "/")
        return legacy or self._double_lookup([b58_multihash(mh)])

    def check_path(self, cid_str: str, path: str = "") -> DenyDecision | None:
        """The decision for `/ipfs/<cid>/<path>`, or None. Raises ValueError
        for a string that is not a CID."""
        cid = decode_cid(cid_str)
        if is_never_blocked(cid):
            return None
        sub = sanitise(path)
        if sub and (decision := self._check_subpath(sub)):
            return decision
        mh = cid_multihash(cid)
        rules = self._ipfs.get(mh)
        shown = f"/ipfs/{cid_str}" + (f"/{sub}" if sub else "")
        if rules and (decision := _last_match(rules, sub, shown)):
            return decision
        if not self._double_codes:
            return None
        legacy = self._double_sha256_lookup(f"{cid_v1_base32(cid)}/{sub}")
        modern = b58_multihash(mh) + (f"/{sub}" if sub else "")
        return legacy or self._double_lookup([modern])

    def check_ipns(self, name: str, path: str = "") -> DenyDecision | None:
        """The decision for `/ipns/<name>/<path>` before resolving it. `name` is
        a key (k51..., bafzaa..., 12D3Koo...) or a DNSLink domain; any other
        string is looked up as a DNS name. Raises only ValueError (text that
        is not valid Unicode)."""
        sub = sanitise(path)
        if sub and (decision := self._check_subpath(sub)):
            return decision
        mh = name_multihash(name)
        key: bytes | str = mh if mh is not None else normalise_dns_name(name)
        shown = f"/ipns/{name}" + (f"/{sub}" if sub else "")
        rules = self._ipns.get(key)
        if rules and (decision := _last_match(rules, sub, shown)):
            return decision
        if not self._double_codes:
            return None
        suffix = f"/{sub}" if sub else ""
        if isinstance(key, bytes):
            # Legacy: "<CIDv1 libp2p-key base32>/<path>"; modern: the base58
            # multihash of the key plus the path.
            legacy_anchor = _ipns_v1_base32(name)
            legacy = self._double_sha256_lookup(f"{legacy_anchor}/{sub}") if legacy_anchor else None
            return legacy or self._double_lookup([b58_multihash(key) + suffix])
        legacy = self._double_sha256_lookup(f"{key}/{sub}")
        return legacy or self._double_lookup([f"/ipns/{key}{suffix}"])

    def check(self, content_path: str) -> DenyDecision | None:
        """`/ipfs/<cid>[/path]`, `/ipld/...` or `/ipns/<name>[/path]`.
        Raises ValueError for anything else."""
        parts = content_path.lstrip("/").split("/", 2)
        if len(parts) < 2 or not parts[1]:
            raise ValueError(f"not a content path: {content_path[:120]!r}")
        namespace, key = parts[0], parts[1]
        sub = parts[2] if len(parts) > 2 else ""
        if namespace in ("ipfs", "ipld"):
            return self.check_path(key, sub)
        if namespace == "ipns":
            return self.check_ipns(key, sub)
        raise ValueError(f"unknown namespace {namespace!r}")

    def _check_subpath(self, sub: str) -> DenyDecision | None:
        return _last_match(self._paths, sub, sub) if self._paths else None


def _ipns_v1_base32(name: str) -> str | None:
    """CIDv1 base32 of a CID-form IPNS name, as legacy anchors spell it.
    base58 peer ids are wrapped as libp2p-key (0x72) CIDs."""
    try:
        return cid_v1_base32(decode_cid(name))
    except ValueError:
        pass
    mh = name_multihash(name)
    if mh is None:
        return None
    try:
        return str(CID("base32", 1, "libp2p-key", mh).encode("base32"))
    except (KeyError, ValueError):
        # A base58 multihash whose hash function multiformats does not know
        # (its errors subclass KeyError/ValueError): no CID form, so no
        # legacy anchor; the modern double-hash lookup still applies.
        return None
