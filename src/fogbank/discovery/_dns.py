"""The DNS server: A, AAAA, SRV and CNAME answers for the registry's DNS namespaces.

One UDP socket and one TCP listener on the same port (TCP messages carry RFC 1035's two-byte
length prefix). Answers are built from the registry on every query, so a health change or a
registration is visible to the next query; resolvers cache per the service's TTLs.

The answering rules follow Cloud Map's documentation (docs.aws.amazon.com/cloud-map, "service
DNS configuration", and the API reference's `DnsRecord`):

- `<service>.<namespace>` answers the record types the service declares, from healthy
  instances (UNKNOWN health, i.e. no health check, counts as healthy). MULTIVALUE gives up to
  eight instances, a random eight when there are more; WEIGHTED gives one at random.
- When no instance is healthy Route 53 answers as if all were: the Cloud Map guide says so for
  WEIGHTED ("responds to DNS queries as if all the instances were healthy"), and Route 53's
  `ResourceRecordSet.MultiValueAnswer` reference says so for multivalue records ("When all records
  are unhealthy, Route 53 responds to DNS queries with up to eight unhealthy records").
- SRV values are `1 1 <AWS_INSTANCE_PORT> <instance-id>.<service>.<namespace>`; Cloud Map creates
  A/AAAA records under that target name, which we answer too and add to SRV answers' additional
  section.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import random
import socket
import struct
from collections.abc import Sequence
from typing import cast

from dnslib import AAAA, CLASS, CNAME, EDNS0, QTYPE, RCODE, RR, SOA, SRV, A, DNSQuestion, DNSRecord
from dnslib.dns import OPCODE

from fogbank._errors import ConfigError
from fogbank.discovery._records import CNAME as CNAME_ATTR
from fogbank.discovery._records import (
    IPV4,
    IPV6,
    PORT,
    CloudMapError,
    Instance,
    Namespace,
    Service,
)
from fogbank.discovery._registry import Registry
from fogbank.model import NamespaceType

log = logging.getLogger("fogbank.discovery.dns")

MULTIVALUE_LIMIT = 8
# Without EDNS a UDP answer is capped at 512 bytes (RFC 1035); with EDNS we accept the client's
# size up to 1232, the size the 2020 DNS flag day settled on to avoid IP fragmentation.
UDP_PLAIN_LIMIT = 512
UDP_EDNS_LIMIT = 1232
# Negative answers (NXDOMAIN, no data) are cached by resolvers for the SOA's TTL and minimum:
# the namespace's SOA TTL (`Properties.DnsProperties.SOA.TTL`), else Cloud Map's default.
DEFAULT_SOA_TTL = 15
# A TCP client that sends nothing for this long is disconnected.
TCP_IDLE_S = 30.0
_DNS_TYPES = (NamespaceType.DNS_PRIVATE, NamespaceType.DNS_PUBLIC)
_HEADER = struct.Struct("!HHHHHH")


class DnsServer:
    """Answers DNS queries for `service.namespace` names from a `Registry`, over UDP and TCP."""

    def __init__(self, registry: Registry, host: str = "127.0.0.1", port: int = 8600) -> None:
        self.registry = registry
        self.host = host
        self.port = port
        """The bound port once started (the one asked for, or the one chosen for port 0)."""
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._clients: set[asyncio.StreamWriter] = set()
        # The registry's namespaces when last looked at and the DNS ones among them, longest
        # name first, recomputed only when a namespace changed (records are replaced, not edited).
        self._seen: Sequence[Namespace] = ()
        self._zones: list[tuple[str, Namespace]] = []

    # -- life cycle -----------------------------------------------------------------------------
    async def start(self) -> None:
        udp_sock, tcp_sock = _bind_pair(self.host, self.port)
        self.port = tcp_sock.getsockname()[1]
        loop = asyncio.get_running_loop()
        try:
            self._udp, _ = await loop.create_datagram_endpoint(
                lambda: _UdpProtocol(self), sock=udp_sock
            )
            self._tcp = await asyncio.start_server(self._serve_tcp, sock=tcp_sock)
        except BaseException:
            udp_sock.close()
            tcp_sock.close()
            await self.stop()
            raise

    async def stop(self) -> None:
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        if self._tcp is not None:
            self._tcp.close()
            for writer in list(self._clients):
                writer.close()
            await self._tcp.wait_closed()
            self._tcp = None

    # -- transports -----------------------------------------------------------------------------
    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._clients.add(writer)
        try:
            while True:
                prefix = await asyncio.wait_for(reader.readexactly(2), TCP_IDLE_S)
                (size,) = struct.unpack("!H", prefix)
                query = await asyncio.wait_for(reader.readexactly(size), TCP_IDLE_S)
                answer = self.answer(query, limit=None)
                if answer is None:
                    break
                writer.write(struct.pack("!H", len(answer)) + answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
            pass
        finally:
            self._clients.discard(writer)
            writer.close()

    # -- answers --------------------------------------------------------------------------------
    def answer(self, packet: bytes, *, limit: int | None = UDP_PLAIN_LIMIT) -> bytes | None:
        """The reply to one DNS message, or None when it deserves none. `limit` is the UDP
        size cap before EDNS (None on TCP, where nothing is truncated)."""
        if len(packet) < _HEADER.size:
            return None
        ident, flags = _HEADER.unpack_from(packet)[:2]
        if flags & 0x8000:
            # A response sent to us: answering it could start a loop between two servers.
            return None
        try:
            query = DNSRecord.parse(packet)
        except Exception:  # hostile bytes may raise anything from the parser
            return _bare_reply(ident, flags, RCODE.FORMERR)
        try:
            reply, size = self._reply(query)
            data: bytes = reply.pack()
        except Exception:
            log.exception("DNS query failed: %s", query.questions)
            return _bare_reply(ident, flags, RCODE.SERVFAIL)
        if limit is not None and len(data) > max(limit, size):
            reply.rr, reply.auth = [], []
            reply.ar = [r for r in reply.ar if r.rtype == QTYPE.OPT]
            reply.header.tc = 1
            data = reply.pack()
        return data

    def _reply(self, query: DNSRecord) -> tuple[DNSRecord, int]:
        """The reply and the UDP size the client accepts (0 without EDNS)."""
        reply = query.reply(ra=0)
        size = 0
        for extra in query.ar:
            if extra.rtype == QTYPE.OPT:
                size = min(max(extra.rclass, UDP_PLAIN_LIMIT), UDP_EDNS_LIMIT)
                reply.add_ar(EDNS0(udp_len=UDP_EDNS_LIMIT))
        if query.header.opcode != OPCODE.QUERY:
            reply.header.rcode = RCODE.NOTIMP
        elif len(query.questions) != 1:
            reply.header.rcode = RCODE.FORMERR
        else:
            self._resolve(query.questions[0], reply)
        return reply, size

    def _resolve(self, question: DNSQuestion, reply: DNSRecord) -> None:
        qname = str(question.qname).rstrip(".").lower()
        qtype: int = question.qtype
        zone = self._zone_of(qname)
        if zone is None or question.qclass != CLASS.IN:
            # Not ours: fogbank is authoritative for its namespaces and recurses for nobody.
            reply.header.aa = 0
            reply.header.rcode = RCODE.REFUSED
            return
        name, namespace = zone
        if qname == name:
            if qtype == QTYPE.SOA:
                reply.add_answer(self._soa(name, namespace))
            else:
                reply.add_auth(self._soa(name, namespace))
            return
        rest = qname[: -len(name) - 1]
        service = self.registry.find_service(namespace.name, rest)
        if service is not None and service.dns_records:
            self._answer_service(qname, qtype, service, reply)
        else:
            instance_id, _, service_name = rest.partition(".")
            service = self.registry.find_service(namespace.name, service_name)
            instance = _instance(self.registry, service, instance_id) if service else None
            if service is None or instance is None:
                reply.header.rcode = RCODE.NXDOMAIN
            else:
                reply.add_answer(*_address_records(qname, qtype, service, instance))
        if not reply.rr:
            reply.add_auth(self._soa(name, namespace))

    def _zone_of(self, qname: str) -> tuple[str, Namespace] | None:
        """The DNS namespace `qname` falls in (the longest matching name), or None."""
        namespaces = self.registry.namespaces()
        if len(namespaces) != len(self._seen) or any(
            new is not old for new, old in zip(namespaces, self._seen, strict=True)
        ):
            zones = [
                (ns.name.rstrip(".").lower(), ns) for ns in namespaces if ns.type in _DNS_TYPES
            ]
            self._zones = sorted(zones, key=lambda zone: -len(zone[0]))
            self._seen = namespaces
        for name, namespace in self._zones:
            if qname == name or qname.endswith("." + name):
                return name, namespace
        return None

    def _soa(self, zone: str, namespace: Namespace) -> RR:
        ttl = self.registry.soa_ttl(namespace.id) or DEFAULT_SOA_TTL
        # Route 53's SOA timers (refresh 7200, retry 900, expire 1209600); the minimum, which
        # caps negative caching, is the SOA's TTL as in Cloud Map's hosted zones.
        soa = SOA(
            mname=f"ns.{zone}", rname=f"hostmaster.{zone}", times=(1, 7200, 900, 1209600, ttl)
        )
        return RR(zone, QTYPE.SOA, rdata=soa, ttl=ttl)

    def _answer_service(self, qname: str, qtype: int, service: Service, reply: DNSRecord) -> None:
        ttls = {record.type.upper(): record.ttl for record in service.dns_records}
        if "CNAME" in ttls:
            # A CNAME owns its name: it answers every type (Cloud Map requires WEIGHTED).
            chosen = _choose(self.registry, service, CNAME_ATTR)
            reply.add_answer(
                *(
                    RR(qname, QTYPE.CNAME, rdata=CNAME(i.attributes[CNAME_ATTR]), ttl=ttls["CNAME"])
                    for i in chosen
                )
            )
            return
        qtype_name = QTYPE.get(qtype)
        if qtype_name not in ttls or qtype_name not in ("A", "AAAA", "SRV"):
            return
        if qtype_name != "SRV":
            attr = IPV4 if qtype_name == "A" else IPV6
            rdata = A if qtype_name == "A" else AAAA
            chosen = _choose(self.registry, service, attr)
            reply.add_answer(
                *(
                    RR(qname, qtype, rdata=rdata(i.attributes[attr]), ttl=ttls[qtype_name])
                    for i in chosen
                )
            )
            return
        for instance in _choose(self.registry, service, PORT):
            target = f"{instance.id}.{qname}"
            srv = SRV(priority=1, weight=1, port=int(instance.attributes[PORT]), target=target)
            reply.add_answer(RR(qname, QTYPE.SRV, rdata=srv, ttl=ttls["SRV"]))
            reply.add_ar(*_address_records(target, QTYPE.ANY, service, instance))


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: DnsServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        answer = self.server.answer(data)
        if answer is not None and self.transport is not None:
            self.transport.sendto(answer, addr)

    def error_received(self, exc: Exception) -> None:
        # An ICMP error for an earlier reply (the client went away): nothing to do.
        pass


def _choose(registry: Registry, service: Service, attr: str) -> list[Instance]:
    """The instances an answer names: healthy ones carrying `attr` (all of them when none is
    healthy, as Route 53 does), up to eight or one at random per the routing policy."""
    count = 1 if service.routing_policy.upper() == "WEIGHTED" else MULTIVALUE_LIMIT
    for pool in (registry.healthy(service.id), registry.instances(service.id)):
        if len(pool) > count:
            # The registry makes instances carry what their service's records need, so a
            # sample of the pool almost always serves: no pass over a thousand instances.
            picked = [i for i in random.sample(pool, count) if _carries(i, attr)]
            if len(picked) == count:
                return picked
        usable = [i for i in pool if _carries(i, attr)]
        if usable:
            return random.sample(usable, min(count, len(usable)))
    return []


def _carries(instance: Instance, attr: str) -> bool:
    value = instance.attributes.get(attr)
    return value is not None and value != "" and (attr != PORT or value.isdigit())


def _instance(registry: Registry, service: Service, instance_id: str) -> Instance | None:
    """The instance a (lower-cased) DNS label names; instance ids are case-sensitive."""
    with contextlib.suppress(CloudMapError):
        return registry.get_instance(service.id, instance_id)
    for instance in registry.instances(service.id):
        if instance.id.lower() == instance_id:
            return instance
    return None


def _address_records(name: str, qtype: int, service: Service, instance: Instance) -> list[RR]:
    """The A/AAAA records Cloud Map creates under an instance's SRV target name (of `qtype`, or
    both for ANY), with the TTL of the service's A/AAAA record, else of its SRV record."""
    ttls = {record.type.upper(): record.ttl for record in service.dns_records}
    records = []
    for rtype, attr, rdata in ((QTYPE.A, IPV4, A), (QTYPE.AAAA, IPV6, AAAA)):
        value = instance.attributes.get(attr)
        ttl = ttls.get(QTYPE.get(rtype), ttls.get("SRV"))
        if value and ttl is not None and qtype in (rtype, QTYPE.ANY):
            records.append(RR(name, rtype, rdata=rdata(value), ttl=ttl))
    return records


def _bare_reply(ident: int, flags: int, rcode: int) -> bytes:
    """A header-only reply (for a query we could not parse or answer): same id, opcode and RD."""
    reply_flags = 0x8000 | (flags & 0x7900) | rcode
    return _HEADER.pack(ident, reply_flags, 0, 0, 0, 0)


def _bind_pair(host: str, port: int) -> tuple[socket.socket, socket.socket]:
    """A UDP and a TCP socket bound to the same port; for port 0, a port free for both."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _attempt in range(20 if port == 0 else 1):
        # IPPROTO_TCP, not 0: asyncio turns Nagle off only on sockets that say TCP, and pipelined
        # queries on one connection would otherwise wait for delayed ACKs.
        tcp = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        udp = socket.socket(family, socket.SOCK_DGRAM)
        try:
            tcp.bind((host, port))
            udp.bind((host, tcp.getsockname()[1]))
        except OSError as exc:
            tcp.close()
            udp.close()
            if port == 0 and exc.errno == errno.EADDRINUSE:  # the UDP half was taken: try another
                continue
            raise ConfigError(f"cannot serve DNS on {host}:{port}: {exc.strerror}") from exc
        tcp.listen(128)
        tcp.setblocking(False)
        udp.setblocking(False)
        return udp, tcp
    raise ConfigError(f"cannot serve DNS on {host}: no port free for both UDP and TCP")
