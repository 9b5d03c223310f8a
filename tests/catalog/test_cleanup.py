"""What the retention policy may collect (catalog/blobs.py): never a blob something still refers to —
a data row, an app's bundle, a job's certified result, an input or a replica's result of a job not
final — checked with hypothesis over random catalogs; and deleted jobs' ids never given again."""

from __future__ import annotations

import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from xwpy.server.catalog import blobs, jobs as jobs_catalog, schema

POOL = [f"{i:02x}" * 32 for i in range(12)]
STATUSES = ["PENDING", "RUNNING", "COMPLETED", "ERROR", "CANCELLED"]
LIVE = {"PENDING", "RUNNING"}

job_st = st.fixed_dictionaries({
    "status": st.sampled_from(STATUSES),
    "inputs": st.lists(st.sampled_from(POOL), max_size=3, unique=True),
    "result": st.none() | st.sampled_from(POOL),
    "replica_results": st.lists(st.none() | st.sampled_from(POOL), max_size=2),
})


def _catalog(jobs: list[dict], data_rows: list[str], bundle: str | None, small: list[str]):
    engine = sa.create_engine("sqlite://")
    schema.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(schema.users.insert().values(id=1, login="alice", token_hash="t", role="user", group_name="",
                                                  disabled=False, created_at=0.0))
        conn.execute(schema.hosts.insert().values(id=1, owner_id=1, name="h", token_hash="h", cpus=1, memory=1,
                                                  os="", registered_at=0.0, last_alive=0.0, reputation=0))
        conn.execute(schema.apps.insert().values(id=1, name="a", owner_id=1, access="public", bundle_sha256=bundle,
                                                 command=["true"], limits={}, validator="quorum", replication=1,
                                                 quorum=1, created_at=0.0))
        rid = 0
        for jid, j in enumerate(jobs, 1):
            conn.execute(schema.jobs.insert().values(
                id=jid, app_id=1, owner_id=1, args=[], inputs=[{"name": f"i{k}", "sha256": s} for k, s in enumerate(j["inputs"])],
                status=j["status"], replication=1, quorum=1, max_replicas=1, max_errors=1, memory=0,
                visibility="public", vis_group="", submitted_at=0.0,
                result_sha256=j["result"] if j["status"] == "COMPLETED" else None))
            for res in j["replica_results"]:
                rid += 1
                conn.execute(schema.replicas.insert().values(id=rid, job_id=jid, host_id=1, status="DONE",
                                                             validation="PENDING", lease_expires=0.0, assigned_at=0.0,
                                                             result_sha256=res))
        for k, sha in enumerate(data_rows):
            conn.execute(schema.data.insert().values(sha256=sha, size=1, owner_id=1, access="private", name=f"d{k}",
                                                     created_at=0.0))
        for sha in small:
            conn.execute(schema.small_blobs.insert().values(sha256=sha, data=b"x"))
    return engine


@settings(max_examples=60, deadline=None)
@given(st.lists(job_st, max_size=6), st.lists(st.sampled_from(POOL), max_size=3, unique=True),
       st.none() | st.sampled_from(POOL), st.lists(st.sampled_from(POOL), max_size=4, unique=True))
def test_only_blobs_nothing_refers_to_are_collected(jobs, data_rows, bundle, small):
    engine = _catalog(jobs, data_rows, bundle, small)
    kept = set(data_rows) | ({bundle} if bundle else set())
    for j in jobs:
        if j["status"] == "COMPLETED" and j["result"]:
            kept.add(j["result"])
        if j["status"] in LIVE:
            kept.update(j["inputs"])
            kept.update(r for r in j["replica_results"] if r)
    with engine.begin() as conn:
        gone, held = blobs.drop_unreferenced(conn, POOL)
        left_small = set(blobs.all_shas(conn))
    assert set(gone) == set(POOL) - kept  # every live reference kept, everything else collectable
    assert left_small == set(small) & kept  # the catalog's own copies of the collected are deleted
    assert held == set(small) - kept  # and said so (xwpy delete counts them)


def test_a_deleted_jobs_id_is_never_given_again():
    engine = _catalog([{"status": "COMPLETED", "inputs": [POOL[0]], "result": POOL[1], "replica_results": [POOL[1]]},
                       {"status": "ERROR", "inputs": [], "result": None, "replica_results": [POOL[2], None]}], [], None, [])
    with engine.begin() as conn:
        assert jobs_catalog.delete(conn, [2, 1]) == {POOL[0], POOL[1], POOL[2]}
        _, _, next_job, next_replica = jobs_catalog.load_active(conn)
    assert (next_job, next_replica) == (3, 4)
