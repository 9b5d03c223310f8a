"""Protocol messages: any JSON value either parses or raises a ProtocolError naming a field."""

import json

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xwpy import protocol as p

MESSAGES = [
    p.NewUser, p.NewApp, p.Limits, p.JobSpec, p.SubmitJobs, p.CancelJobs, p.RegisterHost, p.WorkRequest,
    p.Alive, p.ResultReport, p.Results, p.Release, p.Assignment, p.WorkReply, p.HostRegistered, p.DataInfo,
]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=True) | st.text(max_size=20)
    | st.text(st.characters(categories=["Cs", "Lu"]), max_size=3),  # lone surrogates: valid JSON, not Unicode
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=20,
)


def field_keys(cls):
    return st.sampled_from([f.name for f in attrs.fields(cls)] + ["bogus"])


@settings(max_examples=300)
@given(st.sampled_from(MESSAGES), st.data())
def test_parse_never_raises_anything_else(cls, data):
    # Objects with mostly the right keys and arbitrary values reach deep into the checks.
    value = data.draw(st.one_of(json_values, st.dictionaries(field_keys(cls), json_values, max_size=8)))
    try:
        msg = p.parse(cls, value)
    except p.ProtocolError as e:
        assert e.field and e.message
        return
    # Whatever parsed can be stored (UTF-8) and encodes back to JSON that parses to the same message.
    json.dumps(p.encode(msg), ensure_ascii=False).encode("utf-8")
    again = p.parse(cls, json.loads(json.dumps(p.encode(msg))))
    assert again == msg


def test_errors_name_the_nested_field():
    with pytest.raises(p.ProtocolError) as e:
        p.parse(p.SubmitJobs, {"jobs": [{"app": "ok"}, {"app": "ok", "args": ["x", 3]}]})
    assert e.value.field == "jobs[1].args[1]" and "string" in e.value.message
    with pytest.raises(p.ProtocolError) as e:
        p.parse(p.SubmitJobs, {"jobs": [{"app": "a", "inputs": [{"name": "../etc/passwd", "sha256": "0" * 64}]}]})
    assert e.value.field == "jobs[0].inputs[0].name"
    with pytest.raises(p.ProtocolError) as e:
        p.parse(p.NewApp, {"name": "a", "command": ["x"], "replication": 2, "quorum": 3})
    assert e.value.field == "quorum"
    with pytest.raises(p.ProtocolError) as e:
        p.parse(p.JobSpec, {"app": "a", "surprise": 1})
    assert e.value.field == "surprise" and e.value.message == "unknown field"


def test_lone_surrogates_are_refused_naming_the_field():
    report = {"replica_id": 1, "exit_code": 1, "result_sha256": "a" * 64, "stderr_tail": "oops \ud800"}
    with pytest.raises(p.ProtocolError) as e:
        p.parse(p.ResultReport, json.loads(json.dumps(report)))
    assert e.value.field == "stderr_tail" and "surrogate" in e.value.message
    report["stderr_tail"] = "fine \u00e9\U0001f600"
    assert p.parse(p.ResultReport, report).stderr_tail == report["stderr_tail"]


def test_bounds():
    with pytest.raises(p.ProtocolError):
        p.parse(p.SubmitJobs, {"jobs": []})
    with pytest.raises(p.ProtocolError):
        p.parse(p.WorkRequest, {"slots": p.MAX_SLOTS + 1})
    with pytest.raises(p.ProtocolError):
        p.parse(p.ResultReport, {"replica_id": 1, "result_sha256": "a" * 64, "inline": "A" * (p.MAX_INLINE_RESULT * 2)})
    with pytest.raises(p.ProtocolError):
        p.parse(p.WorkRequest, {"slots": True})  # a boolean is not an integer
    assert p.parse(p.ResultReport, {"replica_id": 1, "exit_code": 0, "result_sha256": "a" * 64}).ok


def _depth(v) -> int:
    if isinstance(v, list):
        return 1 + max(map(_depth, v), default=0)
    if isinstance(v, dict):
        return 1 + max(map(_depth, v.values()), default=0)
    return 0


deep_values = st.recursive(
    st.none() | st.integers() | st.text(alphabet='[]{}"\\ab\u00e9', max_size=8),
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(alphabet='[{"\\k', max_size=3), inner, max_size=2),
    max_leaves=80,
)


@settings(max_examples=200)
@given(deep_values, st.integers(0, 70), st.booleans())
def test_loads_bounds_nesting_whatever_the_strings_hold(value, wrap, as_text):
    """JSON from outside decodes as json.loads does, unless nested deeper than MAX_JSON_DEPTH:
    then ValueError — brackets and escaped quotes inside strings do not count."""
    for _ in range(wrap):
        value = [value]
    text = json.dumps(value)
    raw = text if as_text else text.encode()
    if _depth(value) > p.MAX_JSON_DEPTH:
        with pytest.raises(ValueError, match="nested"):
            p.loads(raw)
    else:
        assert p.loads(raw) == value


def test_loads_refuses_100k_deep():
    for raw in (b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 50_000 + b"1" + b"}" * 50_000, b"[" * 100_000):
        with pytest.raises(ValueError):
            p.loads(raw)
