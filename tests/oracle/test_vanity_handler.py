"""The vanity handler's decisions, fed with real work-unit results (computed here by the app's
own unit program), forged ones, failures and deadlines."""

from __future__ import annotations

import dataclasses
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xwpy.apps.vanitygen import combine
from xwpy.apps.vanitygen.search import SearchPlan
from xwpy.apps.vanitygen.unit import run_args
from xwpy.oracle.handlers.base import MAX_RESULT, BadParams, Context, Done, Fail, JobView, Submit, Wait
from xwpy.oracle.handlers.vanity import VanityHandler, parse_params, unit_seconds

H = VanityHandler()
# A fixed split key: which of these tiny units match depends on it, and the tests pick bases for
# it (a random one made 'pick another base' fail about one run in four).
SECRET = 0x5EC4E7_0F_7E57
PUB = combine.public_key(SECRET, compressed=True)
PARAMS = json.dumps({"prefix": "1x", "pubkey": PUB.hex()}).encode()
CTX = Context(now=1_000.0, deadline=100_000, margin=30.0, hosts=3, seed=12345)


def job(job_id: int, tag: int | str, status: str = "RUNNING", data: bytes | None = None) -> JobView:
    files = {"result.json": data} if data is not None else None
    return JobView(job_id, str(tag), status, "ab" * 32 if status == "COMPLETED" else None, files)


def run_unit(state, tag: int) -> bytes:
    plan = SearchPlan(parse_params(PARAMS), int(state["base"], 16), state["unit_points"])
    return run_args(plan.unit_args(tag))


def test_a_search_starts_one_unit_per_host_from_a_seeded_base():
    state, first = H.start(PARAMS, CTX)
    assert isinstance(first, Submit) and [u.tag for u in first.units] == ["0", "1", "2"]
    assert first.state["issued"] == 3 and int(state["base"], 16) == 12345
    args = first.units[1].args
    assert args[args.index("--pubkey") + 1] == PUB.hex() and args[args.index("--prefix") + 1] == "1x"
    assert H.start(PARAMS, dataclasses.replace(CTX, seed=99))[0]["base"] != state["base"]
    # Running units are waited for; never more than one per host in flight.
    assert H.step(PARAMS, first.state, [job(i + 1, i) for i in range(3)], CTX) == Wait()


def test_the_first_verified_match_is_the_result_and_combines_with_the_secret():
    _, first = H.start(PARAMS, CTX)
    state = first.state
    data = run_unit(state, 2)
    decision = H.step(PARAMS, state, [job(1, 0), job(2, 1), job(3, 2, "COMPLETED", data)], CTX)
    assert isinstance(decision, Done) and decision.job_id == 3 and len(decision.result) <= MAX_RESULT
    result = json.loads(decision.result)
    assert set(result) == {"address", "candidate", "partial_key"}
    key = combine.combine_parts(int(result["partial_key"], 16), result["candidate"], SECRET)
    assert key.address == result["address"] and key.address.startswith("1x")


def test_a_forged_match_is_not_accepted_and_its_unit_runs_again():
    _, first = H.start(PARAMS, CTX)
    state = first.state
    record = json.loads(run_unit(state, 0))
    record["partial_key"] = f"{(int(record['partial_key'], 16) + 1):064x}"
    forged = (json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n").encode()
    decision = H.step(PARAMS, state, [job(1, 0, "COMPLETED", forged), job(2, 1), job(3, 2)], CTX)
    assert isinstance(decision, Submit) and [u.tag for u in decision.units] == ["0"]
    assert decision.state["issued"] == 3  # a retry, not a new unit


def test_no_match_units_are_settled_and_new_ones_follow_until_the_deadline():
    # One point per unit (six keys): most units find nothing.
    state = {"base": f"{777:064x}", "unit_points": 1, "issued": 3}
    results = {t: run_unit(state, t) for t in range(3)}
    assert all(json.loads(r)["status"] == "no-match" for r in results.values()), "pick another base"
    jobs = [job(t + 1, t, "COMPLETED", r) for t, r in results.items()]
    decision = H.step(PARAMS, state, jobs, CTX)
    assert isinstance(decision, Submit) and [u.tag for u in decision.units] == ["3", "4", "5"]
    late = dataclasses.replace(CTX, now=CTX.deadline - CTX.margin - unit_seconds(
        SearchPlan(parse_params(PARAMS), 777, 1)) / 2)
    final = H.step(PARAMS, state, jobs, late)
    assert isinstance(final, Fail) and "18 keys searched" in final.reason
    assert H.step(PARAMS, state, jobs + [job(9, 3)], late) == Wait()  # one still running: wait for it


def test_failed_units_are_retried_then_the_search_gives_up():
    _, first = H.start(PARAMS, CTX)
    state = first.state
    failed = [job(i + 1, i % 3, "ERROR") for i in range(3)]
    retry = H.step(PARAMS, state, failed, CTX)
    assert isinstance(retry, Submit) and sorted(u.tag for u in retry.units) == ["0", "1", "2"]
    many = [job(i + 1, i % 3, "CANCELLED") for i in range(100)]
    assert isinstance(H.step(PARAMS, state, many, CTX), Fail)


def test_a_deadline_too_close_for_one_unit_fails_at_once():
    close = dataclasses.replace(CTX, deadline=int(CTX.now + CTX.margin + 0.5))
    _, decision = H.start(PARAMS, close)
    assert isinstance(decision, Fail) and "deadline" in decision.reason


@pytest.mark.parametrize(
    "params,needle",
    [
        (json.dumps({"prefix": "1x"}).encode(), "JSON object"),
        (json.dumps({"prefix": "1x", "pubkey": PUB.hex(), "extra": 1}).encode(), "JSON object"),
        (json.dumps({"prefix": "1O", "pubkey": PUB.hex()}).encode(), "prefix"),
        (json.dumps({"prefix": "x", "pubkey": PUB.hex()}).encode(), "prefix"),
        (json.dumps({"prefix": "1x", "pubkey": "04" + "00" * 32}).encode(), "pubkey"),
        (json.dumps({"prefix": "1x", "pubkey": "02" + "zz" * 32}).encode(), "pubkey"),
        (json.dumps({"prefix": "1x", "pubkey": "02" + "ff" * 32}).encode(), "pubkey"),  # not on the curve
        (json.dumps({"prefix": 1, "pubkey": PUB.hex()}).encode(), "prefix"),
        (b"\xff", "UTF-8"),
    ],
)
def test_bad_params_are_named(params, needle):
    with pytest.raises(BadParams, match=needle):
        H.start(params, CTX)


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.binary(max_size=120), st.builds(
    lambda p, k: json.dumps({"prefix": p, "pubkey": k}).encode(), st.text(max_size=20), st.text(max_size=70))))
def test_any_params_either_parse_or_raise_bad_params(data):
    try:
        spec = parse_params(data)
    except BadParams:
        return
    assert spec.pubkey is not None and spec.target() is not None
