"""`xwpy demo` (the README's first command) runs to its end, the on-chain part included."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from xwpy.client.cli import cli
from xwpy.client.commands import register

pytestmark = pytest.mark.slow
register(cli)


def test_the_demo_ends_with_a_vanity_address_delivered_on_chain(tmp_path):
    out = CliRunner().invoke(cli, ["demo", "--dir", str(tmp_path / "demo"), "--workers", "2", "--jobs", "2"])
    assert out.exit_code == 0, out.output[-3000:]
    text = out.output
    assert "delivered to the consumer contract" in text
    # The tool shipped as an image: each job's word count, run in the image on 2 hosts.
    assert len(re.findall(r"^   job +\d+: +(\d+) words \(expected \1\), run in the image on 2 hosts$", text, re.M)) == 6
    assert text.count("(exactly as agreed)") == 3
    [address] = re.findall(r"^11\. the consumer holds \d+ bytes: .*\"address\":\"(1xw\w+)\"", text, re.M)
    assert f"address:           {address}" in text  # what carol combined is what the chain delivered
