"""The worker's link given several coordinators (xwpy/coordinators.py): past a dead one and a
standby to the leader at once, staying there; Unreachable only when none answered. Real TLS servers
on loopback (the site CA pinned), the coordinator's own standby resource."""

from __future__ import annotations

import json
import socket

import pytest
import pytest_twisted
from twisted.internet import reactor, ssl
from twisted.web import server
from twisted.web.resource import Resource

from xwpy import pki
from xwpy.server.api.standby import Standby
from xwpy.worker.link import Link, Unreachable


class Leader(Resource):
    isLeaf = True

    def __init__(self):
        super().__init__()
        self.paths: list[bytes] = []

    def render_POST(self, request):
        self.paths.append(request.path)
        request.setHeader(b"content-type", b"application/json")
        return json.dumps({}).encode()


class CountingStandby(Standby):
    def __init__(self):
        super().__init__()
        self.asked = 0

    def render(self, request):
        self.asked += 1
        return super().render(request)


@pytest.fixture
def site_tls():
    ca_cert, ca_key = pki.make_ca("t")
    cert, key = pki.make_server_cert(ca_cert, ca_key, ["127.0.0.1"])
    pair = ssl.PrivateCertificate.loadPEM(cert + b"\n" + key)
    return ca_cert, ssl.CertificateOptions(privateKey=pair.privateKey.original, certificate=pair.original)


def closed_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as s:
        return s.getsockname()[1]


def serve(resource, options):
    port = reactor.listenSSL(0, server.Site(resource), options, interface="127.0.0.1")
    return port, f"https://127.0.0.1:{port.getHost().port}"


@pytest_twisted.ensureDeferred
async def test_a_call_goes_past_the_dead_and_the_standby_to_the_leader_and_stays(site_tls):
    ca, options = site_tls
    standby, leader = CountingStandby(), Leader()
    (p1, standby_url), (p2, leader_url) = serve(standby, options), serve(leader, options)
    dead_url = f"https://127.0.0.1:{closed_port()}"
    link = Link(reactor, f"{dead_url},{standby_url},{leader_url}", ca, "token", timeout=10)
    try:
        await link.release([1])
        await link.release([2])
        assert link.url == leader_url
        assert standby.asked == 1  # asked once, by the first call; the second went straight to the leader
        assert leader.paths == [b"/api/v1/work/release"] * 2
    finally:
        await link.close()
        await p1.stopListening()
        await p2.stopListening()


@pytest_twisted.ensureDeferred
async def test_when_only_standbys_answer_the_call_is_unreachable(site_tls):
    ca, options = site_tls
    standby = CountingStandby()
    port, standby_url = serve(standby, options)
    link = Link(reactor, f"https://127.0.0.1:{closed_port()},{standby_url}", ca, "token", timeout=10)
    try:
        with pytest.raises(Unreachable, match="no coordinator answered"):
            await link.release([1])
        assert standby.asked == 1  # each once per call, then the caller's back-off
    finally:
        await link.close()
        await port.stopListening()
