"""The DNS server over real sockets, queried by dnspython's resolver (UDP and TCP)."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from typing import Any

import dns.flags
import dns.message
import dns.opcode
import dns.query
import dns.rcode
import dns.rdatatype
import dns.resolver
import pytest

from fogbank._errors import ConfigError
from fogbank.discovery._dns import DnsServer
from fogbank.discovery._records import CNAME, IPV4, IPV6, PORT, HealthStatus
from fogbank.discovery._registry import Registry
from fogbank.model import (
    DiscoveryServiceSpec,
    DnsRecord,
    Identity,
    NamespaceSpec,
    NamespaceType,
)

from ..conftest import LoopThread

NAMESPACES = [
    NamespaceSpec("Shop", "shop.local", NamespaceType.DNS_PRIVATE),
    NamespaceSpec("Api", "api.internal", NamespaceType.HTTP),
]
ORDERS = DiscoveryServiceSpec(
    "Orders",
    "orders",
    "Shop",
    dns_records=(DnsRecord("A", 30), DnsRecord("SRV", 20)),
    custom_health_failure_threshold=1,
)
WIDE = DiscoveryServiceSpec(
    "Wide", "wide", "Shop", dns_records=(DnsRecord("A", 5),), custom_health_failure_threshold=1
)
ONE = DiscoveryServiceSpec(
    "One", "one", "Shop", dns_records=(DnsRecord("A", 7),), routing_policy="WEIGHTED"
)
SIX = DiscoveryServiceSpec(
    "Six", "six", "Shop", dns_records=(DnsRecord("AAAA", 9), DnsRecord("A", 11))
)
ALIAS = DiscoveryServiceSpec(
    "Alias", "alias", "Shop", dns_records=(DnsRecord("CNAME", 12),), routing_policy="WEIGHTED"
)
HTTP_ONLY = DiscoveryServiceSpec("Users", "users", "Api")


class DnsThread(LoopThread):
    """A registry and its DNS server on their own event loop thread (the node's situation):
    registry writes go through `run` so they run on that loop too."""

    def __init__(self) -> None:
        super().__init__()
        self.registry = self.run(lambda: Registry(Identity()))
        self.run(
            lambda: self.registry.apply_template(
                NAMESPACES, [ORDERS, WIDE, ONE, SIX, ALIAS, HTTP_ONLY]
            )
        )
        self.server = DnsServer(self.registry, port=0)
        self.call(self.server.start, 10)

    def register(self, spec: DiscoveryServiceSpec, instance_id: str, **attrs: str) -> None:
        self.run(lambda: self.registry.register_instance(spec.service_id, instance_id, attrs))

    def health(self, spec: DiscoveryServiceSpec, instance_id: str, status: HealthStatus) -> None:
        self.run(lambda: self.registry.set_health(spec.service_id, instance_id, status))

    def stop(self) -> None:
        self.call(self.server.stop, 10)
        super().stop()


@pytest.fixture
def served() -> Iterator[DnsThread]:
    node = DnsThread()
    yield node
    node.stop()


def resolver(port: int) -> dns.resolver.Resolver:
    res = dns.resolver.Resolver(configure=False)
    res.nameservers = ["127.0.0.1"]
    res.port = port
    res.lifetime = 5.0
    return res


def ask(port: int, name: str, rdtype: str, *, tcp: bool = False) -> dns.message.Message:
    """One raw query (no retry, no TCP fallback), for rcodes, flags and sections."""
    query = dns.message.make_query(name, rdtype)
    if tcp:
        return dns.query.tcp(query, "127.0.0.1", timeout=5, port=port)
    return dns.query.udp(query, "127.0.0.1", timeout=5, port=port)


def values(answer: dns.resolver.Answer) -> set[str]:
    return {rdata.to_text() for rdata in answer}


def ttl(answer: dns.resolver.Answer) -> int:
    assert answer.rrset is not None
    return int(answer.rrset.ttl)


def add_orders(served: DnsThread, count: int = 3) -> None:
    for n in range(1, count + 1):
        served.register(ORDERS, f"i-{n}", **{IPV4: f"10.0.0.{n}", PORT: str(8000 + n)})
        served.health(ORDERS, f"i-{n}", HealthStatus.HEALTHY)


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
def test_a_answers_every_healthy_instance_with_the_services_ttl(
    served: DnsThread, tcp: bool
) -> None:
    add_orders(served)
    answer = resolver(served.server.port).resolve("orders.shop.local", "A", tcp=tcp)
    assert values(answer) == {"10.0.0.1", "10.0.0.2", "10.0.0.3"}
    assert ttl(answer) == 30
    assert answer.response.flags & dns.flags.AA


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
def test_srv_names_each_instance_with_its_port_and_address(served: DnsThread, tcp: bool) -> None:
    add_orders(served, 2)
    answer = resolver(served.server.port).resolve("orders.shop.local", "SRV", tcp=tcp)
    assert values(answer) == {
        "1 1 8001 i-1.orders.shop.local.",
        "1 1 8002 i-2.orders.shop.local.",
    }
    assert ttl(answer) == 20
    additional = {
        (rrset.name.to_text(), rrset.ttl, rdata.to_text())
        for rrset in answer.response.additional
        for rdata in rrset
    }
    assert additional == {
        ("i-1.orders.shop.local.", 30, "10.0.0.1"),
        ("i-2.orders.shop.local.", 30, "10.0.0.2"),
    }


def test_an_instance_name_answers_its_address(served: DnsThread) -> None:
    add_orders(served, 2)
    answer = resolver(served.server.port).resolve("i-2.orders.shop.local", "A")
    assert values(answer) == {"10.0.0.2"}
    assert ttl(answer) == 30


def test_names_are_case_insensitive_with_or_without_the_trailing_dot(served: DnsThread) -> None:
    add_orders(served, 1)
    res = resolver(served.server.port)
    assert values(res.resolve("ORDERS.Shop.Local.", "A")) == {"10.0.0.1"}
    assert values(res.resolve("I-1.orders.SHOP.local", "A")) == {"10.0.0.1"}


def test_health_changes_take_effect_on_the_next_query(served: DnsThread) -> None:
    add_orders(served)
    res = resolver(served.server.port)
    served.health(ORDERS, "i-2", HealthStatus.UNHEALTHY)
    assert values(res.resolve("orders.shop.local", "A")) == {"10.0.0.1", "10.0.0.3"}
    assert {r.target.to_text() for r in res.resolve("orders.shop.local", "SRV")} == {
        "i-1.orders.shop.local.",
        "i-3.orders.shop.local.",
    }
    served.health(ORDERS, "i-2", HealthStatus.HEALTHY)
    assert values(res.resolve("orders.shop.local", "A")) == {"10.0.0.1", "10.0.0.2", "10.0.0.3"}
    served.run(lambda: served.registry.deregister_instance(ORDERS.service_id, "i-3"))
    assert values(res.resolve("orders.shop.local", "A")) == {"10.0.0.1", "10.0.0.2"}


def test_with_no_healthy_instance_every_instance_is_answered(served: DnsThread) -> None:
    # Route 53 answers as if all were healthy when none is (see the module's docstring).
    add_orders(served, 2)
    served.health(ORDERS, "i-1", HealthStatus.UNHEALTHY)
    served.health(ORDERS, "i-2", HealthStatus.UNHEALTHY)
    assert values(resolver(served.server.port).resolve("orders.shop.local", "A")) == {
        "10.0.0.1",
        "10.0.0.2",
    }


def test_multivalue_answers_at_most_eight_chosen_at_random(served: DnsThread) -> None:
    for n in range(12):
        served.register(WIDE, f"w-{n}", **{IPV4: f"10.1.0.{n}", PORT: "80"})
        served.health(WIDE, f"w-{n}", HealthStatus.HEALTHY)
    served.health(WIDE, "w-0", HealthStatus.UNHEALTHY)
    res = resolver(served.server.port)
    seen: set[str] = set()
    for _ in range(30):
        answer = values(res.resolve("wide.shop.local", "A"))
        assert len(answer) == 8
        seen |= answer
    # 30 random draws of 8 from 11 miss one particular address with probability (3/11)^30.
    assert seen == {f"10.1.0.{n}" for n in range(1, 12)}


def test_weighted_answers_one_instance_at_random(served: DnsThread) -> None:
    for n in range(3):
        served.register(ONE, f"o-{n}", **{IPV4: f"10.2.0.{n}"})
    res = resolver(served.server.port)
    seen: set[str] = set()
    for _ in range(30):
        answer = res.resolve("one.shop.local", "A")
        assert len(answer) == 1
        assert ttl(answer) == 7
        seen |= values(answer)
    assert seen == {"10.2.0.0", "10.2.0.1", "10.2.0.2"}


def test_aaaa_and_a_answer_each_family_with_its_own_ttl(served: DnsThread) -> None:
    served.register(SIX, "x", **{IPV6: "2001:db8::1", IPV4: "10.3.0.1"})
    served.register(SIX, "y", **{IPV6: "2001:db8::2", IPV4: "10.3.0.2"})
    res = resolver(served.server.port)
    six = res.resolve("six.shop.local", "AAAA")
    assert values(six) == {"2001:db8::1", "2001:db8::2"}
    assert ttl(six) == 9
    four = res.resolve("six.shop.local", "A")
    assert values(four) == {"10.3.0.1", "10.3.0.2"}
    assert ttl(four) == 11
    assert values(res.resolve("y.six.shop.local", "AAAA")) == {"2001:db8::2"}


def test_a_cname_service_answers_the_instances_name_for_any_type(served: DnsThread) -> None:
    served.register(ALIAS, "c", **{CNAME: "backend.example.com"})
    reply = ask(served.server.port, "alias.shop.local", "A")
    assert reply.rcode() == dns.rcode.NOERROR
    [rrset] = reply.answer
    assert (rrset.rdtype, rrset.ttl) == (dns.rdatatype.CNAME, 12)
    assert [r.to_text() for r in rrset] == ["backend.example.com."]


def test_a_type_the_service_does_not_declare_has_no_answer(served: DnsThread) -> None:
    add_orders(served, 1)
    reply = ask(served.server.port, "orders.shop.local", "AAAA")
    assert reply.rcode() == dns.rcode.NOERROR
    assert reply.answer == []
    assert [(r.name.to_text(), r.rdtype) for r in reply.authority] == [
        ("shop.local.", dns.rdatatype.SOA)
    ]
    with pytest.raises(dns.resolver.NoAnswer):
        resolver(served.server.port).resolve("orders.shop.local", "AAAA")


@pytest.mark.parametrize(
    "name", ["nope.shop.local", "i-9.orders.shop.local", "a.b.orders.shop.local"]
)
def test_an_unknown_name_in_a_namespace_is_nxdomain_with_its_soa(
    served: DnsThread, name: str
) -> None:
    add_orders(served, 1)
    reply = ask(served.server.port, name, "A")
    assert reply.rcode() == dns.rcode.NXDOMAIN
    assert reply.answer == []
    [soa] = reply.authority
    assert soa.name.to_text() == "shop.local."
    assert [r.to_text() for r in soa] == [
        "ns.shop.local. hostmaster.shop.local. 1 7200 900 1209600 15"
    ]


def test_the_namespace_itself_answers_its_soa(served: DnsThread) -> None:
    answer = resolver(served.server.port).resolve("shop.local", "SOA")
    assert values(answer) == {"ns.shop.local. hostmaster.shop.local. 1 7200 900 1209600 15"}


@pytest.mark.parametrize("name", ["example.com", "users.api.internal", "local"])
def test_names_outside_every_dns_namespace_are_refused(served: DnsThread, name: str) -> None:
    # api.internal is an HTTP namespace: discoverable through the API only.
    reply = ask(served.server.port, name, "A")
    assert reply.rcode() == dns.rcode.REFUSED
    assert reply.answer == []
    assert reply.authority == []


def test_opcodes_other_than_query_are_not_implemented(served: DnsThread) -> None:
    query = dns.message.make_query("orders.shop.local", "A")
    query.set_opcode(dns.opcode.NOTIFY)
    reply = dns.query.udp(query, "127.0.0.1", timeout=5, port=served.server.port)
    assert reply.rcode() == dns.rcode.NOTIMP


def test_a_large_udp_answer_is_truncated_and_complete_over_tcp(served: DnsThread) -> None:
    for n in range(8):
        name = f"instance-with-a-rather-long-identifier-{n:02d}"
        served.register(ORDERS, name, **{IPV4: f"10.4.0.{n}", PORT: "9000"})
    reply = ask(served.server.port, "orders.shop.local", "SRV")
    assert reply.flags & dns.flags.TC
    assert reply.answer == []
    full = ask(served.server.port, "orders.shop.local", "SRV", tcp=True)
    assert not full.flags & dns.flags.TC
    assert sum(len(rrset) for rrset in full.answer) == 8
    # The resolver retries over TCP by itself.
    assert len(resolver(served.server.port).resolve("orders.shop.local", "SRV")) == 8
    # With EDNS the client accepts 1232 bytes over UDP, enough for the whole answer.
    query = dns.message.make_query("orders.shop.local", "SRV", use_edns=0, payload=1232)
    edns = dns.query.udp(query, "127.0.0.1", timeout=5, port=served.server.port)
    assert not edns.flags & dns.flags.TC
    assert sum(len(rrset) for rrset in edns.answer) == 8


def test_malformed_packets_do_not_stop_the_server(served: DnsThread) -> None:
    add_orders(served, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.sendto(b"\x01", ("127.0.0.1", served.server.port))  # too short: dropped
        # A header announcing one question that is not there: FORMERR, same id.
        sock.sendto(
            b"\xbe\xef\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xff",
            ("127.0.0.1", served.server.port),
        )
        data, _ = sock.recvfrom(512)
    reply = dns.message.from_wire(data)
    assert reply.id == 0xBEEF
    assert reply.rcode() == dns.rcode.FORMERR
    assert values(resolver(served.server.port).resolve("orders.shop.local", "A")) == {"10.0.0.1"}


def test_malformed_tcp_messages_close_only_their_connection(served: DnsThread) -> None:
    add_orders(served, 1)
    with socket.create_connection(("127.0.0.1", served.server.port), 5) as sock:
        sock.sendall(b"\x00\x05\x00\x01\x02\x03\x04")  # five bytes: shorter than a header
        assert sock.recv(512) == b""
    assert values(resolver(served.server.port).resolve("orders.shop.local", "A", tcp=True)) == {
        "10.0.0.1"
    }


def test_one_tcp_connection_carries_several_queries(served: DnsThread) -> None:
    add_orders(served, 1)
    first = dns.message.make_query("orders.shop.local", "A")
    second = dns.message.make_query("nope.shop.local", "A")
    with socket.create_connection(("127.0.0.1", served.server.port), 5) as sock:
        for query in (first, second):
            wire = query.to_wire()
            sock.sendall(len(wire).to_bytes(2, "big") + wire)
        replies = [dns.query.receive_tcp(sock, time.time() + 5)[0] for _ in range(2)]
    assert [(r.id, r.rcode()) for r in replies] == [
        (first.id, dns.rcode.NOERROR),
        (second.id, dns.rcode.NXDOMAIN),
    ]
    assert [r.to_text() for r in replies[0].answer[0]] == ["10.0.0.1"]


def test_a_port_already_taken_is_one_clear_line() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        server = DnsServer(Registry(Identity()), port=port)
        with pytest.raises(ConfigError) as info:
            asyncio.run(server.start())
    assert str(info.value) == f"cannot serve DNS on 127.0.0.1:{port}: Address already in use"


def test_a_second_server_on_the_same_port_is_refused(served: DnsThread) -> None:
    other = DnsServer(served.registry, port=served.server.port)

    async def start() -> Any:
        return await other.start()

    with pytest.raises(ConfigError, match="Address already in use"):
        asyncio.run(start())
    assert values(resolver(served.server.port).resolve("shop.local", "SOA"))
