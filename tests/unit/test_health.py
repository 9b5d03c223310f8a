"""The health verdict: 200 only when every check passed, 503 naming each that failed."""

from hypothesis import given
from hypothesis import strategies as st

from xwpy.server.health import Check, verdict

checks = st.lists(st.builds(Check, st.sampled_from(["catalog", "blobs", "chain"]), st.booleans(), st.text(max_size=20)),
                  unique_by=lambda c: c.name)


@given(checks)
def test_verdict(cs):
    status, body = verdict(cs)
    failed = [c.name for c in cs if not c.ok]
    assert status == (503 if failed else 200)
    assert body["failed"] == failed and body["status"] == ("failing" if failed else "ok")
    assert set(body["checks"]) == {c.name for c in cs}


def test_a_failed_check_is_named_with_its_detail():
    status, body = verdict([Check("catalog", True, "writable"), Check("blobs", False, "No space left on device")])
    assert status == 503 and body["failed"] == ["blobs"]
    assert body["checks"]["blobs"] == {"ok": False, "detail": "No space left on device"}
