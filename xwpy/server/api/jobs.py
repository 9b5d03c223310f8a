"""Jobs: submit in batches, follow, cancel, fetch certified results."""

from __future__ import annotations

from xwpy import protocol
from xwpy.lifecycle import FINAL_NAMES, JobStatus
from xwpy.server.api import data
from xwpy.server.api.router import SCIENTIST, USER, Api, Ctx, bad_request, json_raw
from xwpy.server.catalog.rows import Job

FINAL = frozenset(FINAL_NAMES)


def job_info(j: Job, with_replicas: bool = False, grid=None, alive=None) -> dict:
    """A job as the API shows it. ``why``: for a job that is not final, one line on what it waits
    for ("" when it is simply running); ``stalled``: no host alive may take it now."""
    why = progress = None
    if grid is not None and j.status not in FINAL:
        why = grid.why(j.id, alive)
        progress = grid.progress(j.id)
    out = {
        "id": j.id, "app": j.app, "owner": j.owner, "batch": j.batch, "status": j.status, "args": j.args,
        "inputs": j.inputs, "replication": j.replication, "quorum": j.quorum, "max_replicas": j.max_replicas,
        "max_errors": j.max_errors, "result_sha256": j.result_sha256, "result_size": j.result_size,
        "error": j.error, "submitted_at": j.submitted_at, "started_at": j.started_at, "finished_at": j.finished_at,
        "why": why.line if why is not None else "", "stalled": bool(why is not None and why.stalled),
        "progress": progress,  # fraction done its furthest running replica reported, or None
    }
    if with_replicas:
        out["replicas"] = [
            {
                "id": r.id, "host_id": r.host_id, "status": r.status, "validation": r.validation, "verdict": r.verdict,
                "assigned_at": r.assigned_at, "started_at": r.started_at, "finished_at": r.finished_at,
                "exit_code": r.exit_code, "result_sha256": r.result_sha256, "stderr_tail": r.stderr_tail,
                "error": r.error,
                "deadline": r.deadline, "covers": r.covers,  # covers: the silent replica it was started beside
                "checkpoint": r.checkpoint, "resume": r.resume,  # its latest checkpoint; the one it started from
            }
            for r in j.replicas
        ]
    return out


def owner_filter(ctx: Ctx, batch: str | None = None) -> int | None:
    """Whose jobs a listing shows: the caller's own; every owner's for an admin with ?all=1, and
    every owner's jobs of a batch (as an admin's cancel --batch cancels them all)."""
    return None if ctx.user.admin and (ctx.query.get("all") == "1" or batch is not None) else ctx.user.id


def filters(ctx: Ctx) -> dict:
    status = ctx.query.get("status")
    if status is not None and status not in JobStatus.__members__:
        raise bad_request(f"status must be one of {', '.join(JobStatus.__members__)}", "status")
    batch = ctx.query.get("batch")
    if batch is not None and not protocol.NAME_RE.fullmatch(batch):
        raise bad_request("not a valid batch name", "batch")
    return {"owner_id": owner_filter(ctx, batch), "batch": batch, "status": status}


def install(api: Api, grid) -> None:
    @api.route("POST", "/jobs", SCIENTIST)
    async def submit(ctx: Ctx):
        msg = protocol.parse(protocol.SubmitJobs, ctx.json())
        ids = await grid.submit(ctx.user, msg)
        return {"ids": ids, "batch": msg.batch}

    @api.route("GET", "/jobs", USER)
    async def listing(ctx: Ctx):
        """Jobs in submission order from ``?after=ID``; ``?newest=1``: the latest first."""
        f = filters(ctx)
        limit = ctx.qint("limit", 100, 1, 1000)
        if ctx.query.get("newest") == "1":
            jobs = await grid.newest_jobs(**f, limit=limit)
        else:
            jobs = await grid.jobs(**f, after=ctx.qint("after", 0, 0, 2**62), limit=limit)
        alive = grid.alive_hosts()  # once for the page
        return {"jobs": [job_info(j, grid=grid, alive=alive) for j in jobs]}

    @api.route("GET", "/jobs/summary", USER)
    async def summary(ctx: Ctx):
        f = filters(ctx)
        f.pop("status")
        return {"counts": await grid.job_counts(**f)}

    @api.route("GET", "/jobs/{job_id:int}", USER)
    async def show(ctx: Ctx, job_id: int):
        """``?wait=S``: answer when the job is final, or after S seconds (at most 60)."""
        job = await grid.job_for(ctx.user, job_id)
        wait = ctx.qint("wait", 0, 0, protocol.MAX_JOB_WAIT)
        if wait and job.status not in FINAL:
            await grid.wait_final(job_id, wait)
            job = await grid.job_for(ctx.user, job_id)
        # A final job's answer is encoded once for all its pollers; an active one's says why it waits now.
        return grid.job_answer(job, lambda j: json_raw(job_info(j, with_replicas=True, grid=grid)))

    @api.route("POST", "/jobs/wait", USER)
    async def wait_any(ctx: Ctx):
        """Which of ``ids`` are final (status, certified result's digest): at once if some are,
        else as soon as one is, or none after ``wait`` seconds. A client's futures follow all their jobs with it."""
        msg = protocol.parse(protocol.WaitJobs, ctx.json())
        final = await grid.wait_any_final(ctx.user, msg.ids, msg.wait)
        return {"final": [{"id": jid, "status": status, "result_sha256": digest} for jid, status, digest in final]}

    @api.route("GET", "/jobs/{job_id:int}/result", USER)
    async def result(ctx: Ctx, job_id: int):
        return await data.response(await grid.result_of(ctx.user, job_id), ctx.request, "application/x-tar")

    @api.route("POST", "/jobs/cancel", SCIENTIST)
    async def cancel(ctx: Ctx):
        return {"cancelled": await grid.cancel(ctx.user, protocol.parse(protocol.CancelJobs, ctx.json()))}
