"""The client's transport: a request the server may have acted on is "lost" (resent under its
key), never "unreachable" (which tells the caller that nothing happened)."""

from __future__ import annotations

import socket
import ssl
import threading

import pytest

from xwpy import pki
from xwpy.client.api import Client, ClientError, Endpoint


def _answer(status: str, body: bytes) -> bytes:
    return f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body


OK = _answer("200 OK", b"{}")
STANDBY = _answer("503 Service Unavailable", b'{"error": "standby", "message": "a standby"}')


class DyingServer:
    """A TLS server that reads whole requests: it answers the first ``answer`` of them, then
    closes the connection after reading the next one and stops listening (a coordinator killed
    as it received a request)."""

    def __init__(self, tmp_path, answer: int, reply: bytes = OK, ca: tuple[bytes, bytes] | None = None):
        tmp_path.mkdir(exist_ok=True)
        self.ca_pair = ca_cert, ca_key = ca or pki.make_ca("t")
        cert, key = pki.make_server_cert(ca_cert, ca_key, ["127.0.0.1", "localhost"])
        (tmp_path / "ca.pem").write_bytes(ca_cert)
        (tmp_path / "cert.pem").write_bytes(cert)
        (tmp_path / "key.pem").write_bytes(key)
        self.ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ctx.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.answer, self.received, self.reply = answer, [], reply
        self.ca = tmp_path / "ca.pem"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _read_request(self, f) -> bytes:
        head = b""
        while not head.endswith(b"\r\n\r\n"):
            line = f.readline()
            if not line:
                return b""
            head += line
        length = next((int(h.split(b":")[1]) for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")), 0)
        return head + f.read(length)

    def _serve(self) -> None:
        while self._serve_one():  # a connection the client closed: it may open another
            pass

    def _serve_one(self) -> bool:
        """Serve one connection; False once the server died."""
        conn, _ = self.sock.accept()
        with self.ctx.wrap_socket(conn, server_side=True) as tls, tls.makefile("rwb") as f:
            while True:
                req = self._read_request(f)
                if not req:
                    return True
                self.received.append(req)
                if len(self.received) > self.answer:
                    break
                f.write(self.reply)
                f.flush()
        self.sock.close()  # killed: from now on, connections are refused
        return False


@pytest.mark.parametrize("answered_before", [0, 1])
def test_a_request_received_by_a_server_that_died_is_lost_not_unreachable(tmp_path, answered_before):
    server = DyingServer(tmp_path, answer=answered_before)
    client = Client(Endpoint(f"https://127.0.0.1:{server.port}", "token", server.ca), timeout=10)
    for _ in range(answered_before):  # a kept-alive connection, as a client that submitted before
        assert client.call("GET", "/ping") == {}
    with pytest.raises(ClientError) as e:
        client.call("POST", "/jobs", {"jobs": []})
    server.thread.join(10)
    assert server.received[-1].startswith(b"POST ")  # the server got it...
    assert e.value.code == "lost"  # ...so the caller must not believe nothing happened


def test_a_server_that_is_not_there_is_unreachable(tmp_path):
    (tmp_path / "ca.pem").write_bytes(pki.make_ca("t")[0])
    with socket.create_server(("127.0.0.1", 0)) as s:
        port = s.getsockname()[1]  # closed again: nothing listens there
    client = Client(Endpoint(f"https://127.0.0.1:{port}", "token", tmp_path / "ca.pem"), timeout=10)
    with pytest.raises(ClientError) as e:
        client.call("POST", "/jobs", {"jobs": []})
    assert e.value.code == "unreachable"


def _closed_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as s:
        return s.getsockname()[1]  # closed again: nothing listens there


def test_given_several_coordinators_a_request_moves_past_the_dead_and_the_standby(tmp_path):
    """No load balancer: the first coordinator is gone, the second a standby, the third leads.
    The request reaches the third at once (neither of the others acted on it), and the next
    request asks the third first."""
    standby = DyingServer(tmp_path / "s", answer=10, reply=STANDBY)
    leader = DyingServer(tmp_path / "l", answer=10, ca=standby.ca_pair)
    urls = [f"https://127.0.0.1:{p}" for p in (_closed_port(), standby.port, leader.port)]
    client = Client(Endpoint(",".join(urls), "token", leader.ca), timeout=10)
    assert client.call("POST", "/jobs", {"jobs": []}) == {}
    assert client.call("GET", "/ping") == {}
    assert client.coordinators.current == urls[2]
    assert [r.split(b" ")[0] for r in standby.received] == [b"POST"]  # asked once, refused it
    assert [r.split(b" ")[0] for r in leader.received] == [b"POST", b"GET"]


def test_when_every_coordinator_is_a_standby_their_answer_is_the_answer(tmp_path):
    standby = DyingServer(tmp_path / "a", answer=10, reply=STANDBY)
    client = Client(Endpoint(f"https://127.0.0.1:{_closed_port()},https://127.0.0.1:{standby.port}", "token",
                             standby.ca), timeout=10)
    with pytest.raises(ClientError) as e:
        client.call("GET", "/ping")
    assert (e.value.status, e.value.code) == (503, "standby")
    status, body = client.health()  # (the health check: a 503 is an answer)
    assert status == 503 and body["error"] == "standby"


def test_when_none_can_be_reached_it_is_unreachable(tmp_path):
    (tmp_path / "ca.pem").write_bytes(pki.make_ca("t")[0])
    client = Client(Endpoint(f"https://127.0.0.1:{_closed_port()},https://127.0.0.1:{_closed_port()}", "token",
                             tmp_path / "ca.pem"), timeout=10)
    with pytest.raises(ClientError, match="no coordinator answered") as e:
        client.call("POST", "/jobs", {"jobs": []})
    assert e.value.code == "unreachable"


class TakeoverServer(DyingServer):
    """A standby for its first ``standby_for`` requests, then the leader (a takeover under way)."""

    def __init__(self, tmp_path, standby_for: int, leader_reply: bytes):
        self.standby_for, self.leader_reply = standby_for, leader_reply
        super().__init__(tmp_path, answer=100)

    @property
    def reply(self) -> bytes:
        return STANDBY if len(self.received) <= self.standby_for else self.leader_reply

    @reply.setter
    def reply(self, _value) -> None:
        pass


def test_a_submission_made_while_only_standbys_answer_waits_for_the_new_leader(tmp_path):
    """The leader just died (its URL refuses), the standby has not taken the lease yet: a standby
    acted on nothing, so the submission is resent with back-off, under its key, until it leads —
    not an error (exit 7) in the middle of a takeover."""
    server = TakeoverServer(tmp_path, standby_for=2, leader_reply=_answer("200 OK", b'{"ids": [7]}'))
    client = Client(Endpoint(f"https://127.0.0.1:{_closed_port()},https://127.0.0.1:{server.port}", "token",
                             server.ca), timeout=10)
    assert client.submit([{"app": "a", "args": []}], retry_seconds=30) == [7]
    bodies = [r.split(b"\r\n\r\n", 1)[1] for r in server.received]
    assert len(bodies) == 3 and len(set(bodies)) == 1  # the same submission, under one key


def test_a_watch_rides_through_a_takeover(tmp_path, capsys):
    from xwpy.client.commands.jobs import _patiently

    server = TakeoverServer(tmp_path, standby_for=2, leader_reply=_answer("200 OK", b'{"id": 3}'))
    client = Client(Endpoint(f"https://127.0.0.1:{_closed_port()},https://127.0.0.1:{server.port}", "token",
                             server.ca), timeout=10)
    assert _patiently(client.call, "GET", "/jobs/3") == {"id": 3}
    assert capsys.readouterr().err.count("coordinator away") == 1  # said once
    with pytest.raises(ClientError):  # a refusal is not waited out
        _patiently(lambda: (_ for _ in ()).throw(ClientError("no", status=403, code="forbidden")))
