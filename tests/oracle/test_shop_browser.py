"""The shop's page in a real headless Chromium, as a customer uses it, against the shop of a grid
with its oracle on the embedded chain: the price and expected time shown before paying, an order
refused until signed in, a double click that pays once, the key made and completed in the page
(the same WIF and address as the Python combine), the 390 px layout, and an order refused beyond
the spending cap. Screenshots in $XWPY_ARTIFACTS/shop. Chromium is required as for the dashboard
test (tests/grid/test_dashboard.py, XWPY_REQUIRE_CHROMIUM)."""

from __future__ import annotations

import secrets

import pytest
import tests.grid.test_dashboard as dashboard
from tests.grid.test_dashboard import DEADLINE, artifacts, console_errors, text
from tests.oracle.oraclegrid import OracleGrid, shop_clean, start_shop

from xwpy.apps.vanitygen import combine
from xwpy.apps.vanitygen.secp256k1 import N

pytestmark = pytest.mark.slow
chromium = dashboard.chromium  # the dashboard test's fixture: headless sessions, closed after the test


def wait(driver, condition, what: str):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, DEADLINE, poll_frequency=0.2).until(lambda d: condition(), message=what)


def shown(driver, element_id: str) -> bool:
    return driver.execute_script(f"const e = document.getElementById('{element_id}'); "
                                 "return e !== null && e.offsetParent !== null")


def test_a_customer_orders_pays_once_and_completes_the_key_in_the_page(grid, chromium):
    shots = artifacts().parent / "shop"
    shots.mkdir(parents=True, exist_ok=True)
    print(f"\nshop screenshots in {shots}")
    og = OracleGrid(grid, "embedded").start(workers=2)
    price = og.hub.app(og.deployment.apps["vanitygen"]).price
    token = grid.cfg.dir / "shop.token"
    token.write_text(secrets.token_urlsafe(24))
    token.chmod(0o600)
    proc, url = start_shop(grid, "--token-file", str(token), "--spend-cap", f"{price * 3 // 2 / 10**9:.9f}")
    before = og.balances("requester")["requester"]

    d = chromium()
    d.get(url + "/")
    submit = d.find_element("id", "submit")
    wait(d, lambda: submit.is_enabled() and "RLC" in submit.text, "the price on the button")
    from xwpy.client.chainclient import format_rlc

    assert format_rlc(price) in submit.text
    assert f"Price: {format_rlc(price)}" in text(d, "quote") and "expected time" in text(d, "quote")
    public = text(d, "k-public")
    assert len(public) == 66 and d.find_element("id", "public_key").get_attribute("value") == public
    d.save_screenshot(str(shots / "1-price-before-paying.png"))

    # Not signed in: one clear refusal on the page, nothing paid.
    submit.click()
    wait(d, lambda: "sign in" in text(d, "form-error"), "the sign-in refusal")
    assert shown(d, "signin") and og.balances("requester")["requester"] == before
    d.save_screenshot(str(shots / "2-refused-sign-in.png"))

    # Signed in, a double click (and a second submit for good measure): one order, paid once.
    d.find_element("id", "token").send_keys(token.read_text())
    d.execute_script("const b = document.getElementById('submit'); b.click(); b.click(); "
                     "document.getElementById('order').requestSubmit();")
    wait(d, lambda: text(d, "f-task"), "the order followed")
    assert not submit.is_enabled()
    task = int(text(d, "f-task").split()[0])
    assert og.balances("requester")["requester"] == before - price
    assert proc.output().count('"POST /api/orders') == 2  # the refused one and this one: no second request
    assert og.hub.task(task).price == price

    wait(d, lambda: shown(d, "d-own"), "the address delivered and combined in the page")
    d.save_screenshot(str(shots / "3-delivered.png"))
    secret = d.execute_script(f"return localStorage.getItem('xwpy-shop-order-{task}')")
    got = combine.combine_parts(int(text(d, "d-partial"), 16), int(text(d, "d-candidate")), int(secret, 16))
    assert combine.public_key(int(secret, 16), True).hex() == public  # the key the page made and sent
    assert text(d, "d-wif") == got.wif and text(d, "d-combined-address") == got.address == text(d, "d-address")
    assert got.address.startswith("1x")

    # A phone: 390 px, nothing wider, the long keys and hashes wrapped inside the viewport.
    d.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True})
    wait(d, lambda: d.execute_script("return window.innerWidth") == 390, "the 390 px viewport")
    assert d.execute_script("return document.documentElement.scrollWidth") <= 390
    overflowing = d.execute_script(
        "return Array.from(document.querySelectorAll('.wrap, pre, button, input, textarea')).filter(e => e.offsetParent !== null"
        " && (e.getBoundingClientRect().right > 390 || e.scrollWidth > e.clientWidth + 1)).map(e => e.id)")
    assert overflowing == []
    d.save_screenshot(str(shots / "4-390px.png"))

    # A second order would pass the spending cap: refused on the page, nothing paid.
    d.find_element("id", "again").click()
    wait(d, lambda: text(d, "k-public") != public and submit.is_enabled(), "a fresh key for the next order")
    submit.click()
    wait(d, lambda: "spending cap" in text(d, "form-error"), "the spending-cap refusal")
    assert og.balances("requester")["requester"] == before - price
    d.save_screenshot(str(shots / "5-refused-over-the-cap.png"))

    # The page's arithmetic against the Python combine, for every candidate transform.
    for candidate in range(6):
        partial, secret = secrets.randbelow(N), secrets.randbelow(N - 1) + 1
        page = d.execute_script("return window.xwpyShop.combine(arguments[0], arguments[1], arguments[2])",
                                f"{partial:064x}", candidate, f"{secret:064x}")
        want = combine.combine_parts(partial, candidate, secret)
        assert (page["wif"], page["address"]) == (want.wif, want.address)
    # No CSP violation, no script error (the refusals answered 4xx, and there is no favicon).
    assert [m for m in console_errors(d) if "/api/orders" not in m and "favicon.ico" not in m] == []
    shop_clean(proc)
