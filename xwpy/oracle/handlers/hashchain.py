"""The simplest handler: one deterministic job, certified by a quorum, its output on chain.

Params (JSON): ``{"text": "...", "rounds": N}``. Result: ``{"sha256":"<hex>"}`` where the hex
is sha256 applied N times to the UTF-8 text (``xwpy/apps/hashchain``). A job that fails is tried
again, up to ``ATTEMPTS`` jobs in all and while the deadline allows.
"""

from __future__ import annotations

import json
import re
from typing import Mapping

from xwpy.lifecycle import JobStatus
from xwpy.oracle.handlers.base import BadParams, Context, Decision, Fail, GridApp, JobView, Submit, Unit, Wait, done_or_fail

MAX_TEXT = 512
MAX_ROUNDS = 10_000_000
ATTEMPTS = 3
_HEX64 = re.compile(rb"[0-9a-f]{64}\n")


def parse_params(params: bytes) -> tuple[str, int]:
    try:
        value = json.loads(params.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise BadParams(f"params are not UTF-8 JSON: {e}") from None
    if not isinstance(value, dict) or set(value) != {"text", "rounds"}:
        raise BadParams('params must be a JSON object {"text": ..., "rounds": ...}')
    text, rounds = value["text"], value["rounds"]
    if not isinstance(text, str) or len(text) > MAX_TEXT:
        raise BadParams(f"text must be a string of at most {MAX_TEXT} characters")
    if not isinstance(rounds, int) or isinstance(rounds, bool) or not 1 <= rounds <= MAX_ROUNDS:
        raise BadParams(f"rounds must be an integer in [1, {MAX_ROUNDS}]")
    return text, rounds


class HashChainHandler:
    app = "hashchain"
    price = 1_000_000_000  # 1 RLC
    grid_app = GridApp(
        name="oracle-hashchain",
        command=("{python}", "-m", "xwpy.apps.hashchain.hashchain", "{args}"),
        replication=2,
        quorum=2,
    )

    def _unit(self, params: bytes, attempt: int) -> Unit:
        text, rounds = parse_params(params)
        return Unit(str(attempt), (str(rounds), text.encode("utf-8").hex()))

    def start(self, params: bytes, ctx: Context) -> tuple[dict, Decision]:
        return {}, Submit((self._unit(params, 0),))

    def step(self, params: bytes, state: Mapping, jobs: list[JobView], ctx: Context) -> Decision:
        for job in jobs:
            if job.status == JobStatus.COMPLETED.value:
                out = (job.files or {}).get("stdout", b"")
                if not _HEX64.fullmatch(out):
                    return Fail(f"job {job.job_id} certified an output that is not a sha256: {out[:80]!r}")
                return done_or_fail(job, b'{"sha256":"' + out[:64] + b'"}')
        if any(not j.final for j in jobs):
            return Wait()
        last = jobs[-1] if jobs else None
        why = f"job {last.job_id} {last.status.lower()}: {last.error or ''}".strip() if last else "no job"
        if len(jobs) >= ATTEMPTS:
            return Fail(f"{len(jobs)} attempts failed; last {why}")
        if ctx.time_left <= 0:
            return Fail(f"no time left before the deadline to try again; last {why}")
        return Submit((self._unit(params, len(jobs)),))
