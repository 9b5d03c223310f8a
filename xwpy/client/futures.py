"""The Python API: ``from xwpy import Grid``. Jobs as :class:`concurrent.futures.Future` objects.

One background thread per Grid follows every pending job with one long poll
(``POST /api/v1/jobs/wait``: "answer when any of these is final"), so ten thousand futures cost one
request in flight, not ten thousand. The answer carries small certified results inline (those the
coordinator keeps in its catalog, up to ``protocol.MAX_INLINE_FINALS`` an answer); final jobs are
handed to four fetcher threads that check those, download the others, and settle the futures. Each thread has its own connection, kept alive: a Grid
opens six at most (submitting and cancelling, watching, four fetching) whatever it follows.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import os
import queue
import secrets
import tempfile
import threading
from concurrent.futures import Future, InvalidStateError
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

from xwpy import archive
from xwpy.client import sweep as sweeps
from xwpy.client.api import Client, ClientError, Endpoint, InputResolver, endpoint_from_site
from xwpy.lifecycle import JobStatus, ReplicaStatus
from xwpy.protocol import MAX_JOB_WAIT, MAX_JOBS_PER_SUBMIT

FETCHERS = 4  # threads (and connections) downloading results
SHORT_WAIT = 1  # seconds of the watcher's first long poll after jobs were added (see _watch)
SUBMIT_RETRY_SECONDS = 60.0  # a submission is resent under its key while the coordinator restarts


class JobFailed(Exception):
    """A job ended in ERROR: the coordinator's reason and the stderr tail of its last failed replica."""

    def __init__(self, job_id: int, error: str, stderr_tail: str = "", exit_code: int | None = None):
        super().__init__(job_id, error, stderr_tail, exit_code)
        self.job_id, self.error, self.stderr_tail, self.exit_code = job_id, error, stderr_tail, exit_code

    def __str__(self) -> str:
        text = f"job {self.job_id} ended in ERROR: {self.error or 'no reason recorded'}"
        if self.stderr_tail:
            text += f"\nstderr (exit {self.exit_code}), last lines:\n{self.stderr_tail.rstrip()}"
        return text


class JobNotFound(LookupError):
    """The coordinator cannot show a job any more: deleted, or not the caller's (it says the same
    for both, so that no one learns which ids exist)."""

    def __init__(self, job_id: int):
        super().__init__(job_id)
        self.job_id = job_id

    def __str__(self) -> str:
        return f"job {self.job_id} not found: deleted, or not yours"


class JobFuture(Future):
    """A job's future: its result is the certified output (stdout as bytes, or the path of the
    saved or extracted archive); ``cancel()`` cancels the job on the coordinator (False once the
    job is final there). ``job_id`` is the coordinator's id, ``params`` a sweep's values."""

    def __init__(self, grid: Grid, job_id: int, *, save: Path | None, extract: Path | None,
                 params: dict[str, str] | None = None):
        super().__init__()
        self._grid, self.job_id, self._save, self._extract = grid, job_id, save, extract
        self.params = params or {}

    def cancel(self) -> bool:
        if self.done():
            return self.cancelled()
        return bool(self._grid.cancel([self]))

    def _settle_cancelled(self) -> bool:
        if not Future.cancel(self):
            return False
        self.set_running_or_notify_cancel()  # wakes wait() and as_completed(), as an executor would
        return True

    def __repr__(self) -> str:
        return f"<JobFuture job {self.job_id} {self._state.lower()}>"


class Grid:
    """A coordinator's jobs as futures. ``Grid(url, ca, token)``, or :meth:`from_env`. ``url`` may
    name several coordinators of one site (a list, or comma-separated): each request goes to the
    one that leads (:mod:`xwpy.coordinators`)."""

    def __init__(self, url: str | Sequence[str], ca: str | os.PathLike, token: str):
        self.endpoint = Endpoint(url if isinstance(url, str) else ",".join(url), token, Path(ca))
        self._control = Client(self.endpoint)  # submitting, cancelling (any thread, under _lock)
        self._lock = threading.Lock()  # the control connection, one request at a time
        self._resolver = InputResolver(self._control)
        self._pending: dict[int, JobFuture] = {}
        self._changed = threading.Condition()  # guards _pending and _added; notified when it grows
        self._added = False
        self._closed = False
        self._final: queue.SimpleQueue = queue.SimpleQueue()  # (future, status, digest, inline) for the fetchers
        self._clients: list[Client] = [self._control]
        self.polls = 0  # long polls the watcher made (tests wait on it; a figure for the curious)
        self.downloads = 0  # results downloaded one by one (not carried inline by the wait answer)
        self._threads: list[threading.Thread] = []

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Grid:
        """From XWPY_URL, XWPY_CA and XWPY_TOKEN (as the CLI), or XWPY_SITE, a local site directory."""
        env = os.environ if environ is None else environ
        if env.get("XWPY_URL") and env.get("XWPY_CA") and env.get("XWPY_TOKEN"):
            return cls(env["XWPY_URL"], env["XWPY_CA"], env["XWPY_TOKEN"])
        if env.get("XWPY_SITE"):
            ep = endpoint_from_site(Path(env["XWPY_SITE"]))
            return cls(ep.url, ep.ca, ep.token)
        raise ClientError("no coordinator given: set XWPY_URL, XWPY_CA and XWPY_TOKEN, or XWPY_SITE", code="usage")

    # -- submitting --------------------------------------------------------------------------------

    def submit(self, app: str, *args: Any, inputs: Mapping[str, Any] | None = None, batch: str | None = None,
               save: str | os.PathLike | None = None, extract: str | os.PathLike | None = None,
               after: Iterable[Any] = (), **policy: int) -> JobFuture:
        """One job of ``app`` with ``args`` (each turned into a string). ``inputs``: NAME -> a
        local file (uploaded once), a sha256 already stored, bytes, or another job's future (its
        certified stdout; ``(future, "FILE")``: that file of its result): the job then runs once
        that job is certified, as it does after the futures (or job ids) in ``after`` — and is
        cancelled if one of them is not certified. ``save=DIR``: the result is
        the path of the archive saved as DIR/job-ID.tar; ``extract=DIR``: of DIR/job-ID/ holding
        it unpacked; neither: the job's stdout as bytes. ``policy``: replication, quorum,
        max_replicas, max_errors, priority (among your jobs, higher first)."""
        [future] = self._submit([self._spec(app, args, inputs, policy, after)], batch, save, extract)
        return future

    def map(self, app: str, iterable: Iterable[Any], *, inputs: Mapping[str, Any] | None = None,
            batch: str | None = None, save=None, extract=None, progress: bool = False, after: Iterable[Any] = (),
            **policy: int) -> Iterator[Any]:
        """Like :meth:`concurrent.futures.Executor.map`: one job per item (a tuple or list: several
        arguments), all submitted at once (in batches of the coordinator's largest submission),
        results yielded in input order; an ERROR raises :class:`JobFailed`. Leaving the iterator
        early cancels the jobs not yet done. ``progress``: a tqdm bar (``pip install xwpy[progress]``)."""
        after = list(after)
        specs = [self._spec(app, item if isinstance(item, (tuple, list)) else (item,), inputs, policy, after)
                 for item in iterable]
        futures = self._submit(specs, batch or f"map-{secrets.token_hex(4)}", save, extract)
        bar = progress_bar(futures) if progress else None
        return self._in_order(futures, bar)

    def sweep(self, app: str, *args: str, inputs: Mapping[str, str] | None = None, batch: str | None = None,
              save=None, extract=None, axes: Mapping[str, Any] | None = None, **policy_and_axes: Any) -> list[JobFuture]:
        """One job per combination of the axes' values (as ``xwpy submit --sweep``), ``{NAME}`` in
        ``args`` and in ``inputs`` (names and values) filled in. An axis is a spec as on the command
        line (``"1..100"``, ``"0..1:0.25"``, ``"x,y"``, ``"@values.txt"``) or an iterable of values;
        give them as keywords (``a="1..10"``) or in ``axes``. Each future's ``params`` holds its values."""
        policy = {k: policy_and_axes.pop(k) for k in ("replication", "quorum", "max_replicas", "max_errors", "priority")
                  if k in policy_and_axes}
        given = {**(axes or {}), **policy_and_axes}
        parsed = [sweeps.parse_axis(f"{name}={spec}") if isinstance(spec, str)
                  else sweeps.Axis(name, tuple(str(v) for v in spec)) for name, spec in given.items()]
        templates = [str(a) for a in args] + [f"{n}={v}" for n, v in (inputs or {}).items()]
        combos = list(sweeps.combinations(parsed, templates))
        specs = []
        for values in combos:
            filled = {sweeps.fill(n, values): sweeps.fill(str(v), values) for n, v in (inputs or {}).items()}
            specs.append(self._spec(app, [sweeps.fill(str(a), values) for a in args], filled, policy))
        futures = self._submit(specs, batch or f"sweep-{secrets.token_hex(4)}", save, extract)
        for f, values in zip(futures, combos):
            f.params = values
        return futures

    async def submit_async(self, app: str, *args: Any, **options: Any) -> Any:
        """``await grid.submit_async(...)``: the job's result, without blocking the event loop
        (submitting runs in the loop's default executor). Cancelling the awaiting task cancels the job."""
        loop = asyncio.get_running_loop()
        future = await loop.run_in_executor(None, lambda: self.submit(app, *args, **options))
        return await asyncio.wrap_future(future)

    def cancel(self, futures: Iterable[JobFuture]) -> int:
        """Cancel these futures' jobs on the coordinator, in one request per batch; how many were
        cancelled (a job already final there is not: its future gets its result)."""
        wanted = {f.job_id: f for f in futures if not f.done()}
        ids = list(wanted)
        cancelled = 0
        for start in range(0, len(ids), MAX_JOBS_PER_SUBMIT):
            with self._lock:
                done = self._control.cancel(ids[start:start + MAX_JOBS_PER_SUBMIT])
            for jid in done:
                with self._changed:
                    self._pending.pop(jid, None)
                cancelled += wanted[jid]._settle_cancelled()
        return cancelled

    def _spec(self, app: str, args, inputs, policy, after: Iterable[Any] = ()) -> dict:
        refs, results = [], []
        for name, value in (inputs or {}).items():
            if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], JobFuture):
                results.append({"name": name, "job": str(value[0].job_id), "member": str(value[1])})
            elif isinstance(value, JobFuture):
                results.append({"name": name, "job": str(value.job_id), "member": "stdout"})
            elif isinstance(value, (bytes, bytearray)):
                with self._lock:
                    refs.append({"name": name, "sha256": self._control.put_bytes(bytes(value))["sha256"]})
            else:
                with self._lock:
                    refs.append(self._resolver.resolve(name, os.fspath(value)))
        spec = {"app": app, "args": [str(a) for a in args], "inputs": refs, **policy}
        if results:
            spec["results"] = results
        parents = [str(a.job_id if isinstance(a, JobFuture) else int(a)) for a in after]
        if parents:
            spec["after"] = parents
        return spec

    def _submit(self, specs: list[dict], batch: str | None, save, extract) -> list[JobFuture]:
        if self._closed:
            raise RuntimeError("this Grid is closed")
        save = Path(save) if save is not None else None
        extract = Path(extract) if extract is not None else None
        for d in (save, extract):
            if d is not None:
                d.mkdir(parents=True, exist_ok=True)
        self._start()
        futures = []
        for start in range(0, len(specs), MAX_JOBS_PER_SUBMIT):
            with self._lock:
                ids = self._control.submit(specs[start:start + MAX_JOBS_PER_SUBMIT], batch,
                                           retry_seconds=SUBMIT_RETRY_SECONDS)
            made = [JobFuture(self, jid, save=save, extract=extract) for jid in ids]
            with self._changed:
                self._pending.update((f.job_id, f) for f in made)
                self._added = True
                self._changed.notify_all()
            futures += made
        return futures

    def _in_order(self, futures: list[JobFuture], bar) -> Iterator[Any]:
        try:
            for f in futures:
                yield f.result()
        finally:
            if bar is not None:
                bar.close()
            self.cancel(f for f in futures if not f.done())

    # -- following ---------------------------------------------------------------------------------

    def _start(self) -> None:
        with self._changed:
            if self._threads:
                return
            self._threads = [threading.Thread(target=self._watch, name="xwpy-grid-watch", daemon=True)]
            self._threads += [threading.Thread(target=self._fetch, name=f"xwpy-grid-fetch-{i}", daemon=True)
                              for i in range(FETCHERS)]
        for t in self._threads:
            t.start()

    def _client(self) -> Client:
        c = Client(self.endpoint, timeout=MAX_JOB_WAIT + 30)
        with self._changed:
            self._clients.append(c)
        return c

    def _watch(self) -> None:
        """Long-polls the pending jobs. The wait starts short after jobs were added (a poll already
        parked does not know them yet) and doubles while the set stays the same, up to the
        coordinator's longest: idle, one request a minute. Beyond MAX_JOBS_PER_SUBMIT pending
        jobs (what one request may name), the polls take turns over slices of them, 1 s each."""
        client = self._client()
        wait = SHORT_WAIT
        window = 0  # more pending jobs than one request may name: each poll names the next slice
        while True:
            with self._changed:
                while not self._pending and not self._closed:
                    self._changed.wait()
                if self._closed:
                    return
                if self._added:
                    self._added, wait = False, SHORT_WAIT
                ids = list(self._pending)
            if len(ids) > MAX_JOBS_PER_SUBMIT:
                ids, window = poll_slice(ids, window, MAX_JOBS_PER_SUBMIT)
                wait = SHORT_WAIT  # short, to come round to the other slices
            try:
                answer = client.call("POST", "/jobs/wait", {"ids": ids, "wait": wait})
                final, missing = answer["final"], answer.get("missing", [])
            except ClientError as e:
                if self._closed:
                    return
                if e.code in ("lost", "unreachable", "unavailable", "standby"):
                    with self._changed:  # the coordinator restarting, or taken over: ask again after a pause
                        self._changed.wait(SHORT_WAIT)
                    continue
                self._fail_all(e)
                continue
            self.polls += 1
            wait = min(wait * 2, MAX_JOB_WAIT) if not (final or missing) else SHORT_WAIT
            for jid in missing:  # deleted, or not ours: that future fails, the others go on
                with self._changed:
                    future = self._pending.pop(jid, None)
                if future is not None:
                    _settle(future, exception=JobNotFound(jid))
            for item in final:
                with self._changed:
                    future = self._pending.pop(item["id"], None)
                if future is not None:
                    self._final.put((future, item["status"], item.get("result_sha256"), item.get("result")))

    def _fail_all(self, error: Exception) -> None:
        """The coordinator refused the watch itself (a token revoked, say): every pending future fails."""
        with self._changed:
            futures, self._pending = list(self._pending.values()), {}
        for f in futures:
            _settle(f, exception=error)

    def _fetch(self) -> None:
        client = self._client()
        while True:
            item = self._final.get()
            if item is None:
                return
            future, status, digest, inline = item
            if future.done():
                continue
            try:
                if status == JobStatus.COMPLETED.value:
                    _settle(future, result=_output(client, future, digest, _inline(inline, digest)))
                elif status == JobStatus.CANCELLED.value:
                    future._settle_cancelled()
                else:
                    _settle(future, exception=_failure(client.job(future.job_id)))
            except Exception as e:  # a download that failed: the future says why
                _settle(future, exception=e)

    def _downloaded(self) -> None:
        with self._changed:
            self.downloads += 1

    # -- the end -----------------------------------------------------------------------------------

    @property
    def connections(self) -> int:
        """Connections opened so far by this Grid's clients (a bounded number, whatever it follows)."""
        with self._changed:
            return sum(c.connections for c in self._clients)

    def close(self) -> None:
        """Stop following jobs (the jobs themselves go on; pending futures stay pending)."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()
        for _ in range(FETCHERS):
            self._final.put(None)
        for c in self._clients:
            c.close()

    def __enter__(self) -> Grid:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def poll_slice(ids: list[int], start: int, limit: int) -> tuple[list[int], int]:
    """The ``limit`` ids from ``start`` (wrapping round) and where the next slice starts: taken in
    turn, the slices name every id within ceil(len(ids) / limit) polls."""
    start %= len(ids)
    return (ids[start:] + ids[:start])[:limit], start + limit


def progress_bar(futures: list[Future]):
    """A tqdm bar (in a notebook, its widget) counting the futures as they end."""
    try:
        from tqdm.auto import tqdm
    except ImportError:
        raise ClientError("progress=True needs tqdm: pip install 'xwpy[progress]'", code="usage") from None
    bar = tqdm(total=len(futures), unit="job")
    for f in futures:
        f.add_done_callback(lambda _f: bar.update(1))
    return bar


def _settle(future: JobFuture, *, result: Any = None, exception: BaseException | None = None) -> None:
    try:
        if exception is not None:
            future.set_exception(exception)
        else:
            future.set_result(result)
    except InvalidStateError:  # cancelled meanwhile
        pass


def _inline(encoded: str | None, digest: str | None) -> bytes | None:
    """The result the wait answer carried, if it hashes to the certified digest (else it is downloaded)."""
    if encoded is None or digest is None:
        return None
    try:
        data = base64.b64decode(encoded, validate=True)
    except ValueError:
        return None
    return data if hashlib.sha256(data).hexdigest() == digest else None


def _output(client: Client, future: JobFuture, digest: str | None, inline: bytes | None = None) -> Any:
    """The future's result: the archive saved, extracted, or its stdout; from ``inline`` (checked
    bytes) when given, else downloaded."""
    jid = future.job_id

    def fetch(dest: Path) -> None:
        if inline is None:
            future._grid._downloaded()
            client.result(jid, dest, digest)
        else:
            part = dest.with_name(f".{dest.name}.part")
            part.write_bytes(inline)
            part.replace(dest)

    if future._save is not None or future._extract is not None:
        if future._save is not None:
            dest = future._save / f"job-{jid}.tar"
            fetch(dest)
        if future._extract is None:
            return dest
        target = future._extract / f"job-{jid}"
        with tempfile.TemporaryDirectory(prefix="xwpy-result-") as tmp:
            src = dest if future._save is not None else Path(tmp) / "result.tar"
            if future._save is None:
                fetch(src)
            target.mkdir(parents=True, exist_ok=True)
            archive.extract(src, target)
        return target
    out = io.BytesIO()
    if inline is not None:
        archive.copy_member(inline, "stdout", out)
        return out.getvalue()
    with tempfile.TemporaryDirectory(prefix="xwpy-result-") as tmp:
        dest = Path(tmp) / "result.tar"
        fetch(dest)
        archive.copy_member(dest, "stdout", out)
        return out.getvalue()


def _failure(job: dict) -> JobFailed:
    failed = [r for r in job.get("replicas", ()) if r["status"] == ReplicaStatus.FAILED.value and r["stderr_tail"]]
    last = failed[-1] if failed else {}
    return JobFailed(job["id"], job.get("error") or job["status"], last.get("stderr_tail") or "", last.get("exit_code"))


__all__ = ["Grid", "JobFailed", "JobFuture", "JobNotFound", "poll_slice", "progress_bar"]
