"""Upgrading a site across every schema change (issue 14 item 2), on SQLite and PostgreSQL: a catalog
made by the first xwpy (tests/catalog/first_catalog.py), filled with users, apps, data, a host, jobs
in every status and chain tasks in every status, is refused by the coordinator with the command to
run; `xwpy db upgrade` brings it to this xwpy's schema with every row as it was; then a coordinator
and a worker finish the jobs it left unfinished, with the old accounts' tokens."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import pytest
import sqlalchemy as sa

from tests.catalog import first_catalog as first
from tests.harness import wait_for
from xwpy import archive, tokens
from xwpy.lifecycle.chaintask import TaskStatus
from xwpy.localgrid import child_env
from xwpy.server.blobstore import BlobStore
from xwpy.server.catalog import chain as chain_catalog
from xwpy.server.catalog import revision, schema
from xwpy.server.catalog.connector import make_engine

pytestmark = pytest.mark.slow

LIMITS = {"wall_seconds": 600, "cpu_seconds": 600, "memory_bytes": 256 << 20, "output_bytes": 1 << 20, "processes": 16}
ECHO = ["{python}", "-c", "import sys; print(' '.join(sys.argv[1:]))", "{args}"]
HUB = "0x" + "ab" * 20
T0 = 1_764_000_000.0  # 2025-11: when the first xwpy could have written these rows


def fill(conn, grid, tok: dict[str, str], blobs: BlobStore) -> dict[str, str]:
    """Rows as the first xwpy wrote them (the oracle's as the next one did); returns digests."""
    def user(uid, login, role, group=""):
        conn.execute(first.users.insert().values(id=uid, login=login, token_hash=tokens.token_hash(tok[login]),
                                                 role=role, group_name=group, disabled=False, created_at=T0))

    user(1, "admin", "admin")
    user(2, "alice", "user", "lab")
    user(3, "bob", "user", "lab")
    user(4, "vol", "worker")
    app = dict(owner_id=2, access="public", bundle_sha256=None, limits=LIMITS, validator="quorum", replication=1,
               quorum=1, created_at=T0)
    conn.execute(first.apps.insert().values(id=1, name="echo", command=ECHO, **app))
    # The oracle's app, registered with the module path the demo apps had then.
    conn.execute(first.apps.insert().values(id=2, name="oracle-hashchain", **{**app, "owner_id": 1},
                                            command=["{python}", "-m", "apps.hashchain.hashchain", "{args}"]))
    data_in, size_in = blobs.put_bytes(b"an input of alice's\n")
    result, size_res = blobs.put_bytes(archive.from_files({"stdout": b"done\n"}))
    conn.execute(first.data.insert().values(id=1, sha256=data_in, size=size_in, owner_id=2, access="private",
                                            name="input.txt", job_id=None, created_at=T0))
    conn.execute(first.data.insert().values(id=2, sha256=result, size=size_res, owner_id=2, access="private",
                                            name="", job_id=3, created_at=T0 + 9))
    conn.execute(first.hosts.insert().values(id=1, owner_id=4, name="old-desktop", token_hash=tokens.token_hash(tok["host"]),
                                             cpus=2, memory=1 << 30, os="Linux", registered_at=T0, last_alive=T0 + 50,
                                             reputation=4))

    def job(jid, status, args, app_id=1, owner=2, inputs=(), **kw):
        conn.execute(first.jobs.insert().values(
            id=jid, app_id=app_id, owner_id=owner, batch="b1", args=list(args), inputs=list(inputs), status=status,
            replication=1, quorum=1, max_replicas=4, max_errors=3, memory=LIMITS["memory_bytes"], visibility="public",
            vis_group="", submitted_at=T0 + jid, **kw))

    def replica(rid, jid, status, validation, **kw):
        conn.execute(first.replicas.insert().values(
            id=rid, job_id=jid, host_id=1, status=status, validation=validation, lease_expires=T0 + 60,
            assigned_at=T0 + 10, **kw))

    job(1, "PENDING", ["still", "pending"])
    job(2, "RUNNING", ["was", "running"], started_at=T0 + 10)
    replica(1, 2, "RUNNING", "PENDING", started_at=T0 + 11)
    job(3, "COMPLETED", ["done"], result_sha256=result, result_size=size_res, started_at=T0 + 10, finished_at=T0 + 20)
    replica(2, 3, "DONE", "VALID", started_at=T0 + 11, finished_at=T0 + 19, exit_code=0, result_sha256=result,
            result_size=size_res, stderr_tail="")
    job(4, "ERROR", ["failed"], error="exit status 3: boom", started_at=T0 + 10, finished_at=T0 + 20)
    replica(3, 4, "FAILED", "INVALID", exit_code=3, stderr_tail="boom", error="exit status 3", finished_at=T0 + 19)
    job(5, "CANCELLED", ["cancelled"], finished_at=T0 + 30)
    replica(4, 5, "ABORTED", "PENDING", finished_at=T0 + 30)
    job(6, "PENDING", ["3", b"abc".hex()], app_id=2, owner=1)  # an oracle unit: sha256 three times
    job(7, "PENDING", ["with", "input"], inputs=[{"name": "input.txt", "sha256": data_in}])
    serials(conn, "users", "apps", "data", "hosts")
    return {"input": data_in, "result": result}


def serials(conn, *tables: str) -> None:
    """Rows written here name their ids; PostgreSQL's sequences must move past them, as they would
    have had the ids come from them."""
    if conn.dialect.name == "postgresql":
        for table in tables:
            conn.exec_driver_sql(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")


def fill_chain(conn) -> None:
    """Chain tasks in every status, as the next xwpy (b560c23) wrote them."""
    conn.execute(first.chain_cursors.insert().values(chain_id=1337, hub=HUB, block=120, block_hash="0x" + "cd" * 32,
                                                     updated_at=T0))
    for i, status in enumerate(TaskStatus, 1):
        done = status in (TaskStatus.CERTIFIED, TaskStatus.COMMITTING, TaskStatus.COMMITTED)
        conn.execute(first.chain_tasks.insert().values(
            id=i, chain_id=1337, hub=HUB, task_id=i, app_id=2, app="hashchain",
            params=json.dumps({"text": "abc", "rounds": 3}).encode(), requester="0x" + "11" * 20,
            callback="0x" + "22" * 20, price=str(10 ** 27 + i), deadline=int(T0) + 3600, status=status.value,
            state={"attempt": 0}, round=1 if status is not TaskStatus.NEW else 0,
            pending=[["0", ["3", "616263"]]] if status is TaskStatus.NEW else None,
            jobs=[[6, "0"]] if status is not TaskStatus.NEW else [], result_job=6 if done else None,
            digest="ef" * 32 if done else None, result=b'{"sha256":"x"}' if done else None,
            commit_tx="0x" + "33" * 32 if status is TaskStatus.COMMITTED else None,
            commit_raw=b"\x02\xf8" if status in (TaskStatus.COMMITTING, TaskStatus.COMMITTED) else None,
            commit_nonce=i if status in (TaskStatus.COMMITTING, TaskStatus.COMMITTED) else None,
            commit_attempts=1 if status is TaskStatus.COMMITTED else 0,
            commit_block=118 if status is TaskStatus.COMMITTED else None, commit_gas=210_000 if done else None,
            error="deadline passed" if status in (TaskStatus.FAILED, TaskStatus.EXPIRED) else None,
            block_number=100 + i, log_tx="0x" + f"{i:02x}" * 32, log_index=i, created_at=T0 + i,
            updated_at=T0 + 2 * i, finished_at=T0 + 3 * i if status in (TaskStatus.COMMITTED, TaskStatus.FAILED,
                                                                         TaskStatus.EXPIRED) else None))
    serials(conn, "chain_tasks")


def snapshot(engine) -> dict[str, list[tuple]]:
    """Every row of the first catalog's tables, in the columns they had then."""
    out = {}
    with engine.connect() as conn:
        for table in [*first.metadata.sorted_tables, *first.oracle_metadata.sorted_tables]:
            if table.name == "meta":
                continue
            out[table.name] = [tuple(r) for r in conn.execute(sa.select(table).order_by(*table.primary_key.columns))]
    return out


def xwpy(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "xwpy", *args], capture_output=True, text=True, env=child_env(),
                          timeout=timeout)


@pytest.mark.parametrize("grid", ["sqlite", "postgres"], indirect=True)
def test_a_catalog_of_the_first_release_upgrades_keeping_every_row_and_its_jobs_complete(grid, tmp_path):
    site = str(grid.cfg.dir)
    tok = {"admin": grid.admin_token, "host": tokens.new_token("xwh"),
           **{login: tokens.new_token("xwu") for login in ("alice", "bob", "vol")}}
    engine = make_engine(grid.cfg.database_url)
    with engine.begin() as conn:  # the site's new catalog gives way to one of the first release
        schema.metadata.drop_all(conn)
        conn.exec_driver_sql("DROP TABLE alembic_version")
        first.create_first(conn)
        digests = fill(conn, grid, tok, BlobStore(grid.cfg.blobs))
    with engine.begin() as conn:
        first.add_oracle_tables(conn)
        fill_chain(conn)
    before = snapshot(engine)
    assert sum(map(len, before.values())) == 4 + 2 + 2 + 1 + 7 + 4 + 1 + len(TaskStatus)

    # The coordinator will not run on it, and says in one line what to run.
    r = xwpy("coordinator", "--site", site)
    assert r.returncode == 1 and r.stderr.strip().splitlines() == [
        f"xwpy: error: the catalog predates schema migrations (this xwpy needs revision {revision.head()}): "
        f"run: xwpy db upgrade --site {site}"], r.stderr
    r = xwpy("db", "current", "--site", site)
    assert r.returncode == 1 and r.stdout.startswith(f"legacy (this xwpy's: {revision.head()})"), r
    r = xwpy("db", "upgrade", "--site", site, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == "applied 0001_first_catalog"
    assert r.stdout.splitlines()[-1] == f"catalog at revision {revision.head()} (was legacy)"
    r = xwpy("db", "current", "--site", site)
    assert r.returncode == 0 and r.stdout.strip() == f"{revision.head()} (this xwpy's: {revision.head()})", r
    assert xwpy("db", "upgrade", "--site", site).stdout.strip() == f"catalog at revision {revision.head()}, nothing to do"

    # Every row as it was, but for the one command the move of the demo apps rewrote.
    after = snapshot(engine)
    command = [c.name for c in first.apps.columns].index("command")
    assert before["apps"][1][command][2] == "apps.hashchain.hashchain"
    moved = list(before["apps"][1])
    moved[command] = ["{python}", "-m", "xwpy.apps.hashchain.hashchain", "{args}"]
    before["apps"][1] = tuple(moved)
    assert after == before
    with engine.connect() as conn:  # the oracle's tasks read back as today's records
        tasks = chain_catalog.listing(conn, 1337, HUB)
        assert [t.status for t in tasks] == list(TaskStatus)
        assert chain_catalog.get_cursor(conn, 1337, HUB).block == 120
    engine.dispose()

    # The site runs on it: the old accounts' tokens work, unfinished jobs finish.
    grid.start_coordinator()
    admin, alice, bob = grid.client(), grid.client(tok["alice"]), grid.client(tok["bob"])
    assert {j["id"]: j["status"] for j in alice.jobs()} == {
        1: "PENDING", 2: "RUNNING", 3: "COMPLETED", 4: "ERROR", 5: "CANCELLED", 7: "PENDING"}
    assert [h["name"] for h in admin.hosts()] == ["old-desktop"]
    grid.start_worker("new-desktop", tok["vol"])
    jobs = {**grid.wait_final(alice, [1, 2, 7], timeout=180), **grid.wait_final(admin, [6], timeout=180)}
    assert {jid: j["status"] for jid, j in jobs.items()} == dict.fromkeys([1, 2, 7, 6], "COMPLETED"), jobs
    from tests.grid.test_image_apps import stdout_of

    assert stdout_of(alice, 1, tmp_path) == "still pending\n"
    assert stdout_of(alice, 2, tmp_path) == "was running\n"
    assert stdout_of(alice, 7, tmp_path) == "with input\n"
    chained = hashlib.sha256(hashlib.sha256(hashlib.sha256(b"abc").digest()).digest()).digest()
    assert stdout_of(admin, 6, tmp_path) == chained.hex() + "\n"  # the renamed module ran
    assert stdout_of(alice, 3, tmp_path) == "done\n"  # a result certified before the upgrade
    assert alice.job(4)["error"] == "exit status 3: boom"
    alice.get_data(digests["input"], tmp_path / "input")
    assert (tmp_path / "input").read_bytes() == b"an input of alice's\n"
    with pytest.raises(Exception) as refused:  # the rights are as they were: bob may not read it
        bob.get_data(digests["input"], tmp_path / "stolen")
    assert getattr(refused.value, "status", 0) == 404
    wait_for(lambda: len(admin.hosts()) == 2, 30, "the new host")
    # Its tokens (hashed since the first release: migration 0018 has nothing to convert) have no
    # expiry, and the accounts and hosts are managed as any: rotated, revoked, refused at once.
    assert {(u["login"], u["expires_at"], u["disabled"]) for u in admin.users()} == {
        (login, None, False) for login in ("admin", "alice", "bob", "vol")}
    old_host = grid.client(tok["host"])
    assert old_host.call("POST", "/work/alive", {"held": []})["abort"] == []
    admin.revoke_host(1)
    with pytest.raises(Exception) as refused:
        old_host.call("POST", "/work/alive", {"held": []})
    assert (refused.value.status, refused.value.code) == (401, "revoked")
    bob_new = admin.rotate_token("bob")["token"]
    with pytest.raises(Exception) as refused:
        bob.me()
    assert refused.value.status == 401 and grid.client(bob_new).me()["login"] == "bob"
