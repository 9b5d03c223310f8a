"""Jobs: submit in batches, follow, cancel, fetch certified results."""

from __future__ import annotations

from xwpy import protocol
from xwpy.lifecycle import JobStatus
from xwpy.server import submission
from xwpy.server.api.router import SCIENTIST, USER, Api, ApiError, Ctx, bad_request, not_found
from xwpy.server.catalog.rows import Job

FINAL = {s.value for s in JobStatus if s.final}


def job_info(j: Job, with_replicas: bool = False, co=None, alive=None) -> dict:
    """A job as the API shows it. ``why``: for a job that is not final, one line on what it waits
    for ("" when it is simply running); ``stalled``: no host alive may take it now."""
    why = progress = None
    if co is not None and j.status not in FINAL:
        why = co.dispatcher.engine.why(j.id, co.now(), alive)
        progress = co.dispatcher.engine.progress(j.id)
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
            }
            for r in j.replicas
        ]
    return out


def install(api: Api, co) -> None:
    async def visible_job(ctx: Ctx, job_id: int) -> Job:
        job = await co.catalog.jobs.get(job_id)
        if job is None or (job.owner_id != ctx.user.id and not ctx.user.admin):
            raise not_found(f"job {job_id}")  # another user's job does not exist, as far as you know
        return job

    @api.route("POST", "/jobs", SCIENTIST)
    async def submit(ctx: Ctx):
        msg = protocol.parse(protocol.SubmitJobs, ctx.json())
        ids = await submission.submit(co, ctx.user, msg)
        return {"ids": ids, "batch": msg.batch}

    def filters(ctx: Ctx) -> dict:
        status = ctx.query.get("status")
        if status is not None and status not in JobStatus.__members__:
            raise bad_request(f"status must be one of {', '.join(JobStatus.__members__)}", "status")
        batch = ctx.query.get("batch")
        if batch is not None and not protocol.NAME_RE.fullmatch(batch):
            raise bad_request("not a valid batch name", "batch")
        # An admin sees every owner's jobs with ?all=1, and every owner's jobs of a batch (as an
        # admin's cancel --batch cancels them all).
        owner = None if ctx.user.admin and (ctx.query.get("all") == "1" or batch is not None) else ctx.user.id
        return {"owner_id": owner, "batch": batch, "status": status}

    @api.route("GET", "/jobs", USER)
    async def listing(ctx: Ctx):
        f = filters(ctx)
        jobs = await co.catalog.jobs.list(
            **f, after=ctx.qint("after", 0, 0, 2**62), limit=ctx.qint("limit", 100, 1, 1000)
        )
        alive = co.dispatcher.engine.alive_hosts(co.now())  # once for the page
        return {"jobs": [job_info(j, co=co, alive=alive) for j in jobs]}

    @api.route("GET", "/jobs/summary", USER)
    async def summary(ctx: Ctx):
        f = filters(ctx)
        f.pop("status")
        return {"counts": await co.catalog.jobs.summary(**f)}

    @api.route("GET", "/jobs/{job_id:int}", USER)
    async def show(ctx: Ctx, job_id: int):
        """``?wait=S``: answer when the job is final, or after S seconds (at most 60)."""
        job = await visible_job(ctx, job_id)
        wait = ctx.qint("wait", 0, 0, 60)
        if wait and job.status not in FINAL:
            await co.dispatcher.wait_final(job_id, wait)
            job = await visible_job(ctx, job_id)
        return job_info(job, with_replicas=True, co=co)

    @api.route("GET", "/jobs/{job_id:int}/result", USER)
    async def result(ctx: Ctx, job_id: int):
        job = await visible_job(ctx, job_id)
        if job.status != JobStatus.COMPLETED.value:
            raise ApiError(409, "not_certified", f"job {job_id} is {job.status}: it has no certified result")
        response = await co.blob(job.result_sha256, "application/x-tar")
        if response is None:
            raise ApiError(410, "gone", f"the result of job {job_id} is no longer stored")
        return response

    @api.route("POST", "/jobs/cancel", SCIENTIST)
    async def cancel(ctx: Ctx):
        msg = protocol.parse(protocol.CancelJobs, ctx.json())
        owner = None if ctx.user.admin else ctx.user.id
        ids = list(msg.ids)
        if ids:
            owners = await co.catalog.jobs.owners_of(ids)
            for i, jid in enumerate(ids):
                if jid not in owners or (owner is not None and owners[jid] != owner):
                    raise not_found(f"job {jid}")
        if msg.batch is not None:
            ids += await co.catalog.jobs.ids_in_batch(owner, msg.batch)
        cancelled = await co.dispatcher.cancel(ids)
        return {"cancelled": cancelled}
