"""A tiny real DNS server on 127.0.0.1 (UDP) serving TXT records, for tests.

Queries are parsed and answers built with dnspython's dns.message, so the
client under test speaks real DNS to it. `records` maps a name (no trailing
dot, any case) to its TXT records; each record is a string or a list of
character-strings (one TXT record split in parts). A name absent from
`records` is NXDOMAIN; a name mapped to [] exists with no TXT (NOERROR, empty
answer); names in `servfail` answer SERVFAIL; names in `silent` are never
answered (to test timeouts). Records may be changed between queries; every
query is counted in `queries` (by lower-cased name) and logged in `log`."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from typing import cast

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TXT
import dns.rrset

TxtRecord = str | list[str]


def _key(name: str) -> str:
    return name.rstrip(".").lower()


@dataclass
class TestDnsServer:
    __test__ = False  # not a pytest test class

    records: dict[str, list[TxtRecord]] = field(default_factory=dict)
    servfail: set[str] = field(default_factory=set)
    silent: set[str] = field(default_factory=set)
    ttl: int = 60
    queries: Counter[str] = field(default_factory=Counter)
    log: list[tuple[str, str]] = field(default_factory=list)  # (name, type)
    host: str = "127.0.0.1"
    port: int = 0
    _transport: asyncio.DatagramTransport | None = None

    def set(self, name: str, *txt: TxtRecord) -> None:
        """Replace the TXT records of `name` (no arguments: the name exists with no TXT)."""
        self.records[_key(name)] = list(txt)

    def remove(self, name: str) -> None:
        self.records.pop(_key(name), None)

    async def start(self) -> TestDnsServer:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: _Protocol(self), local_addr=(self.host, 0))
        self._transport = transport
        self.port = transport.get_extra_info("sockname")[1]
        return self

    async def stop(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    async def __aenter__(self) -> TestDnsServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def answer(self, wire: bytes) -> bytes | None:
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return None  # not DNS: a real server would drop it too
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        if not query.question:
            response.set_rcode(dns.rcode.FORMERR)
            return response.to_wire()
        question = query.question[0]
        name = _key(question.name.to_text())
        self.queries[name] += 1
        self.log.append((name, dns.rdatatype.to_text(question.rdtype)))
        if name in self.silent:
            return None
        if name in self.servfail:
            response.set_rcode(dns.rcode.SERVFAIL)
            return response.to_wire()
        if name not in self.records:
            response.set_rcode(dns.rcode.NXDOMAIN)
            return response.to_wire()
        if question.rdtype == dns.rdatatype.TXT and self.records[name]:
            rrset = dns.rrset.RRset(question.name, dns.rdataclass.IN, dns.rdatatype.TXT)
            rrset.update_ttl(self.ttl)
            for txt in self.records[name]:
                parts = [txt] if isinstance(txt, str) else txt
                rrset.add(dns.rdtypes.ANY.TXT.TXT(dns.rdataclass.IN, dns.rdatatype.TXT, [p.encode() for p in parts]))
            response.answer.append(rrset)
        return response.to_wire()


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, server: TestDnsServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The selector loop's datagram transport does not subclass DatagramTransport at run time.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        reply = self.server.answer(data)
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)
