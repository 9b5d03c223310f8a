"""The web dashboard in a real headless Chromium, against a live coordinator and worker.

Needs Debian's ``chromium`` and ``chromium-driver`` and the ``selenium`` package (the test extra);
skipped without them unless XWPY_REQUIRE_CHROMIUM is set (CI sets it). Screenshots are kept in
$XWPY_ARTIFACTS/dashboard (a temporary directory by default; the test prints where)."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.grid.conftest import SQUARE
from tests.harness import wait_for

pytestmark = pytest.mark.slow

# Writes its progress, then runs until the test cancels it.
HALFWAY = ["/bin/sh", "-c", "echo 0.5 > progress; echo started; exec sleep 600"]
DEADLINE = 90  # seconds: a busy CI machine may take long; a condition is awaited, never a delay


def artifacts() -> Path:
    root = os.environ.get("XWPY_ARTIFACTS") or tempfile.gettempdir()
    path = Path(root) / "dashboard"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def chromium():
    """A factory of headless Chromium sessions (closed at the end)."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        webdriver = None
    if browser is None or driver is None or webdriver is None:
        missing = "selenium (pip install -e '.[test]')" if webdriver is None else "apt install chromium chromium-driver"
        if os.environ.get("XWPY_REQUIRE_CHROMIUM"):
            pytest.fail(f"XWPY_REQUIRE_CHROMIUM is set but headless Chromium is missing: {missing}")
        pytest.skip(f"headless Chromium is not installed: {missing}")
    sessions = []

    def start():
        options = webdriver.ChromeOptions()
        options.binary_location = browser
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--window-size=1280,1000", "--no-first-run", "--disable-extensions"):
            options.add_argument(arg)
        options.accept_insecure_certs = True  # the site's own CA, which this profile does not know
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        d = webdriver.Chrome(service=Service(driver), options=options)
        sessions.append(d)
        return d

    yield start
    for d in sessions:
        d.quit()


def text(driver, element_id: str) -> str:
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException

    try:
        return driver.find_element("id", element_id).text
    except (NoSuchElementException, StaleElementReferenceException):
        return ""


def sign_in(driver, url: str, token: str) -> None:
    driver.get(url + "/")
    box = driver.find_element("id", "token")
    box.send_keys(token)
    driver.find_element("css selector", "#signin-form button").click()
    wait_for(lambda: driver.execute_script("return document.body.dataset.version") is not None, DEADLINE,
             "the dashboard's first refresh")


def count(driver, status: str) -> int | None:
    shown = text(driver, f"count-{status}").split()
    return int(shown[0]) if shown and shown[0].isdigit() else None


def job_ids_shown(driver) -> set[int]:
    cells = driver.find_elements("css selector", "#jobs tbody tr td:first-child button")
    return {int(c.text) for c in cells if c.text.isdigit()}


def console_errors(driver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def test_the_dashboard_shows_a_users_jobs_live(grid, chromium):
    shots = artifacts()
    print(f"\ndashboard screenshots in {shots}")
    grid.start_coordinator()
    alice_token, bob_token = grid.user("alice"), grid.user("bob")
    alice, bob = grid.client(alice_token), grid.client(bob_token)
    alice.register_app(name="square", command=SQUARE, replication=1, quorum=1, access="public")
    alice.register_app(name="halfway", command=HALFWAY, replication=1, quorum=1)
    vol_token = grid.user("vol", "worker")
    grid.start_worker("w1", vol_token, slots=2)
    [secret] = bob.submit([{"app": "square", "args": ["7"]}], batch="bobs-secret-batch")
    [long] = alice.submit([{"app": "halfway", "args": []}], batch="long")
    wait_for(lambda: alice.job(long)["progress"] == 0.5, DEADLINE, "the long job running")
    grid.wait_final(bob, [secret])

    d = chromium()
    sign_in(d, grid.url, alice_token)
    assert alice_token not in d.current_url
    wait_for(lambda: long in job_ids_shown(d), DEADLINE, "alice's job listed")
    assert secret not in job_ids_shown(d)
    assert "bobs-secret-batch" not in d.find_element("tag name", "body").text
    assert count(d, "RUNNING") == 1 and count(d, "COMPLETED") == 0
    assert "long" in text(d, "batches")
    d.save_screenshot(str(shots / "1-signed-in.png"))

    # Live: a job that completes after the page loaded changes the counts without a reload.
    d.execute_script("window.xwpyNotReloaded = true")
    [quick] = alice.submit([{"app": "square", "args": ["12"]}], batch="quick")
    wait_for(lambda: count(d, "COMPLETED") == 1, DEADLINE, "the page to count the completed job")
    assert d.execute_script("return window.xwpyNotReloaded") is True
    assert quick in job_ids_shown(d)

    # A job's replicas: host, status, and the job's progress.
    d.find_element("css selector", f"#jobs button[title='show job {long}']").click()
    wait_for(lambda: "RUNNING" in text(d, "replicas"), DEADLINE, "the job's replicas")
    [replica] = alice.job(long)["replicas"]
    assert f"host {replica['host_id']}" in text(d, "replicas")  # alice may not see whose host it is
    assert "50% done" in text(d, "job-status")
    d.save_screenshot(str(shots / "2-job.png"))

    # A phone's width: everything fits, nothing scrolls sideways.
    d.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                      {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True})
    wait_for(lambda: d.execute_script("return window.innerWidth") == 390, DEADLINE, "the 390 px viewport")
    overflow = d.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
    d.save_screenshot(str(shots / "3-390px.png"))
    assert overflow <= 0, f"the page scrolls sideways by {overflow} px at 390 px"
    d.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})

    errors = console_errors(d)
    assert not errors, errors

    # The volunteer sees their host, and none of alice's or bob's jobs.
    v = chromium()
    sign_in(v, grid.url, vol_token)
    wait_for(lambda: "w1" in text(v, "hosts") and "alive" in text(v, "hosts"), DEADLINE, "the volunteer's host")
    assert re.search(r"\b1 / \d+ cores", text(v, "hosts"))  # its load: alice's long job
    assert job_ids_shown(v) == set() and count(v, "RUNNING") == 0
    assert "long" not in text(v, "batches")
    v.save_screenshot(str(shots / "4-volunteer.png"))
    errors = console_errors(v)
    assert not errors, errors
    alice.cancel([long])


def test_an_admin_sees_every_owner_and_the_hosts(grid, chromium):
    grid.start_coordinator()
    bob = grid.client(grid.user("bob"))
    bob.register_app(name="square", command=SQUARE, replication=2, quorum=2)
    grid.start_worker("w1", grid.user("vol", "worker"))
    [done] = bob.submit([{"app": "square", "args": ["2"], "replication": 1, "quorum": 1}], batch="bobs-batch")
    grid.wait_final(bob, [done])
    # Quorum 2 on a one-host site: the job waits for a second distinct host, and the page says so.
    [job] = bob.submit([{"app": "square", "args": ["3"]}], batch="bobs-batch")
    wait_for(lambda: "distinct host" in bob.job(job)["why"], DEADLINE, "the job to wait for a second host")

    d = chromium()
    sign_in(d, grid.url, grid.admin_token)
    wait_for(lambda: job in job_ids_shown(d), DEADLINE, "bob's job on the admin's page")
    assert "bobs-batch" in text(d, "batches")
    assert "distinct host" in text(d, "jobs")
    wait_for(lambda: "w1" in text(d, "hosts") and "alive" in text(d, "hosts"), DEADLINE, "the host, alive")
    assert "1 valid" in text(d, "hosts")  # the first job's result; the second's waits for a peer
    d.save_screenshot(str(artifacts() / "5-admin.png"))
    errors = console_errors(d)
    assert not errors, errors


def test_the_page_is_served_with_a_strict_policy_and_why_explains_a_wait(grid):
    """Without a browser: the page's headers, its files, and `xwpy why` on a job that waits."""
    import ssl
    import subprocess
    import sys
    import urllib.error
    import urllib.request

    from xwpy.localgrid import child_env
    from xwpy.server import web

    grid.start_coordinator()
    tls = ssl.create_default_context(cafile=str(grid.cfg.ca_cert))
    tls.check_hostname = False  # the certificate names the site's public host, not 127.0.0.1
    page = urllib.request.urlopen(grid.url + "/", context=tls, timeout=30)
    assert page.headers["content-security-policy"] == web.CSP
    assert "'unsafe" not in web.CSP and "script-src 'self'" in web.CSP
    html = page.read().decode()
    assert '<script type="module" src="/ui/app.js">' in html and "<script>" not in html
    script = urllib.request.urlopen(grid.url + "/ui/app.js", context=tls, timeout=30)
    assert script.headers["content-type"].startswith("text/javascript")
    source = script.read().decode()
    assert ".innerHTML" not in source and "eval(" not in source  # data is put in the page as text
    try:
        urllib.request.urlopen(urllib.request.Request(grid.url + "/", data=b"token=x", method="POST"), context=tls,
                               timeout=30)
        raise AssertionError("POST / was accepted")
    except urllib.error.HTTPError as e:
        assert e.code == 405

    bob_token = grid.user("bob")
    bob = grid.client(bob_token)
    bob.register_app(name="square", command=SQUARE, replication=2, quorum=2)
    [job] = bob.submit([{"app": "square", "args": ["3"]}])
    r = subprocess.run([sys.executable, "-m", "xwpy", "--url", grid.url, "--token", bob_token, "--ca",
                        str(grid.cfg.ca_cert), "why", str(job)], capture_output=True, text=True, env=child_env(),
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"job {job} is PENDING, stalled: no host alive"), r.stdout
