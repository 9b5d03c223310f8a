"""A small synchronous client of the coordinator's API, for the CLI and scripts.

TLS with the site CA pinned (never the system store), one persistent connection, JSON in and out.
Every failure becomes a :class:`ClientError` with the server's error code and message. An endpoint
may name several coordinators (comma-separated URLs): a request that cannot connect to one, or
hears it is a standby, goes to the next at once (:class:`xwpy.coordinators.Rotation`).
"""

from __future__ import annotations

import http.client
import io
import json
import os
import re
import secrets
import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Iterator
from urllib.parse import quote, urlencode, urlsplit

from xwpy.client.errors import ClientError  # noqa: F401 - part of this module's API
from xwpy.protocol import API_PREFIX, loads


SHA_RE = re.compile(r"[0-9a-f]{64}")
UPLOAD_RETRIES = 5  # attempts in a row that move no byte before an upload fails


@dataclass(frozen=True)
class Endpoint:
    url: str
    token: str
    ca: Path


def endpoint_from_site(site_dir: Path) -> Endpoint:
    """Connection settings of a local site: its running coordinator, its CA, its admin token."""
    site_dir = Path(site_dir)
    run = site_dir / "run" / "coordinator.json"
    try:
        url = json.loads(run.read_text())["url"]
    except FileNotFoundError:
        raise ClientError(f"no coordinator running for site {site_dir} (missing {run})", code="unreachable") from None
    except (ValueError, KeyError):
        raise ClientError(f"{run} is damaged") from None
    token_file = site_dir / "admin.token"
    try:
        token = token_file.read_text().strip()
    except OSError as e:
        raise ClientError(f"cannot read {token_file}: {e.strerror}") from None
    return Endpoint(url, token, site_dir / "ca.pem")


class _Answered:
    """An answer whose body was read already (a 503: was it a standby's?), readable again."""

    def __init__(self, resp: http.client.HTTPResponse, raw: bytes):
        self.status, self.reason, self._headers, self._body = resp.status, resp.reason, resp, io.BytesIO(raw)

    def getheader(self, name: str, default: str | None = None) -> str | None:
        return self._headers.getheader(name, default)

    def read(self, n: int = -1) -> bytes:
        return self._body.read(n)

    def rewind(self) -> None:
        self._body.seek(0)


MESSAGE_STANDBY = "a standby coordinator"


def _standby(raw: bytes) -> bool:
    try:
        err = loads(raw)
    except ValueError:
        return False
    return isinstance(err, dict) and err.get("error") == "standby"


class Client:
    def __init__(self, endpoint: Endpoint, *, timeout: float = 60.0):
        from xwpy.coordinators import BadURL, Rotation

        try:
            self.coordinators = Rotation(endpoint.url)
        except BadURL as e:
            raise ClientError(f"coordinator URL {e}", code="usage") from None
        if not endpoint.ca.is_file():
            raise ClientError(f"CA certificate {endpoint.ca} not found")
        token = endpoint.token
        if not token.isascii() or not token.isprintable() or " " in token or len(token) > 1024:
            raise ClientError("the token is not a bearer token (printable ASCII, no spaces): check --token or XWPY_TOKEN",
                              code="usage")
        self.endpoint = endpoint
        self._timeout = timeout
        from xwpy import pki  # cryptography and twisted: not loaded by commands that never connect

        try:
            self._ssl = pki.client_ssl_context(endpoint.ca)
        except (ssl.SSLError, OSError) as e:
            raise ClientError(f"CA certificate {endpoint.ca} cannot be used: {e}") from None
        self._conn: http.client.HTTPSConnection | None = None
        self.connections = 0  # opened so far (a connection kept alive serves many requests)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # -- transport -------------------------------------------------------------------------------

    def _connection(self) -> http.client.HTTPSConnection:
        if self._conn is None:
            self.connections += 1
            parts = urlsplit(self.coordinators.current)
            self._conn = http.client.HTTPSConnection(parts.hostname, parts.port or 443, timeout=self._timeout,
                                                     context=self._ssl)
        return self._conn

    def _request(self, method: str, path: str, body: bytes | BinaryIO | None = None, *,
                 query: dict | None = None, content_type: str = "application/json",
                 length: int | None = None, headers: dict | None = None) -> http.client.HTTPResponse:
        """One request to the coordinator asked now; to the next at once if that one cannot be
        reached or is a standby (nothing happened there); after a lost answer, the next request
        goes to the next one (this one may have acted on it: the caller decides)."""
        error: ClientError | None = None
        for url in self.coordinators.attempts():
            try:
                resp = self._request_one(url, method, path, body, query=query, content_type=content_type,
                                         length=length, headers=headers)
            except ClientError as e:
                if e.code in ("unreachable", "lost"):
                    self.coordinators.failed(url)
                if e.code != "unreachable" or not self._resendable(body):
                    raise
                error = e
                continue
            if resp.status != 503:
                return resp
            answer = _Answered(resp, resp.read())
            if not _standby(answer.read()) or not self._resendable(body):
                answer.rewind()
                return answer  # type: ignore[return-value]
            self.coordinators.failed(url)
            self.close()
            error = ClientError(MESSAGE_STANDBY, status=503, code="standby")
            last = answer
        if error is not None and error.code == "standby":
            last.rewind()
            return last  # type: ignore[return-value]  # every one a standby: their answer
        if len(self.coordinators) == 1:
            raise error
        raise ClientError(f"no coordinator answered at {self.coordinators} (last: {error.message})",
                          code="unreachable")

    @staticmethod
    def _resendable(body) -> bool:
        return body is None or isinstance(body, bytes)

    def _request_one(self, where: str, method: str, path: str, body: bytes | BinaryIO | None = None, *,
                     query: dict | None = None, content_type: str = "application/json",
                     length: int | None = None, headers: dict | None = None) -> http.client.HTTPResponse:
        url = API_PREFIX + path + ("?" + urlencode({k: v for k, v in query.items() if v is not None}) if query else "")
        headers = {"Authorization": f"Bearer {self.endpoint.token}", **(headers or {})}
        if body is not None:
            headers["Content-Type"] = content_type
            headers["Content-Length"] = str(length if length is not None else len(body))  # type: ignore[arg-type]
        # Once a whole request went out, the server may have acted on it, whatever fails next: that
        # is "lost" (resend it under its key), never "unreachable" (nothing happened, a new request
        # is safe) — else a submission made just before a coordinator died would be made twice.
        delivered = False
        for attempt in (1, 2):  # a kept-alive connection the server closed is retried once
            conn = self._connection()
            sent = False
            try:
                conn.request(method, url, body=body, headers=headers)
                sent = True
                return conn.getresponse()
            except ssl.SSLCertVerificationError as e:
                self.close()
                raise ClientError(f"TLS: the coordinator's certificate is not from this site's CA ({e.verify_message})",
                                  code="tls") from None
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError, ssl.SSLEOFError):
                # (SSLEOFError: a kept-alive connection the coordinator closed while idle, seen
                # when the request is written: a client kept open between jobs, the Python API's)
                self.close()
                delivered = delivered or sent
                if attempt == 2 or not (body is None or isinstance(body, bytes)):
                    raise ClientError(f"connection to {where} lost", code="lost") from None
            except (OSError, http.client.HTTPException) as e:
                self.close()
                if delivered or sent:
                    raise ClientError(f"connection to {where} lost ({e})", code="lost") from None
                raise ClientError(f"cannot reach coordinator at {where}: {e}", code="unreachable") from None
        raise AssertionError("unreachable")

    def _check(self, resp: http.client.HTTPResponse) -> http.client.HTTPResponse:
        if resp.status < 400:
            return resp
        raw = resp.read()
        try:
            err = loads(raw)
            raise ClientError(err.get("message", ""), status=resp.status, code=err.get("error", "error"), field=err.get("field"))
        except (ValueError, AttributeError):
            raise ClientError(raw[:200].decode("utf-8", "replace"), status=resp.status, code="http") from None

    def call(self, method: str, path: str, payload: Any = None, **query) -> Any:
        body = None if payload is None else json.dumps(payload).encode()
        resp = self._check(self._request(method, path, body, query=query or None))
        raw = resp.read()
        try:
            return loads(raw) if raw else None
        except ValueError:
            raise ClientError("the coordinator sent malformed JSON", code="malformed") from None

    # -- endpoints -------------------------------------------------------------------------------

    def ping(self) -> dict:
        return self.call("GET", "/ping")

    def health(self) -> tuple[int, dict]:
        """The coordinator's health: (200 or 503, the checks), a 503 being an answer, not an error."""
        resp = self._request("GET", "/health")
        if resp.status not in (200, 503):
            self._check(resp)
        try:
            return resp.status, loads(resp.read())
        except ValueError:
            raise ClientError("the coordinator sent malformed JSON", code="malformed") from None

    def metrics(self) -> str:
        """The coordinator's metrics, Prometheus text format (admins)."""
        return self._check(self._request("GET", "/metrics")).read().decode()

    def me(self) -> dict:
        return self.call("GET", "/users/me")

    def add_user(self, login: str, role: str = "user", group: str = "", expires_at: float | None = None) -> dict:
        return self.call("POST", "/users", {"login": login, "role": role, "group": group, "expires_at": expires_at})

    def set_disabled(self, login: str, disabled: bool) -> dict:
        return self.call("POST", f"/users/{quote(login, safe='')}/{'disable' if disabled else 'enable'}")

    def rotate_token(self, login: str, expires_at: float | None = None) -> dict:
        """A new token for ``login`` (in ``["token"]``); the old one is refused from now on."""
        return self.call("POST", f"/users/{quote(login, safe='')}/token", {"expires_at": expires_at})

    def revoke_host(self, host_id: int) -> dict:
        return self.call("POST", f"/hosts/{host_id}/revoke")

    def users(self) -> list[dict]:
        return self.call("GET", "/users")["users"]

    def register_app(self, **spec) -> dict:
        return self.call("POST", "/apps", {k: v for k, v in spec.items() if v is not None})

    def add_version(self, name: str, **spec) -> dict:
        return self.call("POST", f"/apps/{name}/versions", {k: v for k, v in spec.items() if v is not None})

    def apps(self) -> list[dict]:
        return self.call("GET", "/apps")["apps"]

    def app(self, name: str) -> dict:
        return self.call("GET", f"/apps/{name}")

    def put_data(self, path: Path, *, access: str = "private", name: str = "") -> dict:
        """Upload a file through an upload session: after a cut, the rest is sent from where the
        coordinator is (a cut costs one chunk: at most 8 MiB, or a 32nd of the file)."""
        from xwpy.archive import sha256_file
        from xwpy.worker.transfer import chunk_size

        digest, size = sha256_file(path)
        spec = {"sha256": digest, "size": size, "access": access}
        if name:
            spec["name"] = name
        session = self._retrying(lambda: self.call("POST", "/uploads", spec))
        url = f"/uploads/{session['upload']}"
        chunk = chunk_size(size)
        stalled = 0
        from xwpy.backoff import Backoff

        backoff = Backoff(0.5, 10.0)
        with open(path, "rb") as f:
            while not session["complete"]:
                offset = session["offset"]
                f.seek(offset)
                body = f.read(min(chunk, size - offset))
                try:
                    resp = self._request("PATCH", url, body, content_type="application/offset+octet-stream",
                                         headers={"Upload-Offset": str(offset)})
                    if resp.status == 409:  # not where the coordinator is: ask it
                        resp.read()
                        session = self.call("GET", url)
                        continue
                    session = json.loads(self._check(resp).read())
                    stalled = 0
                    backoff.reset()
                except ClientError as e:
                    if e.code not in ("lost", "unreachable", "unavailable"):
                        raise
                    stalled += 1
                    if stalled > UPLOAD_RETRIES:
                        raise ClientError(f"upload of {path} failed {stalled} times in a row at byte {offset}: "
                                          f"{e.message}", code=e.code) from None
                    time.sleep(backoff.next())  # back-off between attempts, not synchronisation
                    session = self._retrying(lambda: self.call("GET", url))
        return session["data"]

    def _retrying(self, attempt):
        """``attempt()``, tried again (a few times, with back-off) while the connection is lost."""
        for n in range(UPLOAD_RETRIES + 1):
            try:
                return attempt()
            except ClientError as e:
                if e.code not in ("lost", "unreachable", "unavailable") or n == UPLOAD_RETRIES:
                    raise
                time.sleep(0.5 * (n + 1))  # back-off between attempts, not synchronisation

    def put_bytes(self, data: bytes, *, access: str = "private", name: str = "") -> dict:
        import hashlib

        digest = hashlib.sha256(data).hexdigest()
        resp = self._request("PUT", f"/data/{digest}", data, query={"access": access, "name": name or None},
                             content_type="application/octet-stream")
        return json.loads(self._check(resp).read())

    def get_data(self, sha256: str, dest: Path) -> int:
        return self._download(f"/data/{sha256}", dest, expect=sha256)

    def data(self) -> list[dict]:
        return self.call("GET", "/data")["data"]

    def submit(self, jobs: list[dict], batch: str | None = None, *, retry_seconds: float = 0.0) -> list[int]:
        """Submit jobs; their ids. The submission carries a key of its own, so sending it again
        after a lost answer returns the same jobs instead of making new ones: for ``retry_seconds``
        it is resent while the answer is lost, the coordinator busy (503) or only standbys answer (a
        takeover under way: a standby acts on nothing) — or, after that, away (restarting); a
        coordinator that cannot be reached at the first attempt is an error at once."""
        payload = {"jobs": jobs, "batch": batch, "request": secrets.token_urlsafe(16)}
        deadline = time.monotonic() + retry_seconds
        from xwpy.backoff import Backoff

        backoff = Backoff(0.2, 5.0)
        pause = backoff.next()
        retryable = {"lost", "unavailable", "standby"}
        while True:
            try:
                return self.call("POST", "/jobs", payload)["ids"]
            except ClientError as e:
                if e.code not in retryable or time.monotonic() + pause > deadline:
                    raise
                retryable.add("unreachable")
            time.sleep(pause)  # back-off between attempts, not synchronisation
            pause = backoff.next()

    def jobs(self, *, batch: str | None = None, status: str | None = None, limit: int = 1000) -> Iterator[dict]:
        after = 0
        while True:
            page = self.call("GET", "/jobs", batch=batch, status=status, after=after, limit=min(limit, 1000))["jobs"]
            yield from page
            if len(page) < min(limit, 1000):
                return
            after = page[-1]["id"]

    def job(self, job_id: int, wait: int = 0) -> dict:
        """A job with its replicas; with ``wait``, once it is final (or after ``wait`` seconds)."""
        return self.call("GET", f"/jobs/{job_id}", wait=wait or None)

    def summary(self, batch: str | None = None) -> dict[str, int]:
        return self.call("GET", "/jobs/summary", batch=batch)["counts"]

    def result(self, job_id: int, dest: Path, sha256: str | None = None) -> int:
        """Download the job's certified result to ``dest``, checked against its digest (asked of
        the coordinator unless given)."""
        expect = sha256 or self.job(job_id).get("result_sha256")
        return self._download(f"/jobs/{job_id}/result", dest, expect=expect)

    def cancel(self, ids: list[int] = (), batch: str | None = None) -> list[int]:
        return self.call("POST", "/jobs/cancel", {"ids": list(ids), "batch": batch})["cancelled"]

    def hosts(self) -> list[dict]:
        return self.call("GET", "/hosts")["hosts"]

    def _download(self, path: str, dest: Path, expect: str | None) -> int:
        """Stream to ``dest`` via ``.DEST.part``; keep it only if its sha256 is the expected one.

        A download cut off midway resumes where it stopped (``Range``), for as long as attempts
        bring bytes; a part left by an earlier, interrupted run is resumed too. (The coordinator
        cuts off a download whose stored copy fails its own check: the next answer says why.)"""
        import hashlib

        if not dest.name or dest.is_dir():
            raise ClientError(f"{str(dest)!r} is not a file name to save to")
        if dest.exists() and not dest.is_file():
            # The download is renamed into place: it would replace a device or a FIFO, not write to it.
            raise ClientError(f"{dest} exists and is not a regular file")
        tmp = dest.with_name(f".{dest.name}.part")
        h, size = hashlib.sha256(), 0
        if expect is not None and tmp.is_file():  # what an interrupted run left: resumed
            with open(tmp, "rb") as f:
                while block := f.read(1 << 20):
                    h.update(block)
                    size += len(block)
        else:
            tmp.unlink(missing_ok=True)
        failures = 0
        while True:
            resp = self._request("GET", path, headers={"Range": f"bytes={size}-"} if size else None)
            if resp.status == 416:  # the part is as long as the data (complete), or longer (wrong)
                resp.read()
                if (resp.getheader("content-range") or "").rpartition("/")[2] == str(size):
                    break
                h, size = hashlib.sha256(), 0
                continue
            self._check(resp)
            if resp.status == 206 and _range_start(resp.getheader("content-range")) == size:
                mode = "ab"
            else:  # the whole (a 200; or a range not where we are): start over
                h, size, mode = hashlib.sha256(), 0, "wb"
            announced = resp.getheader("content-length")
            before = size
            try:
                out = open(tmp, mode)
            except OSError as e:
                self.close()
                raise ClientError(f"cannot write {dest}: {e.strerror}") from None
            with out:
                try:
                    while block := resp.read(1 << 20):
                        h.update(block)
                        out.write(block)
                        size += len(block)
                    cut = announced is not None and announced.isdigit() and size - before != int(announced)
                    why = f"{size - before} of {announced} bytes"
                except (ssl.SSLError, ConnectionError, TimeoutError, http.client.HTTPException) as e:
                    cut, why = True, f"{type(e).__name__}: {e}"
                except OSError as e:  # writing: a full disk, a file removed under us
                    tmp.unlink(missing_ok=True)
                    self.close()
                    raise ClientError(f"cannot write {dest}: {e.strerror or e}") from None
            if not cut:
                break
            self.close()
            failures = 0 if size > before else failures + 1
            if failures >= 2:
                raise ClientError(f"the download of {path} was cut off ({why})", code="cut_off")
        if expect is not None and h.hexdigest() != expect:
            tmp.unlink()
            raise ClientError(f"downloaded content hashes to {h.hexdigest()}, not {expect}", code="digest_mismatch")
        os.replace(tmp, dest)
        return size


class InputResolver:
    """Turns NAME=VALUE inputs into data references, uploading local files once each."""

    def __init__(self, client: Client):
        self.client = client
        self._uploaded: dict[Path, str] = {}

    def resolve(self, name: str, value: str) -> dict:
        if value.startswith("@"):  # @JOB[:FILE]: a file of the certified result of a job it runs after
            job, _, member = value[1:].partition(":")
            if not job:
                raise ClientError(f"input {name!r}: {value[:200]!r}: expected @JOB[:FILE] (a job id or key)")
            return {"name": name, "job": job, "member": member or "stdout"}
        if SHA_RE.fullmatch(value):
            return {"name": name, "sha256": value}
        path = Path(value).expanduser()
        try:
            is_file = path.is_file()
        except OSError as e:  # a name too long, say
            raise ClientError(f"input {name!r}: {value[:200]!r}: {e.strerror}") from None
        if not is_file:
            raise ClientError(f"input {name!r}: {value[:200]!r} is neither a sha256 nor a file")
        key = path.resolve()
        if key not in self._uploaded:
            self._uploaded[key] = self.client.put_data(path)["sha256"]
        return {"name": name, "sha256": self._uploaded[key]}


def graph_spec(spec: dict) -> dict:
    """A job spec as sent: inputs from jobs' results (``job``) under ``results``, ``after`` as strings."""
    inputs = spec.get("inputs") or []
    out = {**spec, "inputs": [i for i in inputs if "job" not in i]}
    results = [i for i in inputs if "job" in i]
    if results:
        out["results"] = [*spec.get("results", ()), *results]
    if "after" in spec:
        after = spec["after"]
        if not isinstance(after, list):
            after = [after]
        out["after"] = [str(a) for a in after]
    return out


def translate_keys(spec: dict, ids: dict[str, int]) -> dict:
    """Refer by id to the jobs of earlier submissions that ``spec`` names by key."""
    out = dict(spec)
    if "after" in out:
        out["after"] = [str(ids.get(a, a)) for a in out["after"]]
    if "results" in out:
        out["results"] = [{**r, "job": str(ids.get(r["job"], r["job"]))} for r in out["results"]]
    return out


def _range_start(value: str | None) -> int | None:
    """The first byte of ``Content-Range: bytes FIRST-LAST/SIZE``; None if absent or malformed."""
    unit, _, rest = (value or "").partition(" ")
    first = rest.partition("-")[0]
    return int(first) if unit == "bytes" and first.isdigit() else None


def chain_task(site_dir: Path, task_id: int) -> dict:
    """The site's oracle's record of one chain task (``GET /api/v1/chain/tasks/{id}``, admins),
    asked with a client of its own: callers may ask from several threads at once."""
    client = Client(endpoint_from_site(site_dir))
    try:
        return client.call("GET", f"/chain/tasks/{int(task_id)}")
    finally:
        client.close()


def wait_until(predicate, timeout: float, interval: float = 0.2) -> bool:
    """Poll ``predicate`` until true or ``timeout`` seconds pass (for scripts polling a coordinator)."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


__all__ = ["Client", "ClientError", "Endpoint", "InputResolver", "endpoint_from_site", "wait_until"]
