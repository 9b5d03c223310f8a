"""The embedded chain as the coordinator runs it: a Twisted service, in the reactor."""

from __future__ import annotations

import json

import pytest
import pytest_twisted
import treq

from xwpy.chain.embedded import EmbeddedChain
from xwpy.chain.rpc import EmbeddedChainService, is_loopback, start_server

TOKEN = "s3cret-token-for-tests"


async def post(url, payload, token=None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await treq.post(url, json.dumps(payload).encode(), headers=headers)
    return response.code, json.loads(await response.text())


@pytest_twisted.ensureDeferred
async def test_service_serves_and_requires_its_token(tmp_path):
    service = EmbeddedChainService(tmp_path / "chain", port=0, token=TOKEN)
    service.startService()
    try:
        port = await service.ready
        url = f"http://127.0.0.1:{port}/"
        call = {"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber"}
        code, body = await post(url, call)
        assert code == 401 and "bearer token" in body["error"]["message"]
        code, body = await post(url, call, token=TOKEN + "x")
        assert code == 401
        code, body = await post(url, call, token=TOKEN)
        assert code == 200 and body == {"jsonrpc": "2.0", "id": 1, "result": "0x0"}
        code, body = await post(url, {"jsonrpc": "2.0", "id": 2, "method": "evm_mine"}, token=TOKEN)
        assert body["result"] == "0x0"
    finally:
        await service.stopService()
    # Its journal is there for the next start.
    assert EmbeddedChain.create(tmp_path / "chain").block_number() == 1


def test_no_token_no_public_interface():
    chain = object()  # never reached: refused before anything starts
    with pytest.raises(ValueError, match="without a token"):
        start_server(chain, 0, "0.0.0.0")
    with pytest.raises(ValueError, match="at least 16"):
        start_server(chain, 0, "127.0.0.1", token="short")


@pytest.mark.parametrize("iface,expected", [("127.0.0.1", True), ("127.8.0.1", True), ("::1", True), ("localhost", True), ("0.0.0.0", False), ("10.1.2.3", False), ("example.org", False)])
def test_loopback_detection(iface, expected):
    assert is_loopback(iface) is expected
