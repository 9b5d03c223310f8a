"""Upload limits, slow clients and connection floods against a live coordinator (issue 5).

Each attack comes from 127.0.0.2 or 127.0.0.3 (this machine, other client addresses) while a
well-behaved client on 127.0.0.1 keeps making requests: the attack must be cut off (413 before
the body is read; 408 or a closed connection after a deadline; a refused connection beyond the
per-peer cap) and the bystander served all along. No wall-clock limit is asserted: only that each
cut-off happens, and each bystander request succeeds, within generous bounds.
"""

from __future__ import annotations

import dataclasses
import select
import socket
import threading
import time

import pytest

from tests.grid.conftest import SQUARE
from tests.harness import Grid, wait_for
from tests.reliability import rawhttp
from tests.reliability.ledger import server_errors
from xwpy import config
from xwpy.client.api import ClientError
from xwpy.protocol import API_PREFIX as API

pytestmark = pytest.mark.slow

BOUND = 60.0  # seconds: anything slower than this is a hang


def start(root, **limits) -> Grid:
    g = Grid(root)
    g.cfg = dataclasses.replace(g.cfg, limits=dataclasses.replace(g.cfg.limits, **limits))
    (g.cfg.dir / config.CONFIG_NAME).write_text(config.render(g.cfg))
    g.start_coordinator()
    return g


class Bystander(threading.Thread):
    """A well-behaved client on 127.0.0.1: one request after another until stopped."""

    def __init__(self, grid: Grid, token: str):
        super().__init__(daemon=True)
        self.client = grid.client(token)
        self.ok = 0
        self.failed: list[str] = []
        self.fives = 0
        self.halt = threading.Event()

    def run(self):
        steps = [self.client.ping, self.client.me, lambda: list(self.client.jobs(limit=10)),
                 lambda: self.client.submit([{"app": "square", "args": ["7"]}])]
        i = 0
        while not self.halt.is_set():
            try:
                steps[i % len(steps)]()
                self.ok += 1
            except ClientError as e:
                self.failed.append(str(e))
                self.fives += e.status >= 500
            i += 1
            self.halt.wait(0.05)  # a person's pace, not a synchronisation

    def served_during(self, attack) -> int:
        """Run ``attack()``; how many bystander requests succeeded meanwhile."""
        before = self.ok
        attack()
        return self.ok - before

    def stop(self):
        self.halt.set()
        self.join(BOUND)
        self.client.close()


@pytest.fixture
def bystander_for():
    started = []

    def make(grid):
        token = grid.user(f"bystander{len(started)}")
        grid.client(token).call("GET", "/users/me")
        if not any(a["name"] == "square" for a in grid.client().apps()):
            grid.client(token).register_app(name="square", command=SQUARE, replication=1, quorum=1)
        b = Bystander(grid, token)
        b.start()
        wait_for(lambda: b.ok >= 2, BOUND, "the bystander's first requests")
        started.append(b)
        return b

    yield make
    for b in started:
        b.halt.set()


def run_all(jobs) -> list:
    """Run the attack functions at once, one thread each; their results (or raise the first error)."""
    results: list = [None] * len(jobs)
    errors: list[BaseException] = []

    def one(i, job):
        try:
            results[i] = job()
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=one, args=(i, j), daemon=True) for i, j in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(BOUND * 2)
    assert not any(t.is_alive() for t in threads), "an attack thread hung"
    if errors:
        raise errors[0]
    return results


def head(method: str, path: str, token: str, **headers) -> bytes:
    lines = [f"{method} {API}{path} HTTP/1.1", "Host: 127.0.0.1", f"Authorization: Bearer {token}"]
    lines += [f"{k.replace('_', '-')}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


# -- oversized bodies ------------------------------------------------------------------------------


def announce_too_much(grid, token, method, path, limit, expect_continue) -> tuple[rawhttp.Reply, int]:
    """Headers announcing one byte more than the limit; the body is never sent."""
    extra = {"Expect": "100-continue"} if expect_continue else {}
    with rawhttp.connect(grid, source="127.0.0.2", timeout=BOUND) as sock:
        sock.sendall(head(method, path, token, Content_Length=limit + 1, **extra))
        reply = rawhttp.read_reply(sock)
    assert reply is not None and not reply.interim, reply  # no "100 Continue" before the refusal
    return reply, 0


def stream_too_much(grid, token, method, path, limit) -> tuple[rawhttp.Reply, int]:
    """A chunked body 50 times the limit, sent until the server answers; with how much was sent."""
    total = limit * 50
    block = b"x" * 16384
    chunk = b"%x\r\n" % len(block) + block + b"\r\n"
    sent = 0
    with rawhttp.connect(grid, source="127.0.0.2", timeout=BOUND) as sock:
        sock.sendall(head(method, path, token, Transfer_Encoding="chunked"))
        while sent < total and (answer := rawhttp.poll(sock, 5.0 if sent > limit else 0)) is None:
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                answer = b""
                break
            sent += len(block)
        reply = rawhttp.read_reply(sock, data=answer or b"") if answer != b"" else None
    assert reply is not None, f"closed without an answer after {sent} bytes"
    return reply, sent


def test_oversized_bodies_are_cut_off_before_they_are_read(tmp_path, ledger, bystander_for):
    limits = {"max_body_bytes": 64 << 10, "max_upload_bytes": 1 << 20}
    g = start(tmp_path, **limits)
    started = time.monotonic()
    try:
        by = bystander_for(g)
        token = g.user("mallory")
        cases = [(m, p, lim, how) for m, p, lim in [("POST", "/jobs", limits["max_body_bytes"]),
                                                     ("POST", "/work/results", limits["max_body_bytes"]),
                                                     ("PUT", "/data/" + "0" * 64, limits["max_upload_bytes"])]
                 for how in ("announce", "announce+expect", "stream")]

        def attack(case):
            method, path, limit, how = case
            if how == "stream":
                return stream_too_much(g, token, method, path, limit)
            return announce_too_much(g, token, method, path, limit, how.endswith("expect"))

        results: list = []
        first = by.ok
        # Rounds of every case at once, a few, and until the bystander has been served meanwhile.
        while len(results) < 3 * len(cases) or by.ok < first + 3:
            results += zip(cases, run_all([lambda c=c: attack(c) for c in cases]))
            assert time.monotonic() - started < BOUND * 2, "the bystander was not served during the attack"
            time.sleep(0.2)  # pacing the attack's rounds, not a synchronisation
        served = by.ok - first
        by.stop()
        log = g.coordinator.output()
    finally:
        g.close()
    refused = sum(1 for _, (reply, _) in results if reply.status == 413 and reply.json()["error"] == "too_large")
    read_far = [(c[1], sent) for c, (_, sent) in results if sent > 5 * c[2]]
    ledger.record("oversized bodies: announced, chunked and uploads beyond the limits",
                  load=f"a bystander's requests ({served} served during the attack)",
                  faults=f"{len(results)} oversized requests", bad_inputs=len(results), lost=len(by.failed),
                  server_errors=by.fives + server_errors(log), seconds=time.monotonic() - started)
    assert refused == len(results), [(c, r) for c, (r, _) in results if r.status != 413]
    assert not read_far, f"bodies read far beyond the limit before the 413: {read_far}"
    assert by.failed == []
    assert server_errors(log) == 0


# -- slow clients --------------------------------------------------------------------------------------


def trickle(sock, data: bytes, pace: float) -> tuple[rawhttp.Reply | None, float]:
    """Send ``data`` a byte every ``pace`` seconds until the server answers or closes; its
    answer (None if it closed without one) and how long the trickle lasted."""
    started = time.monotonic()
    for byte in data:
        answer = rawhttp.poll(sock, pace)
        if answer is not None:
            break
        if time.monotonic() - started > BOUND:
            raise AssertionError(f"a slow client was still connected after {BOUND} s")
        try:
            sock.sendall(bytes([byte]))
        except (BrokenPipeError, ConnectionResetError):
            answer = b""
            break
    else:
        raise AssertionError("the server took a whole trickled request")
    return (rawhttp.read_reply(sock, data=answer) if answer else None), time.monotonic() - started


def slow_headers(grid, token):
    with rawhttp.connect(grid, source="127.0.0.2", timeout=BOUND) as sock:
        reply, _ = trickle(sock, head("GET", "/users/me", token, X_Padding="p" * 2000), 0.3)
    assert reply is not None and reply.status == 408 and "headers" in reply.json()["message"], reply
    return reply


def slow_body(grid, token):
    body = b'{"jobs": [{"app": "square", "args": ["1"]}]}' + b" " * 5000
    with rawhttp.connect(grid, source="127.0.0.2", timeout=BOUND) as sock:
        sock.sendall(head("POST", "/jobs", token, Content_Length=len(body)))
        reply, _ = trickle(sock, body, 0.3)
    assert reply is not None and reply.status == 408 and "too slow" in reply.json()["message"], reply
    return reply


def silent(grid, token, tls: bool, headers: bool):
    """Connect (with TLS or only TCP), maybe send headers announcing a body, then say nothing."""
    if tls:
        sock = rawhttp.connect(grid, source="127.0.0.2", timeout=BOUND)
        if headers:
            sock.sendall(head("POST", "/jobs", token, Content_Length=100))
    else:
        sock = socket.create_connection(("127.0.0.1", grid.port), timeout=BOUND, source_address=("127.0.0.2", 0))
    with sock:
        started = time.monotonic()
        while (answer := rawhttp.poll(sock, BOUND)) != b"":
            assert answer is None or not tls, answer  # nothing but the end (or, without TLS, alerts)
            assert time.monotonic() - started < BOUND, f"a silent connection was still open after {BOUND} s"
        return time.monotonic() - started


def test_slow_clients_are_cut_off_while_others_are_served(tmp_path, ledger, bystander_for):
    g = start(tmp_path, header_timeout_seconds=2.0, body_grace_seconds=2.0, min_body_rate=1000.0,
              idle_timeout_seconds=5.0)
    started = time.monotonic()
    try:
        by = bystander_for(g)
        token = g.user("mallory")
        jobs = [lambda: slow_headers(g, token)] * 4 + [lambda: slow_body(g, token)] * 4 + [
            lambda: silent(g, token, tls=True, headers=False), lambda: silent(g, token, tls=True, headers=True),
            lambda: silent(g, token, tls=False, headers=False)] * 2
        results: list = []
        served = by.served_during(lambda: results.extend(run_all(jobs)))
        by.stop()
        log = g.coordinator.output()
    finally:
        g.close()
    ledger.record("slow clients: headers and bodies a byte at a time, silent connections",
                  load=f"a bystander's requests ({served} served during the attack)",
                  faults=f"{len(jobs)} slowloris connections", bad_inputs=len(jobs), lost=len(by.failed),
                  server_errors=by.fives + server_errors(log), seconds=time.monotonic() - started)
    assert len(results) == len(jobs)  # each cut off (or its thread raised above)
    assert by.failed == [] and served >= 1
    assert server_errors(log) == 0


# -- connection floods -----------------------------------------------------------------------------------


def hold_tls(grid, token, n: int, source: str) -> tuple[list, int]:
    """Open ``n`` TLS connections from ``source``, each making a request; those that worked, kept
    open, and how many were refused."""
    held, refused = [], 0
    for _ in range(n):
        try:
            sock = rawhttp.connect(grid, source=source, timeout=BOUND)
            sock.sendall(head("GET", "/users/me", token))
            reply = rawhttp.read_reply(sock)
            if reply is None:
                sock.close()
                refused += 1
                continue
            assert reply.status == 200, reply
            held.append(sock)
        except (ssl_errors() + (ConnectionResetError, BrokenPipeError)):
            refused += 1
    return held, refused


def ssl_errors():
    import ssl

    return (ssl.SSLError, ssl.SSLEOFError, ssl.SSLZeroReturnError)


def hold_tcp(grid, n: int, source: str) -> tuple[list, int]:
    """Open ``n`` bare TCP connections (no TLS handshake); those still open after a moment."""
    socks = [socket.create_connection(("127.0.0.1", grid.port), timeout=BOUND, source_address=(source, 0))
             for _ in range(n)]
    # A refused connection is closed by the server at once: it turns readable (EOF) quickly.
    # Those still open after a bounded wait are the ones the server kept.
    deadline = time.monotonic() + 3.0
    closed: set = set()
    while time.monotonic() < deadline and len(closed) < n:
        ready, _, _ = select.select([s for s in socks if s not in closed], [], [], 0.2)
        closed.update(ready)
        if len(closed) >= n - CAP:
            break
    kept = [s for s in socks if s not in closed]
    for s in closed:
        s.close()
    return kept, len(closed)


CAP = 8


def test_a_connection_flood_from_one_address_is_refused_while_others_are_served(tmp_path, ledger, bystander_for):
    g = start(tmp_path, max_connections_per_peer=CAP, limit_loopback=True, idle_timeout_seconds=60.0)
    started = time.monotonic()
    held: list = []
    try:
        by = bystander_for(g)
        token = g.user("mallory")
        outcome = {}

        def flood():
            outcome["tls"] = hold_tls(g, token, 3 * CAP, "127.0.0.2")
            outcome["tcp"] = hold_tcp(g, 3 * CAP, "127.0.0.3")

        first = by.ok
        flood()
        (tls_held, tls_refused), (tcp_held, tcp_refused) = outcome["tls"], outcome["tcp"]
        held = tls_held + tcp_held
        wait_for(lambda: by.ok >= first + 3, BOUND, "the bystander to be served while the flood holds its connections")
        served = by.ok - first
        # The attacker's connections still count: one more from 127.0.0.2 is refused...
        more, refused_again = hold_tls(g, token, 1, "127.0.0.2")
        held += more
        # ...until it closes some: then it is served again.
        for s in tls_held:
            s.close()
        again = wait_for(lambda: hold_tls(g, token, 1, "127.0.0.2")[0], BOUND, "the cap to be released")
        held += again
        by.stop()
        log = g.coordinator.output()
    finally:
        for s in held:
            s.close()
        g.close()
    attempts = 2 * 3 * CAP + 1
    ledger.record("connection flood from one address beyond the per-peer cap",
                  load=f"a bystander's requests ({served} served during the flood)",
                  faults=f"{attempts} connections from two addresses, cap {CAP} each", bad_inputs=attempts,
                  lost=len(by.failed), server_errors=by.fives + server_errors(log), seconds=time.monotonic() - started)
    assert len(tls_held) == CAP and tls_refused == 2 * CAP, (len(tls_held), tls_refused)
    assert len(tcp_held) == CAP and tcp_refused == 2 * CAP, (len(tcp_held), tcp_refused)
    assert more == [] and refused_again == 1
    assert by.failed == [] and served >= 1
    assert server_errors(log) == 0
