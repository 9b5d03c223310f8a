"""``xwpy doctor`` on real sites: healthy, an expired certificate (then renewed), a full disk, a
locked catalog — one line per check, exit status 1 on any failure, never a traceback."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.reliability import faults
from xwpy.localgrid import child_env

pytestmark = pytest.mark.slow


def doctor(grid, *args):
    r = subprocess.run([sys.executable, "-m", "xwpy", "doctor", "--site", str(grid.cfg.dir), *args],
                       capture_output=True, text=True, env=child_env(), timeout=120, cwd=grid.root)
    assert "Traceback" not in r.stderr + r.stdout, r.stderr
    lines = {line.split(":")[0].split(" ", 1)[1].strip(): line for line in r.stdout.splitlines()}
    return r.returncode, lines


def test_a_healthy_site_with_its_coordinator_running(grid):
    grid.start_coordinator()
    code, lines = doctor(grid)
    assert code == 0, lines
    for check in ("configuration", "CA certificate", "server certificate", "catalog", "blob store", "coordinator", "clock"):
        assert lines[check].startswith("OK"), lines
    assert "writable" in lines["catalog"] and "healthy" in lines["coordinator"]


def test_an_expired_certificate_is_named_and_renewing_it_works(grid):
    ca_cert = x509.load_pem_x509_certificate(grid.cfg.ca_cert.read_bytes())
    ca_key = serialization.load_pem_private_key(grid.cfg.ca_key.read_bytes(), None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    expired = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
               .issuer_name(ca_cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(days=400)).not_valid_after(now - dt.timedelta(days=2))
               .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
               .sign(ca_key, hashes.SHA256()))
    grid.cfg.server_cert.write_bytes(expired.public_bytes(serialization.Encoding.PEM))
    code, lines = doctor(grid)
    assert code == 1
    assert lines["server certificate"].startswith("FAIL") and "expired on" in lines["server certificate"]
    assert "xwpy cert renew" in lines["server certificate"]
    r = subprocess.run([sys.executable, "-m", "xwpy", "cert", "renew", "--site", str(grid.cfg.dir)],
                       capture_output=True, text=True, env=child_env(), timeout=60)
    assert r.returncode == 0 and "127.0.0.1" in r.stdout, r.stderr
    grid.start_coordinator()  # serves the new certificate: clients of the site's CA connect
    assert grid.client().ping()["service"] == "xwpy"
    code, lines = doctor(grid)
    assert code == 0 and lines["server certificate"].startswith("OK"), lines


def test_a_full_disk_and_a_locked_catalog(grid):
    try:
        with faults.tmpfs(grid.cfg.blobs, "2m"):
            faults.fill(grid.cfg.blobs, leave=64 << 10)
            code, lines = doctor(grid)
            assert code == 1
            assert lines["blob store"].startswith("FAIL") and "min_free_bytes" in lines["blob store"], lines
    except PermissionError as e:
        pytest.skip(f"cannot mount a tmpfs (root only): {e}")
    with faults.locked_sqlite(grid.cfg.database_url.removeprefix("sqlite:///")):
        code, lines = doctor(grid)
    assert code == 1
    assert lines["catalog"].startswith("FAIL") and "locked" in lines["catalog"], lines
    assert lines["blob store"].startswith("OK")  # the disk has room again


def test_not_a_site():
    r = subprocess.run([sys.executable, "-m", "xwpy", "doctor", "--site", "/nonexistent"],
                       capture_output=True, text=True, env=child_env(), timeout=60)
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "not a directory" in r.stderr
