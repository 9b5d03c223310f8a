"""The coordinator's guard, on a fake clock: connection caps, header deadline, body rate."""

from __future__ import annotations

import json

from twisted.internet.address import IPv4Address
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.web import server
from twisted.web.resource import Resource

from xwpy.server.api.guard import Guard, GuardedChannel, GuardedTLSFactory


class Hello(Resource):
    isLeaf = True

    def render(self, request):
        request.setHeader(b"content-type", b"application/json")
        return b'{"ok":true}'


def make_site(clock, **guard):
    site = server.Site(Hello(), reactor=clock)
    site.protocol = GuardedChannel
    site.guard = Guard(**guard)
    return site


def connect(site, clock):
    channel = site.buildProtocol(IPv4Address("TCP", "10.0.0.1", 1234))
    transport = StringTransport()
    channel.makeConnection(transport)
    return channel, transport


def status_of(transport) -> int:
    return int(transport.value().split(b" ", 2)[1])


def test_connection_caps_per_peer_total_and_loopback():
    clock = MemoryReactorClock()
    factory = GuardedTLSFactory(_no_tls(), make_site(clock), Guard(max_connections=5, max_connections_per_peer=2))

    def addr(host):
        return IPv4Address("TCP", host, 40000)

    a1, a2 = factory.buildProtocol(addr("10.0.0.1")), factory.buildProtocol(addr("10.0.0.1"))
    assert a1 is not None and a2 is not None
    assert factory.buildProtocol(addr("10.0.0.1")) is None  # the third from one address
    assert factory.buildProtocol(addr("10.0.0.2")) is not None  # another address is served
    # Loopback is held to the total only (benchmarks run a thousand workers from one process)...
    assert factory.buildProtocol(addr("127.0.0.1")) is not None
    assert factory.buildProtocol(addr("127.0.0.1")) is not None
    assert factory.total == 5
    assert factory.buildProtocol(addr("127.0.0.1")) is None  # ...which holds
    assert factory.buildProtocol(addr("10.0.0.3")) is None
    assert factory.refused == 3
    # A closed connection frees its place.
    factory.registerProtocol(a1)
    factory.unregisterProtocol(a1)
    assert factory.per_peer["10.0.0.1"] == 1 and factory.total == 4
    assert factory.buildProtocol(addr("10.0.0.1")) is not None

    strict = GuardedTLSFactory(_no_tls(), make_site(clock), Guard(max_connections_per_peer=1, limit_loopback=True))
    assert strict.buildProtocol(addr("127.0.0.1")) is not None
    assert strict.buildProtocol(addr("127.0.0.1")) is None


def _no_tls():
    from twisted.internet.ssl import CertificateOptions

    return CertificateOptions()


def test_slowloris_headers_are_cut_off_after_the_header_deadline():
    clock = MemoryReactorClock()
    site = make_site(clock, header_timeout=10)
    channel, transport = connect(site, clock)
    request = b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 30
    for sent, byte in enumerate(request):  # a byte a second: each one resets the idle timeout
        channel.dataReceived(bytes([byte]))
        if transport.value():
            break
        clock.advance(1)
    assert sent == 11  # the first byte after the 10 s deadline
    assert status_of(transport) == 408
    body = json.loads(transport.value().split(b"\r\n\r\n", 1)[1])
    assert body["error"] == "timeout" and "headers" in body["message"]


def test_a_prompt_request_on_an_old_connection_is_served():
    clock = MemoryReactorClock()
    channel, transport = connect(make_site(clock, header_timeout=10), clock)
    channel.dataReceived(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status_of(transport) == 200
    clock.advance(50)  # idle between requests does not count against the next one's headers
    transport.clear()
    channel.dataReceived(b"GET / HTTP/1.1\r\n")
    clock.advance(5)
    channel.dataReceived(b"Host: x\r\n\r\n")
    assert status_of(transport) == 200


def test_a_body_at_a_trickle_is_cut_off():
    clock = MemoryReactorClock()
    channel, transport = connect(make_site(clock, min_body_rate=100, body_grace=5), clock)
    channel.dataReceived(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
    sent = 0
    while not transport.disconnecting and sent < 1000:
        channel.dataReceived(b"x" * 20)
        sent += 20
        clock.advance(1)  # 20 bytes/s
    assert status_of(transport) == 408 and sent < 200
    assert "too slow" in json.loads(transport.value().split(b"\r\n\r\n", 1)[1])["message"]


def test_a_body_at_a_fair_rate_is_not():
    clock = MemoryReactorClock()
    channel, transport = connect(make_site(clock, min_body_rate=100, body_grace=5), clock)
    channel.dataReceived(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3000\r\n\r\n")
    for _ in range(10):
        channel.dataReceived(b"x" * 300)
        clock.advance(1)  # 300 bytes/s for 10 s
    assert status_of(transport) == 200


def test_malformed_requests_get_a_json_400():
    clock = MemoryReactorClock()
    for bad in (b"GARBAGE\r\n\r\n", b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", b"GET / HTTP/1.1\r\nNo colon\r\n\r\n"):
        channel, transport = connect(make_site(clock), clock)
        channel.dataReceived(bad)
        assert status_of(transport) == 400, bad
        assert json.loads(transport.value().split(b"\r\n\r\n", 1)[1])["error"] == "bad_request"


def test_an_oversized_body_is_refused_on_its_headers_with_no_100_continue():
    from xwpy.server.api.router import BoundedRequest

    class Small(BoundedRequest):
        limit_for = staticmethod(lambda path: 100)

    clock = MemoryReactorClock()
    site = make_site(clock)
    site.requestFactory = Small
    channel, transport = connect(site, clock)
    channel.dataReceived(b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 101\r\n\r\n")
    assert status_of(transport) == 413
    assert b"100 Continue" not in transport.value()
    assert json.loads(transport.value().split(b"\r\n\r\n", 1)[1])["error"] == "too_large"


def test_a_refused_connection_reads_and_drops_what_follows_then_closes():
    clock = MemoryReactorClock()
    channel, transport = connect(make_site(clock), clock)
    channel.dataReceived(b"GARBAGE\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")  # nothing after the refusal is served
    assert transport.value().count(b"HTTP/1.1") == 1 and status_of(transport) == 400
    assert not transport.disconnecting  # it still reads (the client may still be sending)...
    channel.dataReceived(b"x" * 100_000)
    clock.advance(3)
    assert transport.disconnecting  # ...for a moment


def test_an_overlong_header_line_gets_a_json_431():
    clock = MemoryReactorClock()
    channel, transport = connect(make_site(clock), clock)
    channel.dataReceived(b"GET /" + b"a" * 20_000)
    assert status_of(transport) == 431
    assert json.loads(transport.value().split(b"\r\n\r\n", 1)[1])["error"] == "too_large"
