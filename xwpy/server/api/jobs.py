"""Jobs: submit in batches, follow, cancel, fetch certified results."""

from __future__ import annotations

from xwpy import protocol
from xwpy.lifecycle import FINAL_NAMES
from xwpy.server.api import data
from xwpy.server.api.router import SCIENTIST, USER, Api, Ctx, bad_request, json_raw
from xwpy.server.catalog.rows import Job

FINAL = frozenset(FINAL_NAMES)
TAR = "application/x-tar"


def job_info(j: Job, with_replicas: bool = False, grid=None, alive=None) -> protocol.JobInfo:
    """A job as the API shows it (:class:`xwpy.protocol.JobInfo`)."""
    why = progress = None
    if grid is not None and j.status not in FINAL:
        why = grid.why(j.id, alive)
        progress = grid.progress(j.id)
    replicas = None
    if with_replicas:
        replicas = tuple(
            protocol.ReplicaInfo(
                id=r.id, host_id=r.host_id, status=r.status, validation=r.validation, verdict=r.verdict,
                assigned_at=r.assigned_at, started_at=r.started_at, finished_at=r.finished_at,
                exit_code=r.exit_code, result_sha256=r.result_sha256, stderr_tail=r.stderr_tail, error=r.error,
                deadline=r.deadline, covers=r.covers, checkpoint=r.checkpoint, resume=r.resume, credit=r.credit,
            )
            for r in j.replicas
        )
    plain = [i for i in j.inputs if "job" not in i]
    results = tuple(protocol.ResultInput(name=i["name"], job=str(i["job"]), member=i["member"])
                    for i in j.inputs if "job" in i)
    return protocol.JobInfo(
        id=j.id, app=j.app, owner=j.owner, batch=j.batch, status=j.status, args=j.args, inputs=plain,
        replication=j.replication, quorum=j.quorum, max_replicas=j.max_replicas, max_errors=j.max_errors,
        result_sha256=j.result_sha256, result_size=j.result_size, error=j.error, submitted_at=j.submitted_at,
        started_at=j.started_at, finished_at=j.finished_at, why=why.line if why is not None else "",
        stalled=bool(why is not None and why.stalled), progress=progress, replicas=replicas, priority=j.priority,
        after=tuple(j.after or ()), results=results,
        waiting_on=tuple(grid.waiting_on(j.id)) if grid is not None and j.after and j.status not in FINAL else (),
    )


def owner_filter(ctx: Ctx, batch: str | None = None) -> int | None:
    """Whose jobs a listing shows: the caller's own; every owner's for an admin with ?all=1, and
    every owner's jobs of a batch (as an admin's cancel --batch cancels them all)."""
    return None if ctx.user.admin and (ctx.args.all or batch is not None) else ctx.user.id


def filters(ctx: Ctx) -> dict:
    return {"owner_id": owner_filter(ctx, ctx.args.batch), "batch": ctx.args.batch,
            "status": getattr(ctx.args, "status", None)}


def install(api: Api, grid) -> None:
    @api.route("POST", "/jobs", SCIENTIST, body=protocol.SubmitJobs, reply=protocol.Submitted, errors=(409, 503))
    async def submit(ctx: Ctx):
        ids = await grid.submit(ctx.user, ctx.body)
        return protocol.Submitted(ids=tuple(ids), batch=ctx.body.batch)

    @api.route("GET", "/jobs", USER, query=protocol.JobsQuery, reply=protocol.JobList)
    async def listing(ctx: Ctx):
        f = filters(ctx)
        if ctx.args.newest:
            jobs = await grid.newest_jobs(**f, limit=ctx.args.limit)
        else:
            jobs = await grid.jobs(**f, after=ctx.args.after, limit=ctx.args.limit)
        alive = grid.alive_hosts()  # once for the page
        return protocol.JobList(jobs=tuple(job_info(j, grid=grid, alive=alive) for j in jobs))

    @api.route("GET", "/jobs/summary", USER, query=protocol.SummaryQuery, reply=protocol.JobCounts)
    async def summary(ctx: Ctx):
        f = filters(ctx)
        f.pop("status")
        return protocol.JobCounts(counts=await grid.job_counts(**f))

    @api.route("GET", "/jobs/{job_id:int}", USER, query=protocol.JobWait, reply=protocol.JobInfo)
    async def show(ctx: Ctx, job_id: int):
        job = await grid.job_for(ctx.user, job_id)
        wait = ctx.args.wait
        if wait and job.status not in FINAL:
            await grid.wait_final(job_id, wait)
            job = await grid.job_for(ctx.user, job_id)
        # A final job's answer is encoded once for all its pollers; an active one's says why it waits now.
        return grid.job_answer(job, lambda j: json_raw(protocol.encode(job_info(j, with_replicas=True, grid=grid))))

    @api.route("POST", "/jobs/wait", USER, body=protocol.WaitJobs, reply=protocol.FinalJobs)
    async def wait_any(ctx: Ctx):
        """Which of ``ids`` are final (status, certified result's digest, and the result itself
        when small): at once if some are, else as soon as one is, or none after ``wait`` seconds.
        ``missing`` names the ids it cannot show — deleted, or not the caller's (one answer for
        both) — answered at once; the others are answered as usual. A client's futures follow all
        their jobs with it."""
        final, missing = await grid.wait_any_final(ctx.user, ctx.body.ids, ctx.body.wait)
        return protocol.FinalJobs(final=tuple(protocol.FinalJob(id=jid, status=status, result_sha256=digest,
                                                                result=data)
                                              for jid, status, digest, data in final),
                                  missing=tuple(missing))

    @api.route("GET", "/jobs/{job_id:int}/result", USER, reply=TAR, replies={206: TAR}, errors=(409, 410, 416))
    async def result(ctx: Ctx, job_id: int):
        return await data.response(await grid.result_of(ctx.user, job_id), ctx.request, TAR)

    @api.route("DELETE", "/jobs/{job_id:int}", SCIENTIST, reply=protocol.Deleted, errors=(404, 409))
    async def delete(ctx: Ctx, job_id: int):
        """Delete a job (yours; any, for an admin), cancelled first if it is not final, with its
        replicas and the blobs nothing else refers to. 409 while jobs not final run after it."""
        ids, blobs = await grid.delete_jobs(ctx.user, [job_id])
        return protocol.Deleted(jobs=len(ids), blobs=blobs)

    @api.route("DELETE", "/batches/{batch}", SCIENTIST, reply=protocol.Deleted, errors=(404, 409))
    async def delete_batch(ctx: Ctx, batch: str):
        """Delete every job of a batch (yours; every owner's, for an admin), as one job is deleted."""
        if not protocol.NAME_RE.fullmatch(batch):
            raise bad_request("not a batch name (letters, digits, '.', '_', '-'; 1-64 chars)", "batch")
        ids, blobs = await grid.delete_jobs(ctx.user, batch=batch)
        return protocol.Deleted(jobs=len(ids), blobs=blobs)

    @api.route("POST", "/jobs/cancel", SCIENTIST, body=protocol.CancelJobs, reply=protocol.JobsCancelled, errors=(404,))
    async def cancel(ctx: Ctx):
        return protocol.JobsCancelled(cancelled=tuple(await grid.cancel(ctx.user, ctx.body)))
