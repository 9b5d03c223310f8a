"""The coordinator's TLS as operators expect it: Mozilla's "intermediate" profile, checked by sslyze
(the scanner operators run, with Mozilla's profile bundled); certificates of a year at most; and a
renewed server certificate served to new connections of the running coordinator, the CA unchanged,
with no connection dropped and no work lost."""

from __future__ import annotations

import json
import signal
import socket
import ssl
import subprocess
import sys

import pytest
from cryptography import x509

from tests.grid.conftest import SLOW
from tests.harness import wait_for
from xwpy import pki
from xwpy.localgrid import child_env
from xwpy.site import served_serial

pytestmark = pytest.mark.slow


def test_the_coordinator_passes_mozillas_intermediate_profile(grid):
    from sslyze import (CertificateInfoExtraArgument, Scanner, ScanCommandsExtraArguments, ServerNetworkLocation,
                        ServerScanRequest)
    from sslyze.mozilla_tls_profile.tls_config_checker import (
        SCAN_COMMANDS_NEEDED_BY_MOZILLA_CHECKER, MozillaTlsConfiguration, TlsConfigurationEnum,
        check_server_against_tls_configuration)

    grid.start_coordinator()
    scanner = Scanner()
    scanner.queue_scans([ServerScanRequest(
        server_location=ServerNetworkLocation("localhost", grid.port, ip_address="127.0.0.1"),
        scan_commands=SCAN_COMMANDS_NEEDED_BY_MOZILLA_CHECKER,
        # The site's own CA: the certificate's path is validated against it, as a worker does.
        scan_commands_extra_arguments=ScanCommandsExtraArguments(
            certificate_info=CertificateInfoExtraArgument(custom_ca_file=grid.cfg.ca_cert)),
    )])
    [result] = list(scanner.get_results())
    # Raises ServerNotCompliantWithTlsConfiguration naming each issue (ciphers, curves, lifespan...).
    check_server_against_tls_configuration(result, MozillaTlsConfiguration.get(TlsConfigurationEnum.MOZILLA_INTERMEDIATE))
    # What xwpy init issued: a year, within both Mozilla's 366 days and browsers' 398.
    cert = x509.load_pem_x509_certificate(grid.cfg.server_cert.read_bytes())
    assert (cert.not_valid_after_utc - cert.not_valid_before_utc).days <= pki.MAX_SERVER_CERT_DAYS <= 398
    with pytest.raises(ValueError, match="1 to 366 days"):
        pki.make_server_cert(grid.cfg.ca_cert.read_bytes(), grid.cfg.ca_key.read_bytes(), ["x"], days=398)


def renew(grid, *extra):
    r = subprocess.run([sys.executable, "-m", "xwpy", "cert", "renew", "--site", str(grid.cfg.dir), "--json", *extra],
                       capture_output=True, text=True, env=child_env(), timeout=120, cwd=grid.root)
    assert "Traceback" not in r.stderr, r.stderr
    return r


def test_a_renewed_certificate_is_served_at_once_and_work_goes_on(grid, tmp_path):
    grid.start_coordinator()
    vol = grid.user("vol", "worker")
    alice = grid.client(grid.user("alice"))
    alice.register_app(name="slow", command=SLOW, replication=1, quorum=1)
    worker = grid.start_worker("w0", vol)
    ca_before = grid.cfg.ca_cert.read_bytes()
    old_serial = served_serial(grid.url, grid.cfg.ca_cert)
    assert old_serial == pki.serial_of(grid.cfg.server_cert.read_bytes())
    # Work in progress, and a connection open (kept alive) across the renewal.
    [running] = alice.submit([{"app": "slow", "args": ["3", "before"]}])
    wait_for(lambda: alice.job(running)["status"] == "RUNNING", 60, "the job to start")
    ctx = ssl.create_default_context(cafile=str(grid.cfg.ca_cert))
    kept = ctx.wrap_socket(socket.create_connection(("127.0.0.1", grid.port), timeout=30), server_hostname="127.0.0.1")

    r = renew(grid, "--days", "30")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    new_serial = int(out["serial"], 16)
    assert new_serial != old_serial and out["coordinator_pid"] == grid.coordinator.popen.pid
    # New connections get the new certificate (the CLI waited for that); the CA is the same file.
    assert served_serial(grid.url, grid.cfg.ca_cert) == new_serial
    assert grid.cfg.ca_cert.read_bytes() == ca_before
    cert = x509.load_pem_x509_certificate(grid.cfg.server_cert.read_bytes())
    assert (cert.not_valid_after_utc - cert.not_valid_before_utc).days == 30
    # The connection opened before still serves, with the old certificate.
    kept.sendall(b"GET /api/v1/ping HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert kept.recv(4096).startswith(b"HTTP/1.1 200")
    assert pki.serial_of(kept.getpeercert(binary_form=True)) == old_serial
    kept.close()
    # The worker, never restarted, finishes what it ran and takes new work.
    [after] = alice.submit([{"app": "slow", "args": ["0", "after"]}])
    jobs = grid.wait_final(alice, [running, after], timeout=120)
    assert {j["status"] for j in jobs.values()} == {"COMPLETED"}
    assert worker.alive() and len(grid.client().hosts()) == 1
    assert "server certificate reloaded" in grid.coordinator.output()
    # Too long a certificate is refused on the command line; a pair that does not match is not
    # served (the coordinator says so and keeps the one it has).
    r = renew(grid, "--days", "400")
    assert r.returncode == 2 and "400 is not in the range 1<=x<=366" in r.stderr
    _, other_key = pki.make_server_cert(grid.cfg.ca_cert.read_bytes(), grid.cfg.ca_key.read_bytes(), ["x"])
    grid.cfg.server_key.write_bytes(other_key)
    grid.coordinator.send(signal.SIGHUP)
    wait_for(lambda: "server certificate not reloaded" in grid.coordinator.output(), 30, "the refusal in the log")
    assert served_serial(grid.url, grid.cfg.ca_cert) == new_serial and grid.coordinator.alive()
