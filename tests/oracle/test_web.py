"""The vanity shop (``xwpy vanity web``) in real processes: a coordinator with its oracle on the
embedded chain, two workers, the shop's server; a person orders a 2-character prefix for a fresh
split key, follows the order until the address is delivered and completes the key with the secret
only they hold. Bad input is a 4xx JSON answer naming the field; an order key pays once, also
when posted twice at the same time and after the shop restarts. (The page itself, in Chromium:
test_shop_browser.py.)"""

from __future__ import annotations

import secrets
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from tests.oracle.oraclegrid import OracleGrid, shop_clean, start_shop

from xwpy.apps.vanitygen import combine
from xwpy.apps.vanitygen.difficulty import estimate
from xwpy.apps.vanitygen.prefix import compile_prefix
from tests.harness import wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def shop(grid):
    og = OracleGrid(grid, "embedded").start(workers=2)
    proc, url = start_shop(grid)
    yield og, url
    shop_clean(proc)


def order_body(prefix, public_key, price, key=None) -> dict:
    return {"prefix": prefix, "public_key": public_key, "max_price": str(price),
            "order_key": key or secrets.token_hex(16)}


def refused(response: requests.Response, status: int, field: str | None) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body.get("field") == field and body["error"], body
    return body["error"]


def test_an_address_ordered_on_the_page_is_paid_found_and_completed_by_its_owner(shop):
    og, url = shop
    page = requests.get(url + "/", timeout=10)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<form id="order"' in page.text and "xwpy vanity keygen --out q.key" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"] and "<script>" not in page.text
    lib = requests.get(url + "/vendor/noble-secp256k1/index.js", timeout=10)
    assert lib.status_code == 200 and lib.headers["content-type"].startswith("text/javascript")

    e1, e2 = (requests.get(url + "/api/estimate", params={"prefix": p}, timeout=10).json() for p in ("1x", "1xw"))
    assert e2["prefix"] == "1xw" and e2["expected_tries"] == pytest.approx(1 / e2["probability"])
    assert e2["expected_tries"] == pytest.approx(estimate(compile_prefix("1xw")).expected_tries)
    assert 50 < e2["expected_tries"] / e1["expected_tries"] < 70  # one more base58 digit: ~58 times harder
    price = int(e1["price"])  # shown before paying, with the expected time
    assert price == og.hub.app(og.deployment.apps["vanitygen"]).price > 0 and e1["price_text"].endswith(" RLC")
    assert e1["expected_seconds"] == pytest.approx(e1["expected_tries"] / e1["keys_per_second"]) and e1["expected_time"]

    secret, pub = combine.keygen()  # the person's split key: the shop only ever sees pub
    before = og.balances("requester")
    # A price above what the person was shown is refused, nothing paid.
    r = requests.post(url + "/api/orders", json=order_body("1x", pub.hex(), price - 1), timeout=60)
    assert refused(r, 409, "max_price") and r.json()["code"] == "price_changed"
    r = requests.post(url + "/api/orders", json=order_body("1x", pub.hex(), price), timeout=60)
    assert r.status_code == 201, r.text
    order = r.json()
    task = order["task"]
    assert order["status"] == "REQUESTED" and order["prefix"] == "1x" and order["public_key"] == pub.hex()
    assert og.hub.task(task).price == order["price"] > 0  # in escrow at the hub
    assert og.balances("requester")["requester"] == before["requester"] - order["price"]

    # Mistakes while the grid works: each one a 4xx JSON naming the field, nothing ordered.
    for prefix in ("10", "1l", "", 7):
        refused(requests.post(url + "/api/orders", json=order_body(prefix, pub.hex(), price), timeout=10), 400, "prefix")
    for key in ("02" + "00" * 32, pub.hex()[:-2], "zz" * 33, None, "04" + "11" * 64):
        refused(requests.post(url + "/api/orders", json=order_body("1x", key, price), timeout=10), 400, "public_key")
    for max_price in (None, -1, "1.5", True):
        body = {**order_body("1x", pub.hex(), price), "max_price": max_price}
        refused(requests.post(url + "/api/orders", json=body, timeout=10), 400, "max_price")
    for key in (None, "short", "x" * 65, "a b" * 8):
        refused(requests.post(url + "/api/orders", json=order_body("1x", pub.hex(), price, key) | {"order_key": key},
                              timeout=10), 400, "order_key")
    refused(requests.get(url + "/api/estimate", params={"prefix": "1l"}, timeout=10), 400, "prefix")
    refused(requests.post(url + "/api/orders", data=b"not json", headers={"content-type": "application/json"}, timeout=10), 400, "body")
    refused(requests.post(url + "/api/orders", data=b"[" * (17 * 1024), headers={"content-type": "application/json"}, timeout=10),
            413, "body")
    refused(requests.get(url + f"/api/orders/{task + 1000}", timeout=10), 404, None)
    refused(requests.get(url + "/api/orders/nope", timeout=10), 404, None)
    refused(requests.get(url + "/api/orders", timeout=10), 405, None)
    assert requests.get(url + "/nothing-here", timeout=10).status_code == 404
    assert og.balances("requester")["requester"] == before["requester"] - order["price"]  # only the one order paid

    def delivered():
        o = requests.get(url + f"/api/orders/{task}", timeout=30).json()
        assert o["status"] in ("REQUESTED", "COMPLETED"), o
        # the oracle records its commit in the catalog once the chain has it: both are awaited
        return o["delivered"] and o["grid"]["status"] == "COMMITTED" and o

    o = wait_for(delivered, 120, f"order {task} to be delivered")
    got = o["delivered"]
    assert o["status"] == "COMPLETED" and o["commit_tx"].startswith("0x")
    assert o["grid"]["status"] == "COMMITTED" and 1 <= o["grid"]["units_done"] <= o["grid"]["units"]
    assert got["combine"] == (f"xwpy vanity combine --secret q.key --partial {got['partial_key']} "
                              f"--candidate {got['candidate']}")
    key = combine.combine_parts(int(got["partial_key"], 16), int(got["candidate"]), secret)
    assert key.address == got["address"] and key.address.startswith("1x")


def test_the_shop_pays_with_the_public_demo_key_only_on_the_embedded_chain(grid):
    from click.testing import CliRunner

    from xwpy.client.cli import cli
    from xwpy.client.commands import register

    register(cli)
    grid.enable_oracle(chain="http://127.0.0.1:9", deployment="deployment.json", key_file="oracle.key")
    out = CliRunner().invoke(cli, ["vanity", "web", "--site", str(grid.cfg.dir), "--port", "0"])
    assert out.exit_code == 1 and "Traceback" not in out.output, out.output
    assert "not the embedded one" in out.output and "--key-file" in out.output
    out = CliRunner(env={"XWPY_SITE": None}).invoke(cli, ["vanity", "web", "--port", "0"])  # no site at all
    assert out.exit_code == 2 and "--site" in out.output, out.output


def test_an_order_key_pays_once_posted_twice_at_once_and_after_the_shop_restarts(grid):
    og = OracleGrid(grid, "embedded").start(workers=1)
    proc, url = start_shop(grid)
    price = int(requests.get(url + "/api/estimate", params={"prefix": "1x"}, timeout=30).json()["price"])
    _, pub = combine.keygen()
    body = order_body("1x", pub.hex(), price)
    before = og.balances("requester")["requester"]

    # A double click that reached the server twice: both answers are the one order, paid once.
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda _: requests.post(url + "/api/orders", json=body, timeout=60), range(2)))
    assert sorted(a.status_code for a in answers) == [200, 201], [a.text for a in answers]
    task = answers[0].json()["task"]
    assert answers[1].json()["task"] == task
    assert og.balances("requester")["requester"] == before - price
    r = requests.post(url + "/api/orders", json={**body, "prefix": "1y"}, timeout=30)
    assert refused(r, 409, "order_key") and r.json()["code"] == "conflict"

    proc.stop()
    shop_clean(proc)
    assert (grid.cfg.dir / "shop" / "orders.jsonl").exists()
    proc, url = start_shop(grid, name="shop-again")  # a restarted shop knows the order and its key
    r = requests.post(url + "/api/orders", json=body, timeout=60)
    assert r.status_code == 200 and r.json()["task"] == task, r.text
    assert og.balances("requester")["requester"] == before - price  # still paid once

    def delivered():
        o = requests.get(url + f"/api/orders/{task}", timeout=30).json()
        return o["delivered"] and o

    assert wait_for(delivered, 120, f"order {task} followed to its result")["status"] == "COMPLETED"
    shop_clean(proc)


def test_a_spending_cap_refuses_the_order_beyond_it_and_off_loopback_needs_a_token(grid):
    og = OracleGrid(grid, "embedded").start(workers=0)
    price = og.hub.app(og.deployment.apps["vanitygen"]).price
    token = grid.cfg.dir / "shop.token"
    token.write_text(secrets.token_urlsafe(24))
    token.chmod(0o600)
    cap = f"{price / 10**9 * 1.5:.9f}"  # one order fits, a second does not
    proc, url = start_shop(grid, "--spend-cap", cap, "--token-file", str(token))
    before = og.balances("requester")["requester"]
    _, pub = combine.keygen()
    r = requests.post(url + "/api/orders", json=order_body("1x", pub.hex(), price), timeout=60)
    assert refused(r, 401, "token") and r.json()["code"] == "sign_in"
    auth = {"authorization": "Bearer " + token.read_text()}
    assert requests.post(url + "/api/orders", json=order_body("1x", pub.hex(), price), headers=auth, timeout=60).status_code == 201
    r = requests.post(url + "/api/orders", json=order_body("1x", pub.hex(), price), headers=auth, timeout=60)
    assert r.status_code == 403 and r.json()["code"] == "spend_cap" and "cap" in r.json()["error"], r.text
    assert og.balances("requester")["requester"] == before - price
    shop_clean(proc)

    from click.testing import CliRunner

    from xwpy.client.cli import cli
    from xwpy.client.commands import register

    register(cli)
    out = CliRunner().invoke(cli, ["vanity", "web", "--site", str(grid.cfg.dir), "--port", "0", "--interface", "0.0.0.0"])
    assert out.exit_code == 2 and "--token-file" in out.output and "Traceback" not in out.output, out.output
