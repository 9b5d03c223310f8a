"""Submitting jobs: rights on the app and inputs, the replication policy.

Every job may run on any volunteer's host (see :mod:`xwpy.server.scheduler.policy`): the inputs a
job may read are readable by the hosts that run it, never listable by other users.

Shared by the HTTP API and in-process submitters (the oracle). Raises ApiError (400 naming the
field) for anything the submitter got wrong; returns the new job ids once they are committed.
"""

from __future__ import annotations

from xwpy import protocol
from xwpy.server.api.router import bad_request
from xwpy.server.catalog.rows import User
from xwpy.server.scheduler import capacity
from xwpy.server.scheduler.engine import NewJob
from xwpy.server.scheduler.policy import PUBLIC
from xwpy.server.scheduler.quorum import Policy

DEFAULT_MAX_ERRORS = 3
_WIDTH = {"private": 0, "group": 1, "public": 2}


def default_policy(spec: protocol.JobSpec, app) -> Policy:
    replication = spec.replication or app.replication
    quorum = spec.quorum or min(app.quorum, replication)
    max_replicas = spec.max_replicas or min(256, max(2 * replication, replication + 2))
    return Policy(replication, quorum, max_replicas, spec.max_errors or DEFAULT_MAX_ERRORS, adaptive=app.adaptive)


async def submit(co, user: User, msg: protocol.SubmitJobs) -> list[int]:
    if msg.request is None:
        return await _submit(co, user, msg)
    return await co.dispatcher.once((user.id, msg.request), lambda: _submit(co, user, msg))


async def _submit(co, user: User, msg: protocol.SubmitJobs) -> list[int]:
    directory = co.directory
    shas = sorted({i.sha256 for spec in msg.jobs for i in spec.inputs})
    widest: dict[str, int] = {}
    for row in await co.catalog.data.rows_for(shas) if shas else []:
        if co.may_read_row(user, row):
            widest[row.sha256] = max(widest.get(row.sha256, -1), _WIDTH[row.access])
    new = []
    for i, spec in enumerate(msg.jobs):
        app = directory.app_names.get(spec.app)
        if app is None or not directory.may_use_app(user, app):
            raise bad_request(f"no app {spec.app!r} that you may use", f"jobs[{i}].app")
        for k, inp in enumerate(spec.inputs):
            if inp.sha256 not in widest:
                raise bad_request(f"input {inp.sha256} is not data you may read", f"jobs[{i}].inputs[{k}].sha256")
        try:
            policy = default_policy(spec, app)
        except ValueError as e:
            raise bad_request(str(e), f"jobs[{i}]") from None
        # Any volunteer's host may run it: a host reads only the inputs and bundles of the replicas
        # it holds, and users' rights on the data are checked above and in the data API.
        visibility = PUBLIC
        new.append(
            NewJob(
                owner_id=user.id,
                app_id=app.id,
                policy=policy,
                visibility=visibility,
                memory=app.limits["memory_bytes"],
                row={
                    "app_id": app.id, "owner_id": user.id, "batch": msg.batch, "request": msg.request,
                    "args": list(spec.args),
                    "inputs": [{"name": x.name, "sha256": x.sha256} for x in spec.inputs],
                    "replication": policy.replication, "quorum": policy.quorum,
                    "max_replicas": policy.max_replicas, "max_errors": policy.max_errors,
                    "memory": app.limits["memory_bytes"], "visibility": visibility.scope,
                    "vis_group": visibility.group, "adaptive": policy.adaptive,
                },
            )
        )
    _check_runnable(co, new, msg)
    return await co.dispatcher.submit(new)


def _check_runnable(co, new: list[NewJob], msg: protocol.SubmitJobs) -> None:
    """A job that no host alive could run even idle (too little memory or too few cores anywhere,
    no version of its app for any platform there) is refused at once, naming why; with no host
    alive at all it is accepted (it waits, and says why)."""
    engine = co.dispatcher.engine
    alive = engine.alive_hosts(co.now())
    if not alive:
        return
    seen: set[tuple[int, int]] = set()
    for i, nj in enumerate(new):
        if (nj.app_id, nj.memory) in seen:
            continue
        seen.add((nj.app_id, nj.memory))
        need = engine.need(nj)
        reasons = [capacity.never(h.view().offer, need) for h in alive]
        if all(reasons):
            raise bad_request(f"no host alive could run it: {reasons[0]} ({len(alive)} hosts alive)",
                              f"jobs[{i}].app")
