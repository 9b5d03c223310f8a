"""Start a local chain node as a child process: the embedded chain, ganache, or hardhat.

Both print ``listening on URL ...`` as their first stdout line once they accept
connections; :func:`start_node` waits for that line (or for the process to die, whichever
comes first), then for the node to answer JSON-RPC. No fixed sleeps, and a node that fails
to start is reported with the tail of its stderr.

Used by the tests (fixtures), the benchmark and CI; the coordinator runs its embedded chain
in process instead (``rpc.EmbeddedChainService``).
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from web3 import Web3

from xwpy.chain.accounts import DEMO_ETH_WEI, GANACHE_CHAIN_ID, HARDHAT_CHAIN_ID, DemoAccount, demo_accounts
from xwpy.chain.node import NodeUnavailable, connect, wait_until_ready

REPO = Path(__file__).resolve().parents[2]
GANACHE_VERSION = "7.9.2"
_LISTENING = re.compile(r"^listening on (http://\S+)")


class NodeProcess:
    """A running node; ``stop()`` (or leaving the ``with`` block) ends it."""

    def __init__(self, name: str, proc: subprocess.Popen, url: str, stderr_path: Path):
        self.name = name
        self.proc = proc
        self.url = url
        self._stderr_path = stderr_path

    def __repr__(self) -> str:
        return f"<NodeProcess {self.name} pid={self.proc.pid} {self.url}>"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def web3(self) -> Web3:
        return connect(self.url)

    def stderr_tail(self, limit: int = 4000) -> str:
        try:
            return self._stderr_path.read_text(errors="replace")[-limit:]
        except OSError:
            return ""

    def stop(self, timeout: float = 15.0, *, kill: bool = False) -> int:
        """Terminate (SIGTERM, then SIGKILL after TIMEOUT) or, with KILL, crash it at once."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        _unlink_quietly(self._stderr_path)
        return self.proc.returncode

    def __enter__(self) -> "NodeProcess":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _unlink_quietly(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass


def start_node(name: str, argv: list[str], *, timeout: float = 60.0, env: dict | None = None, cwd=None) -> NodeProcess:
    fd, stderr_name = tempfile.mkstemp(prefix=f"xwpy-{name}-", suffix=".stderr")
    stderr_path = Path(stderr_name)
    with os.fdopen(fd, "w") as stderr:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=env,
            cwd=cwd,
            start_new_session=True,  # a Ctrl-C in the terminal is for us, not the node
        )
    lines: queue.Queue = queue.Queue()

    def read_first_line() -> None:
        lines.put(proc.stdout.readline())  # "" when the process exits without a line

    threading.Thread(target=read_first_line, daemon=True, name=f"{name}-stdout").start()
    node = NodeProcess(name, proc, "", stderr_path)
    try:
        line = lines.get(timeout=timeout)
    except queue.Empty:
        tail = node.stderr_tail()
        node.stop()
        raise NodeUnavailable(f"{name} did not start listening within {timeout}s; stderr:\n{tail}") from None
    match = _LISTENING.match(line)
    if not match:
        if not line:  # stdout closed: the process is exiting; get its status
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        tail = node.stderr_tail()
        node.stop()
        raise NodeUnavailable(f"{name} failed to start (exit {proc.returncode}): {line.strip()!r}; stderr:\n{tail}")
    node.url = match.group(1)
    try:
        wait_until_ready(connect(node.url), timeout, alive=node.alive)
    except NodeUnavailable as exc:
        tail = node.stderr_tail()
        node.stop()
        raise NodeUnavailable(f"{name}: {exc}; stderr:\n{tail}") from None
    return node


def start_embedded(state_dir: str | os.PathLike | None = None, *, timeout: float = 60.0, port: int = 0) -> NodeProcess:
    """``python -m xwpy.chain.serve`` on loopback (PORT 0: a free one; journal in STATE_DIR)."""
    argv = [sys.executable, "-m", "xwpy.chain.serve", "--port", str(port)]
    if state_dir is not None:
        argv += ["--state-dir", str(state_dir)]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    return start_node("embedded-chain", argv, timeout=timeout, env=env)


# --- ganache ---------------------------------------------------------------------------

def ganache_dir() -> Path | None:
    """The ganache package installed by .ci/install-ganache (or XWPY_GANACHE_DIR), if any."""
    candidates = [os.environ.get("XWPY_GANACHE_DIR"), str(REPO / ".tools" / "node_modules" / "ganache")]
    for c in candidates:
        if c and (Path(c) / "package.json").is_file():
            return Path(c)
    return None


def ganache_options(accounts: dict[str, DemoAccount] | None = None, *, chain_id: int = GANACHE_CHAIN_ID, db_path: str | None = None) -> dict:
    acc = accounts or demo_accounts()
    options: dict = {
        "wallet": {"accounts": [{"secretKey": a.key_hex, "balance": hex(DEMO_ETH_WEI)} for a in acc.values()]},
        "chain": {"chainId": chain_id, "hardfork": "shanghai"},
        "logging": {"quiet": True},
    }
    if db_path is not None:
        options["database"] = {"dbPath": db_path}
    return options


def start_ganache(
    *,
    accounts: dict[str, DemoAccount] | None = None,
    chain_id: int = GANACHE_CHAIN_ID,
    db_path: str | None = None,
    timeout: float = 60.0,
    port: int = 0,
) -> NodeProcess:
    """ganache on loopback (PORT 0: a free one), funding the demo accounts (DB_PATH: keep its chain)."""
    module = ganache_dir()
    if module is None:
        raise NodeUnavailable("ganache is not installed: run .ci/install-ganache")
    node_bin = shutil.which("node")
    if node_bin is None:
        raise NodeUnavailable("node is not on PATH")
    options = ganache_options(accounts, chain_id=chain_id, db_path=db_path)
    launcher = Path(__file__).with_name("ganache-server.js")
    # The options carry the (public, demo) keys: on the command line of a loopback-only
    # process on a test machine, never in a log line.
    argv = [node_bin, str(launcher), str(module), json.dumps(options), "127.0.0.1", str(port)]
    return start_node("ganache", argv, timeout=timeout)


# --- hardhat: a node that queues transactions, as geth does --------------------------------

def hardhat_dir() -> Path | None:
    """The hardhat package installed by .ci/install-hardhat (or XWPY_HARDHAT_DIR), if any."""
    candidates = [os.environ.get("XWPY_HARDHAT_DIR"), str(REPO / ".tools" / "node_modules" / "hardhat")]
    for c in candidates:
        if c and (Path(c) / "package.json").is_file():
            return Path(c)
    return None


def start_hardhat(*, accounts: dict[str, DemoAccount] | None = None, timeout: float = 60.0, port: int = 0) -> NodeProcess:
    """hardhat on loopback (PORT 0: a free one), funding the demo accounts.

    It mines a block per transaction until told ``evm_setAutomine false``; from then on
    transactions wait in its pool until a block is mined (``evm_mine``, or on an interval:
    ``evm_setIntervalMining``): future nonces until the gap is filled, underpriced ones until the
    base fee falls, as on geth.
    """
    module = hardhat_dir()
    if module is None:
        raise NodeUnavailable("hardhat is not installed: run .ci/install-hardhat")
    node_bin = shutil.which("node")
    if node_bin is None:
        raise NodeUnavailable("node is not on PATH")
    acc = accounts or demo_accounts()
    config = {
        "chainId": HARDHAT_CHAIN_ID,
        "hardfork": "shanghai",
        "accounts": [{"privateKey": a.key_hex, "balance": str(DEMO_ETH_WEI)} for a in acc.values()],
        "mining": {"auto": True, "interval": 0, "mempool": {"order": "fifo"}},
        "loggingEnabled": False,
    }
    config_dir = Path(tempfile.mkdtemp(prefix="xwpy-hardhat-"))
    # The demo keys (public) in a loopback-only test node's config, never in a log line.
    (config_dir / "hardhat.config.js").write_text(
        "module.exports = " + json.dumps({"networks": {"hardhat": config}}) + ";\n")
    launcher = Path(__file__).with_name("hardhat-server.js")
    argv = [node_bin, str(launcher), str(module), str(config_dir), "127.0.0.1", str(port)]
    env = dict(os.environ, HARDHAT_DISABLE_TELEMETRY_PROMPT="true", DO_NOT_TRACK="1")
    try:
        return start_node("hardhat", argv, timeout=timeout, env=env)
    finally:
        shutil.rmtree(config_dir, ignore_errors=True)
