"""Submitting jobs: rights on the app and inputs, the replication policy.

Every job may run on any volunteer's host (see :mod:`xwpy.server.scheduler.policy`): the inputs a
job may read are readable by the hosts that run it, never listable by other users.

Pure checks, used by :meth:`xwpy.server.grid.Grid.submit` (for the HTTP API and in-process
submitters alike: the oracle). Raises BadRequest naming the field for anything the submitter got
wrong.
"""

from __future__ import annotations

from typing import Callable, Iterable, Mapping

from xwpy import protocol
from xwpy.server.catalog.rows import App, Data, User
from xwpy.server.errors import BadRequest
from xwpy.lifecycle import JobStatus
from xwpy.server.scheduler import capacity, graph
from xwpy.server.scheduler.engine import Engine, NewJob
from xwpy.server.scheduler.policy import PUBLIC
from xwpy.server.scheduler.quorum import default_policy

_WIDTH = {"private": 0, "group": 1, "public": 2}


def parent_ids(msg: protocol.SubmitJobs) -> list[int]:
    """The ids of jobs submitted before that the jobs of ``msg`` run after (job graphs)."""
    refs = {r for spec in msg.jobs for r in (*spec.after, *(x.job for x in spec.results))}
    return sorted(int(r) for r in refs if r.isdigit())


def _graph(msg: protocol.SubmitJobs, parents: Mapping[int, str]) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """Per job of ``msg``: the ids it runs after, and the indices (in ``msg``) of those submitted with
    it. ``parents``: the statuses of the submitter's own jobs among those named by id."""
    keys: dict[str, int] = {}
    for i, spec in enumerate(msg.jobs):
        if spec.key is not None:
            if spec.key in keys:
                raise BadRequest(f"two jobs have the key {spec.key!r}", f"jobs[{i}].key")
            keys[spec.key] = i
    out = []
    for i, spec in enumerate(msg.jobs):
        old: set[int] = set()
        new: set[int] = set()
        # (A file of a job's result is an input as its submitter wrote it, NAME=@JOB:FILE: an
        # error names that, not the wire's "results" the client made of it.)
        named = [(f"jobs[{i}].after[{k}]", r, "") for k, r in enumerate(spec.after)]
        named += [(f"jobs[{i}].inputs", x.job, f"input {_written(x)}: ") for x in spec.results]
        for where, ref, what in named:
            if ref.isdigit():
                status = parents.get(int(ref))
                if status is None:
                    raise BadRequest(f"{what}no job {ref} of yours to run after", where)
                if status in (JobStatus.ERROR.value, JobStatus.CANCELLED.value):
                    raise BadRequest(f"{what}job {ref} ended in {status}: a job after it would never run", where)
                old.add(int(ref))
            elif ref in keys:
                new.add(keys[ref])
            else:
                raise BadRequest(f"{what}no job with the key {ref!r} in this submission", where)
        out.append((tuple(sorted(old)), tuple(sorted(new))))
    loop = graph.cycle([new for _, new in out])
    if loop is not None:
        names = " -> ".join(msg.jobs[k].key or f"#{k}" for k in loop)
        raise BadRequest(f"the jobs run after one another in a cycle: {names}", f"jobs[{loop[0]}].after")
    return out


def _written(x: protocol.ResultInput) -> str:
    """An input from a job's result as its submitter wrote it: ``in0=@12:out.txt``."""
    return f"{x.name}=@{x.job}:{x.member}"


def certified_files(msg: protocol.SubmitJobs, parents: Mapping[int, str]) -> list[int]:
    """The certified jobs among those whose result files ``msg`` takes as inputs: their files can
    be checked now (:func:`check_result_files`)."""
    return sorted({int(x.job) for spec in msg.jobs for x in spec.results
                   if x.job.isdigit() and parents.get(int(x.job)) == JobStatus.COMPLETED.value})


def check_result_files(msg: protocol.SubmitJobs, files: Mapping[int, set[str]]) -> None:
    """Refuse an input naming a file that the certified result of its job lacks (``files``: the
    names in each certified result): it could only fail when the job runs."""
    for i, spec in enumerate(msg.jobs):
        for x in spec.results:
            have = files.get(int(x.job)) if x.job.isdigit() else None
            if have is not None and x.member not in have:
                listed = ", ".join(sorted(have)[:8]) + (", ..." if len(have) > 8 else "")
                raise BadRequest(f"input {_written(x)}: the certified result of job {x.job} has no file "
                                 f"{x.member!r} (it has: {listed or 'no file'})", f"jobs[{i}].inputs")


def new_jobs(user: User, msg: protocol.SubmitJobs, readable: Iterable[Data],
             usable_app: Callable[[User, str], App | None], parents: Mapping[int, str] | None = None) -> list[NewJob]:
    """The jobs ``msg`` asks for, checked: ``readable`` holds the rows of its inputs that the user
    may read, ``usable_app(user, name)`` the app of that name if the user may use it, ``parents``
    the statuses of the user's jobs among those ``msg`` names to run after (:func:`parent_ids`)."""
    edges = _graph(msg, parents or {})
    keys = {spec.key: i for i, spec in enumerate(msg.jobs) if spec.key is not None}
    widest: dict[str, int] = {}
    sizes: dict[str, int] = {}
    for row in readable:
        widest[row.sha256] = max(widest.get(row.sha256, -1), _WIDTH[row.access])
        sizes[row.sha256] = row.size
    new = []
    for i, spec in enumerate(msg.jobs):
        app = usable_app(user, spec.app)
        if app is None:
            raise BadRequest(f"no app {spec.app!r} that you may use", f"jobs[{i}].app")
        for k, inp in enumerate(spec.inputs):
            if inp.sha256 not in widest:
                raise BadRequest(f"input {inp.sha256} is not data you may read", f"jobs[{i}].inputs[{k}].sha256")
        try:
            policy = default_policy(spec, app)
        except ValueError as e:
            raise BadRequest(str(e), f"jobs[{i}]") from None
        # Any volunteer's host may run it: a host reads only the inputs and bundles of the replicas
        # it holds, and users' rights on the data are checked above and in the data API.
        visibility = PUBLIC
        disk = sum(sizes[x.sha256] for x in spec.inputs)
        priority = msg.priority if spec.priority is None else spec.priority
        new.append(
            NewJob(
                owner_id=user.id,
                app_id=app.id,
                policy=policy,
                visibility=visibility,
                memory=app.limits["memory_bytes"],
                disk=disk,
                priority=priority,
                row={
                    "app_id": app.id, "owner_id": user.id, "batch": msg.batch, "request": msg.request,
                    "args": list(spec.args),
                    "inputs": [{"name": x.name, "sha256": x.sha256, "size": sizes[x.sha256],
                                **({"member": x.member} if x.member else {})} for x in spec.inputs],
                    "replication": policy.replication, "quorum": policy.quorum,
                    "max_replicas": policy.max_replicas, "max_errors": policy.max_errors,
                    "memory": app.limits["memory_bytes"], "visibility": visibility.scope,
                    "vis_group": visibility.group, "adaptive": policy.adaptive,
                    "disk": disk, "priority": priority,
                },
                after=edges[i][0],
                after_new=edges[i][1],
            )
        )
        if spec.results:
            new[-1].row["inputs"] += [
                {"name": x.name, "member": x.member, **({"job": int(x.job)} if x.job.isdigit() else {"new": keys[x.job]})}
                for x in spec.results]
    return new


def check_runnable(engine: Engine, now: float, new: list[NewJob]) -> None:
    """A job that no host alive could run even idle (too little memory or too few cores anywhere,
    no version of its app for any platform there) is refused at once, naming why; with no host
    alive at all it is accepted (it waits, and says why)."""
    alive = engine.alive_hosts(now)
    if not alive:
        return
    seen: set[tuple[int, int, int]] = set()
    for i, nj in enumerate(new):
        if (nj.app_id, nj.memory, nj.disk) in seen:
            continue
        seen.add((nj.app_id, nj.memory, nj.disk))
        need = engine.need(nj)
        reasons = [capacity.never(h.view().offer, need) for h in alive]
        if all(reasons):
            raise BadRequest(f"no host alive could run it: {reasons[0]} ({len(alive)} hosts alive)",
                             f"jobs[{i}].app")
