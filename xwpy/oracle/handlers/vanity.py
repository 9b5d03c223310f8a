"""Vanity addresses ordered on chain (``xwpy/apps/vanitygen``), split-key only.

Params (what VanityConsumer sends): ``{"prefix": "1x", "pubkey": "02..."}`` (optionally
``"icase": true``). The grid only ever sees the requester's public key Q: a unit's match is a
partial key k such that a transform of ``kG + Q`` has a matching address, and only the holder of
q (``Q = qG``) can turn it into the spending key. A search without a public key is refused: its
private key would be published on chain.

The search is ``xwpy.apps.vanitygen.search``'s plan (random base scalar, fixed-size units; unit i
covers ``base + i * unit_points``...), run as grid jobs of the oracle's ``oracle-vanitygen`` app,
certified by the app's verifier (one verified match certifies a unit; "no match" needs two
agreeing replicas). The handler keeps about one unit per live host in flight, re-checks every
claimed match with the verifier, stops at the first verified one (the oracle cancels the rest)
and adds no unit that could not finish before the deadline.

On chain: ``{"address":..., "candidate":..., "partial_key":...}`` (about 150 bytes; the
requester combines it with q: ``xwpy vanity combine``); the committed digest is that of the
unit's certified result archive on the grid.
"""

from __future__ import annotations

import json
from typing import Mapping

from xwpy.apps.vanitygen.grid import COMMAND, VALIDATOR
from xwpy.apps.vanitygen.prefix import PrefixError
from xwpy.apps.vanitygen.search import SearchPlan, SearchSpec, plan_search
from xwpy.apps.vanitygen.secp256k1 import N
from xwpy.apps.vanitygen.verify import verify
from xwpy.chain.deploy import DEMO_APPS
from xwpy.lifecycle import JobStatus
from xwpy.oracle.handlers.base import BadParams, Context, Decision, Fail, GridApp, JobView, Submit, Unit, Wait, done_or_fail
from xwpy.verify import Verdict

RATE = 400_000.0  # keys/s assumed per worker when sizing units (the pure-Python kernel)
MIN_UNIT_SECONDS = 2.0
MAX_UNIT_SECONDS = 30.0
MAX_PARALLEL = 32
RESULT_FILE = "result.json"


def parse_params(params: bytes) -> SearchSpec:
    try:
        value = json.loads(params.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise BadParams(f"params are not UTF-8 JSON: {e}") from None
    if not isinstance(value, dict) or not {"prefix", "pubkey"} <= set(value) <= {"prefix", "pubkey", "icase"}:
        raise BadParams('params must be a JSON object {"prefix": ..., "pubkey": ...} (and optionally "icase")')
    prefix, pubkey, icase = value["prefix"], value["pubkey"], value.get("icase", False)
    if not isinstance(prefix, str) or not isinstance(icase, bool):
        raise BadParams("prefix must be a string and icase a boolean")
    if not isinstance(pubkey, str) or len(pubkey) != 66:
        raise BadParams("pubkey must be a compressed public key: 66 hexadecimal digits")
    try:
        spec = SearchSpec(prefix, icase=icase, compressed=True, pubkey=bytes.fromhex(pubkey))
        spec.target()
    except PrefixError as e:
        raise BadParams(f"prefix {prefix[:40]!r}: {e}") from None
    except ValueError as e:
        raise BadParams(f"pubkey: {e}") from None
    return spec


def _plan(spec: SearchSpec, state: Mapping) -> SearchPlan:
    return SearchPlan(spec, int(state["base"], 16), int(state["unit_points"]))


def unit_seconds(plan: SearchPlan) -> float:
    return plan.keys_per_unit / RATE


def onchain_result(record: dict) -> bytes:
    """What goes on chain: enough to combine with q, nothing the grid's archive does not prove."""
    small = {"address": record["address"], "candidate": record["candidate"], "partial_key": record["partial_key"]}
    return json.dumps(small, sort_keys=True, separators=(",", ":")).encode("ascii")


class VanityHandler:
    app = "vanitygen"
    price = DEMO_APPS["vanitygen"]
    grid_app = GridApp(
        name="oracle-vanitygen",
        command=tuple(COMMAND),
        validator=VALIDATOR,
        replication=2,
        quorum=2,
        limits={"wall_seconds": 600, "cpu_seconds": 600, "memory_bytes": 512 << 20, "output_bytes": 1 << 20,
                "processes": 8},
    )

    def start(self, params: bytes, ctx: Context) -> tuple[dict, Decision]:
        spec = parse_params(params)
        plan = plan_search(spec, keys_per_second=RATE, min_unit_seconds=MIN_UNIT_SECONDS,
                           max_unit_seconds=MAX_UNIT_SECONDS, base=ctx.seed % N)
        state = {"base": f"{plan.base:064x}", "unit_points": plan.unit_points, "issued": 0}
        if ctx.time_left < unit_seconds(plan):
            return state, Fail(f"the deadline leaves no time for one unit of work ({unit_seconds(plan):.0f} s)")
        return state, self._more(plan, state, [], set(), ctx) or Fail("no unit to start")

    def step(self, params: bytes, state: Mapping, jobs: list[JobView], ctx: Context) -> Decision:
        spec = parse_params(params)
        plan = _plan(spec, state)
        found: list[tuple[int, JobView, dict]] = []
        settled: set[str] = set()  # units with an accepted answer
        for job in jobs:
            if job.status != JobStatus.COMPLETED.value:
                continue
            args = plan.unit_args(int(job.tag))
            data = (job.files or {}).get(RESULT_FILE)
            verdict = verify(args, {RESULT_FILE: data}) if data is not None else Verdict.REJECTED
            if verdict is Verdict.VERIFIED:
                found.append((int(job.tag), job, json.loads(data)))
            if verdict is not Verdict.REJECTED:
                settled.add(job.tag)
        if found:
            _, job, record = min(found, key=lambda f: f[0])
            return done_or_fail(job, onchain_result(record))
        failures = sum(1 for j in jobs if j.final and j.tag not in settled)
        if failures > 2 * MAX_PARALLEL:
            return Fail(f"{failures} units failed or returned results that do not verify")
        more = self._more(plan, dict(state), jobs, settled, ctx)
        if more is not None:
            return more
        if any(not j.final for j in jobs):
            return Wait()
        searched = len(settled) * plan.keys_per_unit
        return Fail(f"no match within the time the deadline left ({searched:,} keys searched)")

    def _more(self, plan: SearchPlan, state: dict, jobs: list[JobView], settled: set[str], ctx: Context) -> Submit | None:
        """Units to add: failed ones again first, then new ones, up to one per live host."""
        if ctx.time_left < unit_seconds(plan):
            return None
        active = {j.tag for j in jobs if not j.final}
        want = max(2, min(MAX_PARALLEL, ctx.hosts)) - len(active)
        if want <= 0:
            return None
        retry = sorted({j.tag for j in jobs if j.final} - settled - active, key=int)[:want]
        issued = int(state["issued"])
        fresh = list(range(issued, issued + want - len(retry)))
        units = tuple(Unit(tag, tuple(plan.unit_args(int(tag)))) for tag in retry) + tuple(
            Unit(str(i), tuple(plan.unit_args(i))) for i in fresh)
        return Submit(units, {**state, "issued": issued + len(fresh)})
