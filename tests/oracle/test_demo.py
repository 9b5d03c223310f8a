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
    assert text.count("(exactly as agreed)") == 3
    [address] = re.findall(r"^10\. the consumer holds \d+ bytes: .*\"address\":\"(1xw\w+)\"", text, re.M)
    assert f"address:           {address}" in text  # what carol combined is what the chain delivered
