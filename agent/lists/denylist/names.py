"""Names and CIDs that need normalising before lookup, and the CIDs that are
never blocked."""

from __future__ import annotations

from multiformats import CID

from agent.ipfs.multihash import IDENTITY_CODE
from agent.lists.denylist.multihash import cid_multihash, decode_cid

# Well-known "empty" CIDs, from the nopfs tester (tester/test.deny, rule15):
# blocking them would break every directory listing and empty file on IPFS,
# so a list that contains them (by mistake or malice) must not take effect.
_WELL_KNOWN_EMPTY = (
    "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn",  # empty UnixFS directory
    "bafyaabakaieac",  # empty UnixFS directory, inlined
    "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku",  # empty block
    "bafkqaaa",  # empty block, inlined
    "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH",  # empty dag-pb block
    "bafyreigbtj4x7ip5legnfznufuopl4sg4knzc2cof6duas4b3q2fy6swua",  # empty dag-cbor
    "baguqeeraiqjw7i2vwntyuekgvulpp2det2kpwt6cd7tx5ayqybqpmhfk76fa",  # empty dag-json
)
NEVER_BLOCKED_MULTIHASHES = frozenset(cid_multihash(decode_cid(c)) for c in _WELL_KNOWN_EMPTY)


def is_never_blocked(cid: CID) -> bool:
    """Well-known empty CIDs and identity CIDs. An identity CID carries its
    bytes inside the CID itself: nothing is retrieved, so there is nothing to
    block, and inlined empty blocks/directories use it."""
    if cid.hashfun.code == IDENTITY_CODE:
        return True
    return cid_multihash(cid) in NEVER_BLOCKED_MULTIHASHES


def normalise_dns_name(name: str) -> str:
    """Lower-case DNSLink name. A name without dots but with dashes is the
    subdomain-gateway inlined form (`my--site-example` for `my-site.example`:
    `-` stands for `.` and `--` for `-`), which must hit the same rules."""
    name = name.lower().rstrip(".")
    if "." not in name and "-" in name:
        placeholder = "\x00"
        name = name.replace("--", placeholder).replace("-", ".").replace(placeholder, "-")
    return name
