"""A coordinator that cannot open its catalog says why in one line, the password hidden — not a
traceback (found trying the README's "Beyond one machine" as a new user would)."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from xwpy.localgrid import child_env
from xwpy.site import init_site

pytest.importorskip("psycopg")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_catalog_out_of_reach_is_one_line_without_the_password(tmp_path):
    cfg, _ = init_site(tmp_path / "site", port=0)
    text = cfg.dir.joinpath("xwpy.toml").read_text()
    url = f"postgresql+psycopg://xwpy:s3cret@127.0.0.1:{_closed_port()}/xwpy"
    cfg.dir.joinpath("xwpy.toml").write_text(text.replace('url = "sqlite:///catalog.sqlite"', f'url = "{url}"'))
    r = subprocess.run([sys.executable, "-m", "xwpy", "coordinator", "--site", str(cfg.dir)],
                       capture_output=True, text=True, env=child_env(), timeout=120)
    assert r.returncode == 1
    out = r.stdout + r.stderr
    assert "Traceback" not in out and "s3cret" not in out
    assert "coordinator failed to start: cannot open the catalog postgresql+psycopg://xwpy:***@127.0.0.1" in out
