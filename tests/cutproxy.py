"""A TCP proxy that cuts connections after given numbers of bytes: a flaky network, deterministic.

Bytes are counted per direction over all connections (``down``: from the server, ``up``: to
it). When a direction's count reaches its next cut point, the connection carrying that byte is
closed on both sides after relaying exactly up to the cut point. TLS passes through untouched.
"""

from __future__ import annotations

import socket
import threading


class CutProxy:
    def __init__(self, target_port: int, *, down: list[int] = (), up: list[int] = (), host: str = "127.0.0.1"):
        self.target = (host, target_port)
        self.cuts = {"down": sorted(down), "up": sorted(up)}
        self.sent = {"down": 0, "up": 0}
        self.cut_count = {"down": 0, "up": 0}
        self.connections = 0
        self._lock = threading.Lock()
        self._listener = socket.create_server((host, 0))
        self.port = self._listener.getsockname()[1]
        self.url = f"https://{host}:{self.port}"
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._closed = True
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self.connections += 1
            for s in (client, server):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._pump, args=(server, client, "down"), daemon=True).start()
            threading.Thread(target=self._pump, args=(client, server, "up"), daemon=True).start()

    def _allowance(self, direction: str, n: int) -> tuple[int, bool]:
        """How many of ``n`` bytes may pass, and whether the connection is cut after them."""
        with self._lock:
            cuts = self.cuts[direction]
            sent = self.sent[direction]
            if cuts and sent + n >= cuts[0]:
                n = cuts.pop(0) - sent
                self.sent[direction] += n
                self.cut_count[direction] += 1
                return n, True
            self.sent[direction] += n
            return n, False

    def _pump(self, src: socket.socket, dst: socket.socket, direction: str) -> None:
        try:
            while True:
                data = src.recv(1 << 18)
                if not data:
                    break
                n, cut = self._allowance(direction, len(data))
                if n > 0:
                    dst.sendall(data[:n])
                if cut:
                    break
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()
