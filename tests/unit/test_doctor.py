"""The doctor's verdicts, from what was observed."""

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xwpy.server.doctor import FAIL, MAX_SKEW_SECONDS, OK, SOON_DAYS, WARN, certificate, clock, disk, schema

NOW = dt.datetime(2026, 12, 4, tzinfo=dt.timezone.utc)


@given(st.integers(-1000 * 86400, 1000 * 86400))
def test_certificate_by_time_left(seconds):
    f = certificate("server certificate", NOW - dt.timedelta(days=1000), NOW + dt.timedelta(seconds=seconds), NOW,
                    renew="renew it")
    assert f.level == (FAIL if seconds < 0 else WARN if seconds < SOON_DAYS * 86400 else OK)
    assert (f.fix == "renew it") == (f.level != OK)


def test_a_certificate_not_yet_valid_or_without_the_name():
    early = certificate("c", NOW + dt.timedelta(hours=1), NOW + dt.timedelta(days=99), NOW, renew="r")
    assert early.level == FAIL and "clock" in early.fix
    unnamed = certificate("c", NOW, NOW + dt.timedelta(days=99), NOW, renew="r", names=["localhost"], needed="grid.example.org")
    assert unnamed.level == FAIL and "grid.example.org" in unnamed.text


@given(st.integers(0, 1 << 40), st.integers(1, 1 << 40))
def test_disk(free, least):
    assert disk(free, least).level == (FAIL if free < least else OK)


@pytest.mark.parametrize("found", [None, "legacy", "0001", "0002", "0003", "9999"])
def test_schema(found):
    finding = schema(found, "0003", frozenset({"0001", "0002", "0003"}), "/srv/site")
    assert finding.level == (OK if found == "0003" else FAIL)
    if found in ("legacy", "0001", "0002"):  # behind: the command that upgrades it
        assert finding.fix == "run: xwpy db upgrade --site /srv/site", finding
    if found == "9999":  # ahead: a newer xwpy wrote it
        assert "newer xwpy" in finding.text + finding.fix


@given(st.floats(-100, 100))
def test_clock(skew):
    assert clock(skew).level == (FAIL if abs(skew) > MAX_SKEW_SECONDS else OK)
