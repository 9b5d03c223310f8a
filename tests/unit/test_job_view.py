"""What ``xwpy status JOB`` prints of a job's replicas."""

from __future__ import annotations

from xwpy.client.commands.jobs import _show_job


def replica(id, status, validation, digest=None, error=None):
    return {"id": id, "host_id": 10 + id, "status": status, "validation": validation, "exit_code": None,
            "result_sha256": digest, "error": error, "stderr_tail": None}


def rows(out: str) -> dict[str, list[str]]:
    """The replica table's rows by replica id, each split into its columns."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("REPLICA"))
    return {line.split()[0]: line.split() for line in lines[start + 1:] if line.strip() and line.split()[0].isdigit()}


def test_only_a_replica_that_gave_a_result_has_a_validation(capsys):
    """A failed, lost or aborted replica is never validated, and an active one has nothing to
    validate yet: none of them is listed as waiting for validation (the catalog keeps PENDING)."""
    job = {"id": 7, "app": "a", "status": "RUNNING", "quorum": 2, "replication": 2, "result_sha256": None,
           "error": None, "replicas": [
               replica(1, "DONE", "PENDING", "ab" * 32), replica(2, "FAILED", "PENDING", error="exit 1"),
               replica(3, "LOST", "PENDING"), replica(4, "RUNNING", "PENDING"), replica(5, "DONE", "VALID", "cd" * 32),
               replica(6, "ABORTED", "PENDING")]}
    _show_job(job)
    table = rows(capsys.readouterr().out)
    assert {r: cols[2:4] for r, cols in table.items()} == {
        "1": ["DONE", "PENDING"], "2": ["FAILED", "-"], "3": ["LOST", "-"], "4": ["RUNNING", "-"],
        "5": ["DONE", "VALID"], "6": ["ABORTED", "-"]}
