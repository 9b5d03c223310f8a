"""The oracle's pure parts: block ranges, the chain clock, the commit plan, the simple handler,
configuration and key files."""

from __future__ import annotations

import dataclasses
import hashlib
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xwpy.apps.hashchain.hashchain import hash_chain
from xwpy.apps.hashchain.hashchain import main as hashchain_main
from xwpy import config
from xwpy.chain.contracts import TaskInfo
from xwpy.chain.contracts import TaskStatus as OnChain
from xwpy.chain.tx import Fees, TxState
from xwpy.lifecycle.chaintask import TaskStatus
from xwpy.oracle.chainsetup import read_key_file, write_key_file
from xwpy.oracle.committer import BUMP, MAX_ATTEMPTS, bumped_fees, plan
from xwpy.oracle.follower import ChainClock, next_range
from xwpy.oracle.handlers.base import MAX_RESULT, BadParams, Context, Done, Fail, JobView, Submit, Wait
from xwpy.oracle.handlers.hashchain import ATTEMPTS, HashChainHandler, parse_params
from xwpy.server.catalog.chain import ChainTask

# -- follower -------------------------------------------------------------------------------


@given(st.integers(-1, 10**6), st.integers(0, 10**6), st.integers(0, 64), st.integers(1, 5000))
def test_ranges_cover_confirmed_blocks_exactly_once(cursor, head, confirmations, max_blocks):
    covered = []
    at = cursor
    while (span := next_range(at, head, confirmations, max_blocks)) is not None:
        first, last = span
        assert first == at + 1 and first <= last and last - first < max_blocks
        covered.append(span)
        at = last
        if len(covered) > 3:
            break  # enough to see the chunks chain up
    if covered:
        assert covered[0][0] == cursor + 1
    if len(covered) <= 3:  # walked to the end: exactly up to head - confirmations
        assert at == max(cursor, head - confirmations)


def test_ranges_reject_nonsense():
    with pytest.raises(ValueError):
        next_range(0, 10, -1, 10)
    with pytest.raises(ValueError):
        next_range(0, 10, 0, 0)


def test_the_chain_clock_runs_from_the_last_block_even_ahead_of_the_wall():
    clock = ChainClock()
    clock.observe(block_time=5_000, wall=1_000.0)  # a dev chain moved forward
    assert clock.now(1_010.0) == 5_010.0
    assert clock.now(999.0) == 5_000.0  # never backwards


# -- committer plan -------------------------------------------------------------------------

DIGEST = bytes(range(32))
REQUEST = b"\xcd" * 32


def row(status=TaskStatus.CERTIFIED, **kw) -> ChainTask:
    fields = dict(
        id=1, chain_id=1, hub="0x", task_id=9, app_id=1, app="hashchain", params=b"", requester="0x", callback="0x",
        price=10, deadline=1_000, status=status, state={}, round=1, pending=None, jobs=[(1, "0")], result_job=1,
        digest=DIGEST.hex(), result=b"r", commit_tx=None, commit_raw=None, commit_nonce=None, commit_attempts=0,
        commit_block=None, commit_gas=None, error=None, block_number=1, log_tx="0x", log_index=0, created_at=0.0,
        updated_at=0.0, request_hash="0x" + REQUEST.hex(),
    )
    fields.update(kw)
    return ChainTask(**fields)


def onchain(status=OnChain.REQUESTED, digest=b"\0" * 32, deadline=1_000, request=REQUEST) -> TaskInfo:
    return TaskInfo(9, 1, "0xr", "0xc", 10, deadline, status, digest, request)


COMMITTING = dict(status=TaskStatus.COMMITTING, commit_tx="0x" + "aa" * 32, commit_raw=b"raw", commit_nonce=4, commit_attempts=1)


@pytest.mark.parametrize(
    "task,chain,time,tx,nonce,kind",
    [
        # The chain's word comes first: never a second commit, never one after a refund.
        (row(), onchain(OnChain.COMPLETED, DIGEST), 10, None, None, "committed"),
        (row(**COMMITTING), onchain(OnChain.COMPLETED, DIGEST), 10, TxState("unknown"), 4, "committed"),
        (row(), onchain(OnChain.REFUNDED), 2_000, None, None, "expire"),
        (row(), onchain(OnChain.NONE), 10, None, None, "fail"),
        # The id is another request now (a reorganisation): never our result for it.
        (row(), onchain(request=b"\xee" * 32), 10, None, None, "fail"),
        (row(**COMMITTING), onchain(OnChain.COMPLETED, DIGEST, request=b"\xee" * 32), 10, TxState("unknown"), 4, "fail"),
        (row(request_hash=None), onchain(), 10, None, None, "fail"),  # an older row: by its fields
        (row(request_hash=None, requester="0xR", callback="0xc"), onchain(), 10, None, None, "sign"),
        (row(), onchain(), 1_001, None, None, "expire"),
        (row(**COMMITTING), onchain(), 1_001, TxState("pending"), None, "expire"),
        # Open on chain, in time.
        (row(), onchain(), 980, None, None, "sign"),  # just outside the margin
        (row(**COMMITTING), onchain(), 10, TxState("pending"), None, "wait"),
        (row(**COMMITTING), onchain(), 10, TxState("mined", {"status": 1}), None, "wait"),
        (row(**COMMITTING), onchain(), 10, TxState("mined", {"status": 0}), None, "sign"),
        (row(**dict(COMMITTING, commit_attempts=MAX_ATTEMPTS)), onchain(), 10, TxState("mined", {"status": 0}), None, "fail"),
        (row(**COMMITTING), onchain(), 10, TxState("unknown"), 4, "resend"),  # lost by a restarted node
        (row(**COMMITTING), onchain(), 10, TxState("unknown"), 5, "sign"),  # its nonce went elsewhere
        (row(**COMMITTING), onchain(), 10, TxState("unknown"), 3, "sign"),  # a gap below it: signed into it
        # A node that queues: a free nonce below a pending commit is a hole to fill (issue 18, 2).
        (row(**COMMITTING), onchain(), 10, TxState("pending"), 3, "fill"),
        (row(**COMMITTING), onchain(), 10, TxState("pending"), 4, "wait"),
        # Too close to the deadline: nothing is signed or sent again (it would publish the result
        # in a commit that reverts); a pending one is left to its fate.
        (row(), onchain(), 990, None, None, "expire"),
        (row(**COMMITTING), onchain(), 990, TxState("unknown"), 4, "expire"),
        (row(**COMMITTING), onchain(), 990, TxState("mined", {"status": 0}), None, "expire"),
        (row(**COMMITTING, commit_sent_block=1), onchain(), 990, TxState("pending"), 4, "wait"),
    ],
)
def test_commit_plan(task, chain, time, tx, nonce, kind):
    assert plan(task, chain, time, tx, nonce, 100, margin=20).kind == kind


@given(sent=st.integers(0, 10**6), waited=st.integers(0, 50), after=st.integers(1, 20), nonce=st.integers(0, 10))
def test_a_pending_commit_is_replaced_once_it_waited_replace_after_blocks(sent, waited, after, nonce):
    """Issue 18, 3: the bound. A commit pending for REPLACE_AFTER blocks (and its nonce the next
    one: no hole below) is replaced; before that it waits."""
    t = row(**dict(COMMITTING, commit_nonce=nonce), commit_sent_block=sent)
    kind = plan(t, onchain(), 10, TxState("pending"), nonce, sent + waited, replace_after=after).kind
    assert kind == ("replace" if waited >= after else "wait")


fees = st.builds(lambda tip, extra: Fees(tip + extra, tip), st.integers(0, 10**12), st.integers(0, 10**12))


@given(old=fees, now=fees, cap=st.integers(1, 10**13))
def test_a_replacement_outbids_what_it_replaces_and_never_the_cap(old, now, cap):
    new = bumped_fees(old, now, cap)
    num, den = BUMP
    floor = Fees(-(-old.max_fee * num // den), -(-old.tip * num // den))
    if new is None:
        assert max(floor.max_fee, now.max_fee, floor.tip, now.tip) > cap
        return
    assert new.max_fee <= cap and new.tip <= new.max_fee
    # What geth and hardhat ask of a replacement: +10% in both parts.
    assert new.max_fee * 10 >= old.max_fee * 11 and new.tip * 10 >= old.tip * 11
    assert new.max_fee >= now.max_fee and new.tip >= now.tip


def test_a_completion_with_another_digest_is_recorded_as_such():
    action = plan(row(), onchain(OnChain.COMPLETED, b"\x01" * 32), 10, None, None)
    assert action.kind == "committed" and "not ours" in action.reason


# -- the hashchain handler ------------------------------------------------------------------

H = HashChainHandler()
CTX = Context(now=100.0, deadline=1_000, margin=30.0, hosts=3)
PARAMS = b'{"text":"h\xc3\xa9llo","rounds":3}'


def completed(job_id, out: bytes, tag="0") -> JobView:
    return JobView(job_id, tag, "COMPLETED", "d" * 64, {"stdout": out}, None)


def test_hashchain_end_to_end_in_pure_steps():
    state, first = H.start(PARAMS, CTX)
    assert isinstance(first, Submit) and len(first.units) == 1
    args = first.units[0].args
    assert args == ("3", "héllo".encode().hex())
    assert H.step(PARAMS, state, [JobView(1, "0", "RUNNING")], CTX) == Wait()
    expected = hash_chain("héllo".encode(), 3).hex()
    assert expected == hashlib.sha256(hashlib.sha256(hashlib.sha256("héllo".encode()).digest()).digest()).hexdigest()
    done = H.step(PARAMS, state, [completed(1, expected.encode() + b"\n")], CTX)
    assert done == Done(1, b'{"sha256":"' + expected.encode() + b'"}')
    assert len(done.result) <= MAX_RESULT


def test_the_app_prints_what_the_handler_expects(capsys):
    assert hashchain_main(["3", "héllo".encode().hex()]) == 0
    assert capsys.readouterr().out == hash_chain("héllo".encode(), 3).hex() + "\n"
    assert hashchain_main(["0", "00"]) == 2 and hashchain_main(["1", "zz"]) == 2 and hashchain_main(["1"]) == 2


def test_hashchain_retries_failed_jobs_then_gives_up():
    _, first = H.start(PARAMS, CTX)
    failed = [JobView(i + 1, str(i), "ERROR", error="boom") for i in range(ATTEMPTS)]
    retry = H.step(PARAMS, {}, failed[:1], CTX)
    assert isinstance(retry, Submit) and retry.units[0].tag == "1" and retry.units[0].args == first.units[0].args
    assert isinstance(H.step(PARAMS, {}, failed, CTX), Fail)
    late = dataclasses.replace(CTX, now=980.0)  # inside the margin: no new attempt
    assert "deadline" in H.step(PARAMS, {}, failed[:1], late).reason


def test_hashchain_refuses_an_output_that_is_not_a_digest():
    decision = H.step(PARAMS, {}, [completed(1, b"not hex\n")], CTX)
    assert isinstance(decision, Fail) and "not a sha256" in decision.reason


@pytest.mark.parametrize(
    "params,needle",
    [
        (b"\xff", "UTF-8"),
        (b"[1]", "JSON object"),
        (b'{"text":"a"}', "JSON object"),
        (b'{"text":"a","rounds":1,"x":2}', "JSON object"),
        (b'{"text":1,"rounds":1}', "text"),
        (b'{"text":"a","rounds":0}', "rounds"),
        (b'{"text":"a","rounds":true}', "rounds"),
        (b'{"text":"a","rounds":1e3}', "rounds"),
        (b'{"text":"' + b"a" * 513 + b'","rounds":1}', "text"),
    ],
)
def test_bad_params_are_named(params, needle):
    with pytest.raises(BadParams, match=needle):
        H.start(params, CTX)


@given(st.binary(max_size=200))
def test_any_params_either_parse_or_raise_bad_params(data):
    try:
        text, rounds = parse_params(data)
    except BadParams:
        return
    assert isinstance(text, str) and 1 <= rounds


# -- configuration and keys -----------------------------------------------------------------


@pytest.mark.parametrize(
    "text,needle",
    [
        ('[oracle]\nchain = "ftp://x"\n', "http(s)://"),
        ("[oracle]\nconfirmations = -2\n", "confirmations"),
        ("[oracle]\npoll_seconds = 0\n", "poll_seconds"),
        ("[oracle]\nblock_range = 0\n", "block_range"),
        ('[oracle]\nenabled = true\nchain = "http://127.0.0.1:8545"\n', "key_file is required"),
        ("[oracle]\nkey = 'x'\n", "unknown key 'key'"),
    ],
)
def test_oracle_config_mistakes_are_named(tmp_path, text, needle):
    (tmp_path / "xwpy.toml").write_text(text)
    with pytest.raises(config.ConfigError) as e:
        config.load(tmp_path)
    assert needle in str(e.value)


def test_key_files_must_be_private_and_well_formed(tmp_path):
    path = tmp_path / "oracle.key"
    key = bytes(range(1, 33))
    write_key_file(path, key)
    assert path.stat().st_mode & 0o777 == 0o600
    assert read_key_file(path) == key
    path.write_text("0x" + key.hex())
    assert read_key_file(path) == key
    os.chmod(path, 0o640)
    with pytest.raises(config.ConfigError, match="readable by others"):
        read_key_file(path)
    os.chmod(path, 0o600)
    path.write_text("12" * 31)
    with pytest.raises(config.ConfigError, match="64 hexadecimal") as e:
        read_key_file(path)
    assert "12" * 31 not in str(e.value)  # a key (even a broken one) is never repeated
    with pytest.raises(config.ConfigError, match="cannot read"):
        read_key_file(tmp_path / "missing")


@pytest.mark.parametrize("text,depth", [
    ("[oracle]\n", 0),  # the embedded chain never reorganises
    ('[oracle]\nchain = "https://node.example/v3/key"\n', config.URL_CONFIRMATIONS),  # issue 18, 4
    ('[oracle]\nchain = "https://node.example"\nconfirmations = 0\n', 0),  # the operator's choice
    ('[oracle]\nchain = "https://node.example"\nconfirmations = 3\n', 3),
])
def test_a_node_url_is_followed_behind_confirmations_by_default(tmp_path, text, depth):
    (tmp_path / "xwpy.toml").write_text(text)
    assert config.URL_CONFIRMATIONS > 0
    assert config.confirmations_for(config.load(tmp_path).oracle) == depth


@pytest.mark.parametrize("url,shown", [
    ("http://127.0.0.1:8545", "http://127.0.0.1:8545"),
    ("https://mainnet.infura.io/v3/0123abcd", "https://mainnet.infura.io/…"),
    ("https://user:pa55@node.example:8545/?apikey=S3CRET#frag", "https://node.example:8545/…"),
    ("https://user:pa55@node.example", "https://node.example"),
])
def test_a_node_url_is_shown_without_what_may_be_a_key(url, shown):
    from xwpy.chain.node import redact_url, scrub

    assert redact_url(url) == shown
    error = f"HTTPSConnectionPool(host='node.example'): Max retries exceeded with url: {url.split('node.example')[-1]}"
    for secret in ("0123abcd", "pa55", "S3CRET"):
        assert secret not in scrub(error, url) and secret not in scrub(f"failed: {url}", url)
