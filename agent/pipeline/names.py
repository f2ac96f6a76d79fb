"""One-off scans of names: an IPNS name or DNSLink domain resolved to the content it names now.

The same resolvers as the daemon's watch targets (agent.sources.kinds.ipns and .dnslink): an
IPNS record is believed only once verified against the name's key, whichever gateway served it,
and the newest valid record wins. The scan's own gateways serve the records (for an API scan,
its guarded ones), and every DNS question, including a domain met inside an IPNS chain, goes to
the configured [dnslink] nameservers: a caller never picks who answers."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import aiohttp

from agent.config import DnslinkSettings
from agent.ipfs.cid import CID, cid_text
from agent.model.target import Target, TargetError, TargetKind
from agent.sources.base import join_paths
from agent.sources.dnslink import resolve_dnslink
from agent.sources.ipns import resolve_ipns

NAMED_KINDS = frozenset({TargetKind.IPNS, TargetKind.DNSLINK})


async def resolve_named(
    target: Target, gateways: Sequence[str], http: aiohttp.ClientSession, dnslink: DnslinkSettings
) -> Target:
    """The IPFS content `target` (kind IPNS or DNSLINK) points at, its text kept as written.

    Raises what the resolvers raise (IpnsError, DnslinkError: IpfsError subclasses naming the
    reason, such as a record that fails verification or NXDOMAIN) or TargetError."""
    lookup = partial(
        resolve_dnslink, nameservers=dnslink.nameservers or None, port=dnslink.port, timeout=dnslink.timeout_s
    )
    root: CID | None
    if target.kind == TargetKind.IPNS:
        resolution = await resolve_ipns(target.name, gateways, http, dnslink=lookup)
        root, path = resolution.cid, resolution.path
    elif target.kind == TargetKind.DNSLINK:
        link = await lookup(target.name)
        root, path = link.cid, link.path
        if root is None and link.ipns_name:
            resolution = await resolve_ipns(link.ipns_name, gateways, http, dnslink=lookup)
            root, path = resolution.cid, join_paths(resolution.path, path)
        if root is None:
            raise TargetError(f"{target.name}: dnslink {link.value!r} names no content")
    else:
        raise TargetError(f"{target.text}: not an IPNS name or DNSLink domain")
    parts = tuple(p for p in join_paths(path, target.path_text).split("/") if p)
    url = f"ipfs://{cid_text(root)}" + (f"/{'/'.join(parts)}" if parts else "")
    return Target(TargetKind.IPFS, target.text, url=url, cid=root, path=parts, gateway_hint=target.gateway_hint)
