"""Tools of the chaos scenarios (tests/reliability/test_chaos.py): a catalog audit, a TCP proxy that
cuts uploads, a tiny disk, a locked catalog.

The audit reads the coordinator's catalog directly (not through the API) and answers in the
ledger's terms: what was lost, certified twice or leased twice, and certified wrongly.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import selectors
import socket
import sqlite3
import struct
import subprocess
import threading
import zlib
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from sqlalchemy import create_engine, select

from xwpy import archive
from xwpy.server.catalog.schema import data, jobs, replicas, small_blobs

# -- the catalog audit -------------------------------------------------------------------------------


@dataclass
class Audit:
    jobs: dict[int, dict]  # every job of the catalog, by id, with its "replicas" and "stdout"
    lost: list[int] = field(default_factory=list)  # acknowledged but missing, or not COMPLETED
    wrong: list[int] = field(default_factory=list)  # certified output not the true one
    miscertified: list[int] = field(default_factory=list)  # validations that contradict the certificate
    leased_twice: list[tuple[int, int]] = field(default_factory=list)  # (job, host) with overlapping leases
    voted_twice: list[tuple[int, int]] = field(default_factory=list)  # (job, host) with two results counted
    data_rows: int = 0

    @property
    def duplicated(self) -> int:
        return len(self.leased_twice) + len(self.voted_twice)

    def summary(self) -> str:
        return (f"{len(self.jobs)} jobs; lost {self.lost[:10]}, wrong {self.wrong[:10]}, miscertified "
                f"{self.miscertified[:10]}, leased twice {self.leased_twice[:10]}, voted twice {self.voted_twice[:10]}")


def _stdout(blob: bytes | None) -> str | None:
    if blob is None:
        return None
    try:
        return archive.read_files(blob).get("stdout", b"").decode("utf-8", "replace")
    except Exception:  # noqa: BLE001 - a broken archive is simply a wrong result
        return "<unreadable archive>"


def audit(grid, expected: Callable[[list], str], acknowledged: Iterable[int] = ()) -> Audit:
    """Check the whole catalog against ``expected(args) -> stdout`` of each job.

    - lost: an acknowledged job id missing from the catalog, or any job not COMPLETED;
    - wrong: a COMPLETED job whose certified archive's stdout is not the expected one;
    - miscertified: a VALID replica whose digest is not the job's, an INVALID one whose digest is,
      fewer VALID replicas than the quorum;
    - leased twice: two replicas of one job on one host whose leases (assigned..finished) overlap —
      the only way one host can hold one job twice (each replica row has one host by construction);
    - voted twice: two DONE replicas of one job from the same host.
    """
    eng = create_engine(grid.cfg.database_url)
    try:
        with eng.connect() as conn:
            rows = {r.id: dict(r._mapping) for r in conn.execute(select(jobs))}
            for j in rows.values():
                j["replicas"] = []
            for r in conn.execute(select(replicas).order_by(replicas.c.id)):
                rows[r.job_id]["replicas"].append(dict(r._mapping))
            digests = {j["result_sha256"] for j in rows.values() if j["result_sha256"]}
            q = select(small_blobs.c.sha256, small_blobs.c.data).where(small_blobs.c.sha256.in_(digests))
            inline = {sha: zlib.decompress(blob) for sha, blob in conn.execute(q)} if digests else {}
            n_data = len(conn.execute(select(data.c.id)).all())
    finally:
        eng.dispose()
    blob_dir = grid.cfg.blobs
    out = Audit(rows, data_rows=n_data)
    out.lost.extend(sorted(set(acknowledged) - set(rows)))
    for jid, j in sorted(rows.items()):
        if j["status"] != "COMPLETED":
            out.lost.append(jid)
            continue
        sha = j["result_sha256"]
        blob = inline.get(sha)
        if blob is None:
            p = blob_dir / sha[:2] / sha[2:4] / sha
            blob = p.read_bytes() if p.exists() else None
        if blob is not None and hashlib.sha256(blob).hexdigest() != sha:
            blob = None
        j["stdout"] = _stdout(blob)
        if j["stdout"] != expected(j["args"]):
            out.wrong.append(jid)
        valid = [r for r in j["replicas"] if r["validation"] == "VALID"]
        if (len(valid) < j["quorum"] and not j["solo"]) or any(r["result_sha256"] != sha for r in valid) or any(
            r["validation"] == "INVALID" and r["result_sha256"] == sha for r in j["replicas"]
        ):
            out.miscertified.append(jid)
        by_host = defaultdict(list)
        for r in j["replicas"]:
            by_host[r["host_id"]].append(r)
        for host, reps in by_host.items():
            if sum(r["status"] == "DONE" for r in reps) > 1:
                out.voted_twice.append((jid, host))
            reps.sort(key=lambda r: r["assigned_at"])
            for a, b in zip(reps, reps[1:]):
                if a["finished_at"] is None or a["finished_at"] > b["assigned_at"]:
                    out.leased_twice.append((jid, host))
                    break
    return out


def blob_store_problems(grid) -> list[str]:
    """Files of the blob store that are not whole blobs: a name that is not the content's sha256,
    or anything left in its temporary directory."""
    root = grid.cfg.blobs
    bad = [f"tmp/{p.name}" for p in (root / "tmp").iterdir()] if (root / "tmp").exists() else []
    for p in root.glob("??/??/*"):
        if p.is_file() and hashlib.sha256(p.read_bytes()).hexdigest() != p.name:
            bad.append(str(p.relative_to(root)))
    return bad


# -- a proxy that cuts uploads -------------------------------------------------------------------


class CutProxy:
    """A TCP proxy on loopback in front of ``target_port`` that drops a connection in the middle of
    a large request: once its client has sent more than ``cut_after`` bytes since the server last
    spoke (so, inside one request body: HTTP/1.1 waits for the answer), it forwards up to there,
    then resets both sides — the first ``cuts`` times; later requests pass whole.

    TLS passes through untouched (the proxy only counts bytes), so the worker behind it still
    checks the coordinator's certificate.
    """

    def __init__(self, target_port: int, *, cut_after: int, cuts: int):
        self.target = ("127.0.0.1", target_port)
        self.cut_after = cut_after
        self.cuts_left = cuts
        self.cut_at: list[int] = []  # bytes of the request that got through, per cut
        self.connections = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.setblocking(False)
        self.port = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="cut-proxy", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._listener.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _loop(self) -> None:
        sel = selectors.DefaultSelector()
        sel.register(self._listener, selectors.EVENT_READ, None)
        peer: dict[socket.socket, socket.socket] = {}
        upstream: set[socket.socket] = set()  # sockets to the client side, whose bytes go up
        turn: dict[socket.socket, int] = {}  # client socket -> bytes sent since the server spoke

        def drop(s: socket.socket, reset: bool = False) -> None:
            for x in (s, peer.get(s)):
                if x is None or x not in peer:
                    continue
                sel.unregister(x)
                if reset:
                    x.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                x.close()
                peer.pop(x, None)
                upstream.discard(x)
                turn.pop(x, None)

        try:
            while not self._stop.is_set():
                for key, _ in sel.select(0.1):
                    s = key.fileobj
                    if s is self._listener:
                        try:
                            client, _ = self._listener.accept()
                        except BlockingIOError:
                            continue
                        try:
                            server = socket.create_connection(self.target, timeout=5)
                        except OSError:
                            client.close()
                            continue
                        self.connections += 1
                        for x in (client, server):
                            x.setblocking(True)
                            x.settimeout(10)
                            sel.register(x, selectors.EVENT_READ, None)
                        peer[client], peer[server] = server, client
                        upstream.add(client)
                        turn[client] = 0
                        continue
                    if s not in peer:
                        continue
                    try:
                        chunk = s.recv(1 << 16)
                    except OSError:
                        chunk = b""
                    if not chunk:
                        drop(s)
                        continue
                    other = peer[s]
                    if s in upstream:
                        before = turn[s]
                        turn[s] = before + len(chunk)
                        if self.cuts_left > 0 and turn[s] > self.cut_after:
                            self.cuts_left -= 1
                            with contextlib.suppress(OSError):
                                other.sendall(chunk[: self.cut_after - before])
                            self.cut_at.append(self.cut_after)
                            drop(s, reset=True)
                            continue
                    else:
                        turn[other] = 0
                    try:
                        other.sendall(chunk)
                    except OSError:
                        drop(s)
        finally:
            for s in list(peer):
                s.close()
            sel.close()


# -- a tiny disk, a locked catalog ---------------------------------------------------------------


@contextlib.contextmanager
def tmpfs(path: Path, size: str):
    """Mount a tmpfs of ``size`` (e.g. "2m") on ``path`` for the block (needs CAP_SYS_ADMIN)."""
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise PermissionError(done.stderr.strip() or "mount failed")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def fill(path: Path, leave: int) -> Path:
    """Fill the file system of ``path`` with one file until only about ``leave`` bytes are free."""
    st = os.statvfs(path)
    free = st.f_bavail * st.f_frsize
    filler = path / "filler"
    with open(filler, "wb") as f:
        f.write(b"\0" * max(free - leave, 0))
    return filler


@contextlib.contextmanager
def locked_sqlite(db: Path):
    """Hold the write lock of a SQLite database for the block, as another program would (an
    operator's ``sqlite3`` shell inside BEGIN EXCLUSIVE, a backup tool)."""
    conn = sqlite3.connect(str(db), timeout=30, isolation_level=None)
    try:
        conn.execute("BEGIN EXCLUSIVE")
        yield conn
        conn.execute("ROLLBACK")
    finally:
        conn.close()
