"""The vanity shop (``xwpy vanity web``) in real processes: a coordinator with its oracle on the
embedded chain, two workers, the shop's server; a person orders a 2-character prefix for a fresh
split key, follows the order until the address is delivered and completes the key with the secret
only they hold. Bad input is a 4xx JSON answer naming the field."""

from __future__ import annotations

import re

import pytest
import requests
from tests.oracle.oraclegrid import OracleGrid

from xwpy.apps.vanitygen import combine
from xwpy.apps.vanitygen.difficulty import estimate
from xwpy.apps.vanitygen.prefix import compile_prefix
from tests.harness import wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def shop(grid):
    og = OracleGrid(grid, "embedded").start(workers=2)
    proc = grid.spawn("shop", "vanity", "web", "--site", str(grid.cfg.dir), "--port", "0")

    def listening():
        if not proc.alive():
            raise RuntimeError(f"the shop exited:\n{proc.output()[-3000:]}")
        m = re.search(r"the vanity shop: (http://127\.0\.0\.1:\d+)/", proc.output())
        return m and m.group(1)

    url = wait_for(listening, 30, "the shop to listen")
    yield og, url
    assert "Traceback" not in proc.output() and "internal error" not in proc.output(), proc.output()[-3000:]


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

    e1, e2 = (requests.get(url + "/api/estimate", params={"prefix": p}, timeout=10).json() for p in ("1x", "1xw"))
    assert e2["prefix"] == "1xw" and e2["expected_tries"] == pytest.approx(1 / e2["probability"])
    assert e2["expected_tries"] == pytest.approx(estimate(compile_prefix("1xw")).expected_tries)
    assert 50 < e2["expected_tries"] / e1["expected_tries"] < 70  # one more base58 digit: ~58 times harder

    secret, pub = combine.keygen()  # the person's split key: the shop only ever sees pub
    before = og.balances("requester")
    r = requests.post(url + "/api/orders", json={"prefix": "1x", "public_key": pub.hex()}, timeout=60)
    assert r.status_code == 201, r.text
    order = r.json()
    task = order["task"]
    assert order["status"] == "REQUESTED" and order["prefix"] == "1x" and order["public_key"] == pub.hex()
    assert og.hub.task(task).price == order["price"] > 0  # in escrow at the hub
    assert og.balances("requester")["requester"] == before["requester"] - order["price"]

    # Mistakes while the grid works: each one a 4xx JSON naming the field, nothing ordered.
    for prefix in ("10", "1l", "", 7):
        refused(requests.post(url + "/api/orders", json={"prefix": prefix, "public_key": pub.hex()}, timeout=10), 400, "prefix")
    for key in ("02" + "00" * 32, pub.hex()[:-2], "zz" * 33, None, "04" + "11" * 64):
        refused(requests.post(url + "/api/orders", json={"prefix": "1x", "public_key": key}, timeout=10), 400, "public_key")
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
