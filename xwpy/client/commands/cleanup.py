"""``xwpy delete``: jobs, batches and data, with their replicas; the coordinator removes the blobs
nothing else refers to (README, "Quotas and cleanup")."""

from __future__ import annotations

import click

from xwpy.client.context import JSON_HELP, Settings, emit, pass_settings, usage
from xwpy.protocol import NAME_RE, SHA256_RE


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _say(totals: dict[str, int], as_json: bool) -> None:
    emit(totals, as_json, f"deleted {_plural(totals['jobs'], 'job')}, {_plural(totals['data'], 'data row')}; "
                          f"{_plural(totals['blobs'], 'blob')} removed from the coordinator")


def register(cli: click.Group) -> None:
    @cli.group("delete")
    def delete():
        """Delete your jobs (cancelled first if not final), batches and data, for good."""

    @delete.command("job")
    @click.argument("job_ids", type=int, nargs=-1, required=True)
    @click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
    @pass_settings
    def job(s: Settings, job_ids, as_json):
        """Delete jobs by id, with their replicas and results."""
        _say(_delete(s.client(), [f"/jobs/{jid}" for jid in dict.fromkeys(job_ids)]), as_json)

    @delete.command("batch")
    @click.argument("name")
    @click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
    @pass_settings
    def batch(s: Settings, name, as_json):
        """Delete every job of a batch (an admin: every owner's)."""
        if not NAME_RE.fullmatch(name):
            usage(f"{name!r} is not a batch name (letters, digits, '.', '_', '-')")
        _say(_delete(s.client(), [f"/batches/{name}"]), as_json)

    @delete.command("data")
    @click.argument("sha256s", nargs=-1, required=True)
    @click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
    @pass_settings
    def data(s: Settings, sha256s, as_json):
        """Delete your data by sha256 (an admin: every owner's copy); its blob goes once nothing
        else refers to it (another owner, an app, a job's result, a job not final)."""
        for sha in sha256s:
            if not SHA256_RE.fullmatch(sha):
                usage(f"{sha!r} is not a sha256 (64 lowercase hex digits)")
        _say(_delete(s.client(), [f"/data/{sha}" for sha in dict.fromkeys(sha256s)]), as_json)


def _delete(client, paths: list[str]) -> dict[str, int]:
    """DELETE each path; what their answers removed, summed."""
    totals = {"jobs": 0, "data": 0, "blobs": 0}
    for path in paths:
        for k, v in client.call("DELETE", path).items():
            totals[k] += v
    return totals
