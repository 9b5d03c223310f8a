"""A batch of row writes to the jobs, replicas and hosts tables, for one transaction.

The scheduler's engine returns one per operation (in these tables' column names), and
:func:`xwpy.server.catalog.jobs.apply` writes it: the catalog defines the record, the scheduler
above it fills it in.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Changes:
    """Rows to write, in one transaction, for one engine operation (or several, merged)."""

    jobs_new: list[dict] = field(default_factory=list)
    jobs: dict[int, dict] = field(default_factory=dict)
    replicas_new: list[dict] = field(default_factory=list)
    replicas: dict[int, dict] = field(default_factory=dict)
    hosts: dict[int, dict] = field(default_factory=dict)
    finished: list[int] = field(default_factory=list)  # jobs that reached a final state
    # Jobs whose status changed, as (owner id, batch, status before, status after): not written
    # (the rows above say it), told to the counts of jobs by status kept in memory (server/reads.py).
    moves: list[tuple[int, str | None, str, str]] = field(default_factory=list)
    usage: dict[int, dict] = field(default_factory=dict)  # owner id -> recent usage, at (share_usage)

    def job(self, job_id: int, **fields) -> None:
        self.jobs.setdefault(job_id, {}).update(fields)

    def replica(self, replica_id: int, **fields) -> None:
        self.replicas.setdefault(replica_id, {}).update(fields)

    def host(self, host_id: int, **fields) -> None:
        self.hosts.setdefault(host_id, {}).update(fields)

    def __bool__(self) -> bool:
        return bool(self.jobs_new or self.jobs or self.replicas_new or self.replicas or self.hosts or self.usage)

    @classmethod
    def merge(cls, parts: list["Changes"]) -> "Changes":
        """One record with the effect of writing ``parts`` in order."""
        out = cls()
        for ch in parts:
            out.jobs_new += ch.jobs_new
            out.replicas_new += ch.replicas_new
            for target, source in ((out.jobs, ch.jobs), (out.replicas, ch.replicas), (out.hosts, ch.hosts)):
                for row_id, fields in source.items():
                    target.setdefault(row_id, {}).update(fields)
            out.finished += ch.finished
            out.moves += ch.moves
            out.usage.update(ch.usage)
        return out
