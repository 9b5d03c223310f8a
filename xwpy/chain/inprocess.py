"""A web3 provider that talks JSON-RPC to an EmbeddedChain in the same process, no HTTP.

Requests go through the same envelope handling as the HTTP resource (``rpc.handle_body``),
bytes in and bytes out, so what works here works over HTTP. For unit tests of code that
uses web3 (the oracle's, for instance) without a server, a thread or a port. Calls run on
the caller's thread: do not share one chain between this provider and a running server.
"""

from __future__ import annotations

from typing import Any

from web3 import Web3
from web3.providers.base import JSONBaseProvider

from xwpy.chain.rpc import handle_body


class EmbeddedProvider(JSONBaseProvider):
    def __init__(self, chain) -> None:
        super().__init__()
        self.chain = chain

    def make_request(self, method, params: Any):
        body = handle_body(self.chain, self.encode_rpc_request(method, params))
        return self.decode_rpc_response(body)

    def is_connected(self, show_traceback: bool = False) -> bool:
        return True


def web3_for(chain) -> Web3:
    return Web3(EmbeddedProvider(chain))
