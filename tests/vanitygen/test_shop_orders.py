"""The shop's order decisions (pure) and its order log: an order key pays at most once, a price
above the one shown or beyond the spending cap is refused, and the log survives a restart."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xwpy.apps.vanitygen.web.server import ORDERS_FILE, OrderLog, ShopError, admit

REQ = {"prefix": "1x", "public_key": "02" + "11" * 32, "max_price": 100}


@settings(deadline=None)  # the first refusal imports web3 (format_rlc)
@given(price=st.integers(0, 10**6), max_price=st.integers(0, 10**6), spent=st.integers(0, 10**6),
       cap=st.one_of(st.none(), st.integers(0, 10**6)))
def test_a_new_order_is_paid_only_at_most_the_price_shown_and_within_the_cap(price, max_price, spent, cap):
    req = {**REQ, "max_price": max_price}
    try:
        assert admit(None, req, price, spent, cap) == "pay"
        assert price <= max_price and (cap is None or spent + price <= cap)
    except ShopError as e:
        assert price > max_price and e.code == "price_changed" or cap is not None and spent + price > cap and e.code == "spend_cap"


@given(price=st.integers(0, 10**6), spent=st.integers(0, 10**6), cap=st.one_of(st.none(), st.integers(0, 10**6)))
def test_a_known_order_key_is_never_paid_again(price, spent, cap):
    assert admit({**REQ, "task": 7}, REQ, price, spent, cap) == "replay"  # even over the cap or a new price
    with pytest.raises(ShopError) as e:
        admit({**REQ, "task": 7}, {**REQ, "prefix": "1y"}, price, spent, cap)
    assert e.value.status == 409 and e.value.field == "order_key"
    with pytest.raises(ShopError) as e:  # paying when the shop stopped: unknown outcome, not paid again
        admit(dict(REQ), REQ, price, spent, cap)
    assert e.value.code == "interrupted"


def test_the_log_keeps_orders_and_counts_what_may_have_been_paid(tmp_path):
    log = OrderLog(tmp_path)
    log.append({"event": "paying", "order_key": "a" * 16, **REQ})
    log.append({"event": "ordered", "order_key": "a" * 16, "task": 1, "price": 90})
    log.append({"event": "paying", "order_key": "b" * 16, **REQ})
    log.append({"event": "failed", "order_key": "b" * 16, "error": "cannot pay"})  # nothing paid: the key is free
    log.append({"event": "paying", "order_key": "c" * 16, **REQ})  # then the shop stopped
    with open(tmp_path / ORDERS_FILE, "a") as f:
        f.write('{"event": "pay')  # a torn last line
    again = OrderLog(tmp_path)
    assert again.by_key["a" * 16]["task"] == 1 and "b" * 16 not in again.by_key
    assert again.spent() == 90 + 100  # the interrupted order counts at its maximum
    assert [json.loads(line)["event"] for line in (tmp_path / ORDERS_FILE).read_text().splitlines()[:2]] == ["paying", "ordered"]
