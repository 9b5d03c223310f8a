"""Jobs: submit (one, or a batch from a file), follow, fetch results, cancel."""

from __future__ import annotations

import secrets
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import click

from xwpy import archive
from xwpy.lifecycle import FINAL_NAMES, JobStatus, ReplicaStatus
from xwpy.protocol import MAX_PRIORITY, loads
from xwpy.client import sweep
from xwpy.client.api import Client, ClientError, InputResolver, graph_spec, translate_keys
from xwpy.client.context import (JSON_HELP, Duration, Settings, emit, fail, one_line, pass_settings, progress, table, terminal_width,
                                 usage)
from xwpy.client.exits import Exit

FINAL = FINAL_NAMES


def read_job_file(path: Path) -> list[dict]:
    """A JSON array of job objects, or one JSON object per line (UTF-8)."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as e:
        raise ClientError(f"cannot read {path}: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise ClientError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    try:
        value = loads(text)
        items = value if isinstance(value, list) else [value]
    except ValueError:
        items = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            try:
                items.append(loads(line))
            except ValueError as e:
                raise ClientError(f"{path}:{n}: not JSON ({e})") from None
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise ClientError(f"{path}: job {i + 1} is not a JSON object")
    return items


def register(cli: click.Group) -> None:
    @cli.command("submit")
    @click.argument("app", required=False)
    @click.argument("args", nargs=-1)
    @click.option("-i", "--input", "inputs", multiple=True, metavar="NAME=FILE|SHA256|@JOB[:FILE]",
                  help="Stage a file (uploaded), existing data, or a file of job JOB's certified result "
                       "(stdout by default; the job runs after JOB) as NAME in the job's directory.")
    @click.option("--after", "after", multiple=True, type=click.IntRange(1), metavar="JOB",
                  help="Run once job JOB is certified (cancelled if it is not).")
    @click.option("-f", "--file", "job_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                  help="Submit many jobs: a JSON array, or JSON lines, of {app, args, inputs: {NAME: FILE|SHA256}, ...}.")
    @click.option("--sweep", "sweeps", multiple=True, metavar="NAME=A..B[:STEP]|x,y|@FILE",
                  help="One job per value (per combination, with several): {NAME} in ARGS and -i is replaced.")
    @click.option("--batch", help="Name the batch, to follow or cancel it as one (a sweep gets one if not).")
    @click.option("--replication", type=click.IntRange(1, 32), help="Replicas per job (default: the app's).")
    @click.option("--quorum", type=click.IntRange(1, 32), help="Agreeing results that certify (default: the app's).")
    @click.option("--max-replicas", type=click.IntRange(1, 256), help="Most replicas a job may use before it errs.")
    @click.option("--max-errors", type=click.IntRange(1, 256), help="Failed replicas after which a job is in ERROR.")
    @click.option("--priority", type=click.IntRange(-MAX_PRIORITY, MAX_PRIORITY),
                  help="Among your jobs, higher runs first (default 0; then the oldest first).")
    @click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
    @pass_settings
    def submit(s: Settings, app, args, inputs, job_file, sweeps, batch, replication, quorum, max_replicas, max_errors,
               priority, as_json, after):
        """Submit a job of APP with ARGS (put ARGS after -- if they start with '-'), a sweep of them
        (--sweep), or a batch with --file."""
        if sweeps and job_file is not None:
            usage("give --sweep or --file, not both")
        try:
            axes = [sweep.parse_axis(spec) for spec in sweeps]
            combos = list(sweep.combinations(axes, [*args, *inputs])) if axes else [{}]
        except sweep.SweepError as e:
            usage(str(e))
        if axes and batch is None:
            batch = f"sweep-{secrets.token_hex(4)}"
        client = s.client()
        resolver = InputResolver(client)
        policy = {"replication": replication, "quorum": quorum, "max_replicas": max_replicas, "max_errors": max_errors,
                  "priority": priority}
        specs = []
        if job_file is not None:
            if app or args:
                usage("give either APP [ARGS] or --file, not both")
            for i, item in enumerate(read_job_file(job_file)):
                spec = {k: v for k, v in item.items() if k != "inputs"}
                raw_inputs = item.get("inputs", {})
                if not isinstance(raw_inputs, dict):
                    fail(f"{job_file}: job {i + 1}: inputs must be an object of NAME: FILE|SHA256")
                if not all(isinstance(v, str) for v in raw_inputs.values()):
                    fail(f"{job_file}: job {i + 1}: each input must be a FILE, a SHA256 or @JOB[:FILE] (a string)")
                spec["inputs"] = [resolver.resolve(str(n), v) for n, v in raw_inputs.items()]
                for k, v in policy.items():
                    if v is not None:
                        spec.setdefault(k, v)
                specs.append(graph_spec(spec))
        else:
            if not app:
                usage("give APP [ARGS] or --file")
            for text in inputs:
                name, sep, _ = text.partition("=")
                if not sep or not name:
                    usage(f"--input {text!r}: expected NAME=FILE|SHA256")
            for values in combos:
                refs = [resolver.resolve(*sweep.fill(text, values).split("=", 1)) for text in inputs]
                specs.append(graph_spec({"app": app, "args": [sweep.fill(a, values) for a in args], "inputs": refs,
                                         **({"after": list(after)} if after else {}),
                                         **{k: v for k, v in policy.items() if v is not None}}))
        if not specs:
            fail("no jobs to submit")
        ids: list[int] = []
        keyed: dict[str, int] = {}  # keys of jobs submitted by an earlier request: by id after that
        for start in range(0, len(specs), 5000):
            chunk = [translate_keys(spec, keyed) for spec in specs[start:start + 5000]] if keyed else specs[start:start + 5000]
            got = client.submit(chunk, batch=batch, retry_seconds=60)
            keyed.update((spec["key"], jid) for spec, jid in zip(chunk, got) if spec.get("key"))
            ids += got
        text = "\n".join(str(i) for i in ids) if len(ids) <= 20 else f"submitted {len(ids)} jobs ({ids[0]}..{ids[-1]})"
        if axes:
            text += f"\nbatch {batch}: follow it with  xwpy status --batch {batch} --watch"
        emit({"ids": ids, "batch": batch}, as_json, text)

    @cli.command("status")
    @click.argument("job_id", type=int, required=False)
    @click.option("--batch", help="Only this batch.")
    @click.option("--status", "status", type=click.Choice([s.value for s in JobStatus]), help="Only jobs in this status.")
    @click.option("--watch", is_flag=True, help=f"Wait until the job (or every job listed) is final; exit "
                  f"{Exit.JOB_ERROR:d} if one ended in ERROR, {Exit.JOB_CANCELLED:d} if cancelled.")
    @click.option("--timeout", type=Duration(), default=None,
                  help=f"With --watch: give up after this long (90s, 2h; exit {Exit.TIMED_OUT:d}).")
    @click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
    @pass_settings
    def status(s: Settings, job_id, batch, status, watch, timeout, as_json):
        """Show a job, or list jobs (filter by --batch / --status)."""
        client = s.client()
        if job_id is not None:
            job = client.job(job_id)
            if as_json:
                emit(job, True)
                return
            if watch:
                job = _watch_job(client, job_id, timeout or 0)
                if job is None:
                    sys.exit(Exit.TIMED_OUT)
            else:
                job = client.job(job_id)
            if as_json:
                emit(job, True)
            else:
                _show_job(job)
            if watch:
                sys.exit(_exit_status([job["status"]]))
            return
        if watch:
            sys.exit(_watch(client, batch, timeout or 0))
        jobs = list(client.jobs(batch=batch, status=status))
        if not as_json and batch is not None and any(j.get("after") for j in jobs):
            click.echo(graph_line(jobs))
        emit(jobs, as_json, table(
            [[j["id"], j["app"], j["batch"] or "", j["status"],
              "" if j.get("progress") is None else f"{j['progress']:.0%}", (j["result_sha256"] or "")[:12],
              one_line(j["error"] or j.get("why") or "")]
             for j in jobs], ["ID", "APP", "BATCH", "STATUS", "DONE", "RESULT", "ERROR / WHY"], terminal_width()))

    @cli.command("why")
    @click.argument("job_id", type=int)
    @click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
    @pass_settings
    def why(s: Settings, job_id, as_json):
        """Say why a job is not running, or not certified yet (the scheduler's own reason)."""
        job = s.client().job(job_id)
        emit({"id": job["id"], "status": job["status"], "why": why_text(job)}, as_json, why_text(job))

    @cli.command("result")
    @click.argument("job_id", type=int)
    @click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Save the result archive here.")
    @click.option("-x", "--extract", type=click.Path(file_okay=False, path_type=Path), help="Unpack the result here.")
    @pass_settings
    def result(s: Settings, job_id, output, extract):
        """Download a job's certified result (verified). Without options, print its standard output."""
        client = s.client()
        if output is not None:
            client.result(job_id, output)
            if extract is not None:
                extract.mkdir(parents=True, exist_ok=True)
                archive.extract(output, extract)
            click.echo(f"{output}")
            return
        # Streamed to a private temporary directory (never the current one), then read block by
        # block: a large result never sits in memory.
        with tempfile.TemporaryDirectory(prefix="xwpy-result-") as tmp:
            dest = Path(tmp) / f"job-{job_id}.tar"
            client.result(job_id, dest)
            if extract is not None:
                extract.mkdir(parents=True, exist_ok=True)
                archive.extract(dest, extract)
                click.echo(f"extracted to {extract}")
            else:
                archive.copy_member(dest, "stdout", sys.stdout.buffer)
                sys.stdout.buffer.flush()

    @cli.command("cancel")
    @click.argument("job_ids", type=int, nargs=-1)
    @click.option("--batch", help="Cancel every job of this batch.")
    @click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
    @pass_settings
    def cancel(s: Settings, job_ids, batch, as_json):
        """Cancel jobs (their running replicas are aborted)."""
        if not job_ids and not batch:
            usage("give job ids or --batch")
        done = s.client().cancel(list(job_ids), batch)
        emit({"cancelled": done}, as_json, f"cancelled {len(done)} job{'' if len(done) == 1 else 's'}")




def graph_line(jobs: list[dict]) -> str:
    """A batch that is a job graph: how far it is, level by level (a job's level: one more than
    the deepest job it runs after within the batch)."""
    by_id = {j["id"]: j for j in jobs}
    level = {jid: 1 for jid in by_id}
    changed = True
    while changed:  # (a graph has no cycle: this ends after as many rounds as it has levels)
        changed = False
        for j in jobs:
            n = 1 + max((level[p] for p in j.get("after") or () if p in by_id), default=0)
            if n != level[j["id"]]:
                level[j["id"]], changed = n, True
    levels = []
    for n in sorted(set(level.values())):
        these = [j for j in jobs if level[j["id"]] == n]
        done = sum(1 for j in these if j["status"] == JobStatus.COMPLETED.value)
        levels.append(f"level {n}: {done}/{len(these)}")
    held = sum(1 for j in jobs if j.get("waiting_on"))
    ended = sum(1 for j in jobs if j["status"] in (JobStatus.ERROR.value, JobStatus.CANCELLED.value))
    certified = sum(1 for j in jobs if j["status"] == JobStatus.COMPLETED.value)
    return (f"graph: {certified}/{len(jobs)} certified ({', '.join(levels)}); {held} waiting for the jobs they "
            f"run after; {ended} ended uncertified")


def _exit_status(statuses) -> int:
    statuses = set(statuses)
    if JobStatus.ERROR.value in statuses:
        return Exit.JOB_ERROR
    return Exit.JOB_CANCELLED if JobStatus.CANCELLED.value in statuses else Exit.OK


def _note(replica: dict) -> str:
    """Its error, or what it stands in for (an extra replica started beside a silent host's)."""
    if replica["error"]:
        return one_line(replica["error"])[:50]
    return f"extra beside replica {replica['covers']}" if replica.get("covers") else ""


def _validation(replica: dict) -> str:
    """Its validation if it gave a result (DONE); else "-": a replica that failed, was lost or
    aborted is never validated, and an active one has nothing to validate yet."""
    return replica["validation"] if replica["status"] == ReplicaStatus.DONE.value else "-"


def _show_job(job: dict) -> None:
    click.echo(f"job {job['id']}  app {job['app']}  status {job['status']}  quorum {job['quorum']}/{job['replication']}")
    if job["result_sha256"]:
        click.echo(f"result {job['result_sha256']} ({job['result_size']} bytes)")
    if job["error"]:
        click.echo(f"error: {one_line(job['error'])}")
    if job.get("progress") is not None:
        click.echo(f"progress {job['progress']:.0%}")
    if job.get("why"):
        click.echo(f"{'stalled' if job.get('stalled') else 'waiting'}: {one_line(job['why'])}")
    click.echo(table([[r["id"], r["host_id"], r["status"], _validation(r), r["exit_code"],
                       (r["result_sha256"] or "")[:12], _note(r)] for r in job["replicas"]],
                     ["REPLICA", "HOST", "STATUS", "VALIDATION", "EXIT", "DIGEST", "ERROR"]))
    failed = [r for r in job["replicas"] if r["status"] == ReplicaStatus.FAILED.value and r["stderr_tail"]]
    if failed:
        last = failed[-1]
        click.echo(f"stderr of replica {last['id']} (exit {last['exit_code']}), last lines:")
        for line in last["stderr_tail"].splitlines()[-10:]:
            click.echo(f"  {one_line(line)}")


def why_text(job: dict) -> str:
    """One line on where a job stands: its end, or the scheduler's reason it waits (the jobs API's
    ``why``, from the scheduler's decisions), or how far its replicas are from a quorum."""
    head = f"job {job['id']}"
    status = job["status"]
    if status == JobStatus.COMPLETED.value:
        agree = sum(1 for r in job["replicas"] if r["result_sha256"] == job["result_sha256"])
        return f"{head} is certified: {agree} result{'' if agree == 1 else 's'} agree on {job['result_sha256'][:12]}"
    if status == JobStatus.ERROR.value:
        return f"{head} ended in ERROR: {one_line(job['error'] or 'no reason recorded')}"
    if status == JobStatus.CANCELLED.value:
        reason = (job["error"] or "").removeprefix("cancelled: ")
        return f"{head} was cancelled" + (f": {one_line(reason)}" if reason and "by its owner" not in reason else "")
    if job.get("why"):
        return f"{head} is {status}, {'stalled' if job.get('stalled') else 'waiting'}: {one_line(job['why'])}"
    running = sum(1 for r in job["replicas"] if ReplicaStatus(r["status"]).active)
    digests = Counter(r["result_sha256"] for r in job["replicas"] if r["status"] == ReplicaStatus.DONE.value and r["result_sha256"])
    best = max(digests.values(), default=0)
    done = "" if job.get("progress") is None else f", {job['progress']:.0%} done"
    return (f"{head} is {status}: {running} replica{'' if running == 1 else 's'} running{done}; certified when "
            f"{job['quorum']} results agree ({best} do so far)")


TRANSIENT = ("lost", "unreachable", "unavailable", "standby")  # a coordinator restarting, busy, or taken over
WATCH_PATIENCE = 60.0  # seconds a watch keeps asking while its coordinator is away (as `submit` does)


def _patiently(call, *args, **kwargs):
    """A watch's request, asked again with back-off while the coordinator is away, busy or taken
    over (only standbys answering) — for up to WATCH_PATIENCE, saying so once: a watch outlives a
    restart or a takeover. Its first request is not made through this, so a wrong URL fails at once."""
    from xwpy.backoff import Backoff

    backoff, deadline, said = Backoff(0.5, 5.0), time.monotonic() + WATCH_PATIENCE, False
    while True:
        try:
            return call(*args, **kwargs)
        except ClientError as e:
            if e.code not in TRANSIENT or time.monotonic() > deadline:
                raise
            if not said:
                said = True
                click.echo(f"\ncoordinator away ({one_line(e.message)}): asking again", err=True)
        time.sleep(backoff.next())  # back-off between attempts, not synchronisation


def _watch_job(client: Client, job_id: int, timeout: float) -> dict | None:
    """The job once final (the coordinator answers as soon as it is), or None after ``timeout``."""
    start = time.monotonic()
    shown = ""
    job: dict = {"status": "not final"}
    while True:
        left = timeout - (time.monotonic() - start) if timeout else 30
        if left <= 0:
            click.echo(f"timed out: job {job_id} is still {job['status']}", err=True)
            return None
        job = _patiently(client.job, job_id, wait=max(1, min(30, int(left))))
        if job["status"] in FINAL:
            return job
        said = job.get("why") or ("" if job.get("progress") is None else f"{job['progress']:.0%} done")
        if said and said != shown:
            shown = said
            click.echo(f"job {job_id}: {one_line(shown)}", err=True)


STALL_SECONDS = 10.0  # without progress for this long, a batch watch says why jobs wait


def _stalled_line(client: Client, batch: str | None) -> str:
    """Why the batch makes no progress, in one line: its stalled jobs first (no host alive may
    run them), else the first that waits with a reason (every host alive suspended, no free slot)."""
    waiting = []
    for status in (JobStatus.RUNNING.value, JobStatus.PENDING.value):
        waiting += client.call("GET", "/jobs", batch=batch, status=status, limit=50)["jobs"]
    for word in ("stalled", "waiting"):
        jobs = [j for j in waiting if j.get("why") and bool(j.get("stalled")) == (word == "stalled")]
        if jobs:
            more = f" (and {len(jobs) - 1} more {word})" if len(jobs) > 1 else ""
            return f"{word}: job {jobs[0]['id']}: {one_line(jobs[0]['why'])}{more}"
    return ""


def _counts_line(counts: dict[str, int]) -> str:
    return "  ".join(f"{k} {v}" for k, v in counts.items() if v)


def _watch(client: Client, batch: str | None, timeout: float) -> int:
    start = time.monotonic()
    counts = client.summary(batch)
    total = sum(counts.values())
    if total == 0:
        click.echo("no jobs")
        return 0
    with progress(total, "jobs", sys.stderr) as bar:
        shown = 0
        progressed = time.monotonic()
        said = ""
        while True:
            counts = _patiently(client.summary, batch)
            final = sum(counts[k] for k in FINAL)
            if final != shown:
                progressed = time.monotonic()
            bar.update(final - shown)
            shown = final
            if final >= total:
                break
            if timeout and time.monotonic() - start > timeout:
                click.echo(f"\ntimed out: {_counts_line(counts)}", err=True)
                return Exit.TIMED_OUT
            if time.monotonic() - progressed > STALL_SECONDS:
                progressed = time.monotonic()
                line = _patiently(_stalled_line, client, batch)
                if line and line != said:
                    said = line
                    click.echo(f"\n{line}", err=True)
            time.sleep(0.5)  # polling interval of a progress display, not a synchronisation
    click.echo(_counts_line(counts))
    return _exit_status(k for k, v in counts.items() if v)
