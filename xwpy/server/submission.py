"""Submitting jobs: rights on the app and inputs, the replication policy.

Every job may run on any volunteer's host (see :mod:`xwpy.server.scheduler.policy`): the inputs a
job may read are readable by the hosts that run it, never listable by other users.

Pure checks, used by :meth:`xwpy.server.grid.Grid.submit` (for the HTTP API and in-process
submitters alike: the oracle). Raises BadRequest naming the field for anything the submitter got
wrong.
"""

from __future__ import annotations

from typing import Callable, Iterable

from xwpy import protocol
from xwpy.server.catalog.rows import App, Data, User
from xwpy.server.errors import BadRequest
from xwpy.server.scheduler import capacity
from xwpy.server.scheduler.engine import Engine, NewJob
from xwpy.server.scheduler.policy import PUBLIC
from xwpy.server.scheduler.quorum import default_policy

_WIDTH = {"private": 0, "group": 1, "public": 2}


def new_jobs(user: User, msg: protocol.SubmitJobs, readable: Iterable[Data],
             usable_app: Callable[[User, str], App | None]) -> list[NewJob]:
    """The jobs ``msg`` asks for, checked: ``readable`` holds the rows of its inputs that the user
    may read, ``usable_app(user, name)`` the app of that name if the user may use it."""
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
        new.append(
            NewJob(
                owner_id=user.id,
                app_id=app.id,
                policy=policy,
                visibility=visibility,
                memory=app.limits["memory_bytes"],
                disk=disk,
                row={
                    "app_id": app.id, "owner_id": user.id, "batch": msg.batch, "request": msg.request,
                    "args": list(spec.args),
                    "inputs": [{"name": x.name, "sha256": x.sha256, "size": sizes[x.sha256]} for x in spec.inputs],
                    "replication": policy.replication, "quorum": policy.quorum,
                    "max_replicas": policy.max_replicas, "max_errors": policy.max_errors,
                    "memory": app.limits["memory_bytes"], "visibility": visibility.scope,
                    "vis_group": visibility.group, "adaptive": policy.adaptive,
                    "disk": disk,
                },
            )
        )
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
