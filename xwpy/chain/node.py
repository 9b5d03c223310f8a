"""Reaching a JSON-RPC node (the embedded chain, ganache or a real one). Blocking calls."""

from __future__ import annotations

import time
from typing import Callable

from web3 import Web3
from web3.exceptions import Web3RPCError


class NodeUnavailable(Exception):
    pass


def _secrets(url: str) -> list[str]:
    """The parts of URL that may carry a credential: user:password@, the path (providers put the
    API key there: /v3/KEY), the query (?apikey=...) and the fragment."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    found = []
    if "@" in parts.netloc:
        found.append(parts.netloc.rsplit("@", 1)[0])
    if parts.path not in ("", "/"):
        found.append(parts.path)
    found += [p for p in (parts.query, parts.fragment) if p]
    return found


def redact_url(url: str) -> str:
    """URL fit for a log line or a file others read: scheme, host and port; "…" stands for a
    path, query or user info, which may hold an API key."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    tail = "/…" if parts.path not in ("", "/") or parts.query or parts.fragment else ""
    return f"{parts.scheme}://{host}{tail}"


def scrub(text: str, url: str) -> str:
    """TEXT (an error message, say) without the secret parts of URL."""
    for secret in sorted(_secrets(url), key=len, reverse=True):
        if len(secret) > 1:
            text = text.replace(secret, "…")
    return text


def connect(url: str, *, timeout: float = 30.0, token: str | None = None) -> Web3:
    """A Web3 for URL (http:// or https://); no request is made yet.

    TOKEN is sent as a bearer token (the coordinator's embedded chain off loopback).
    """
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"chain URL must be http:// or https://, got {url!r}")
    kwargs: dict = {"timeout": timeout}
    if token is not None:
        kwargs["headers"] = {"Authorization": f"Bearer {token}"}
    return Web3(Web3.HTTPProvider(url, request_kwargs=kwargs))


def wait_until_ready(
    w3: Web3,
    timeout: float = 30.0,
    *,
    alive: Callable[[], bool] | None = None,
    interval: float = 0.05,
) -> int:
    """Poll until the node answers eth_chainId; returns the chain id.

    ALIVE (e.g. "the node's process still runs") stops the wait early with a clear error
    instead of waiting out the timeout for a node that died at start.
    """
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while True:
        if alive is not None and not alive():
            raise NodeUnavailable("the node process exited before answering")
        try:
            return w3.eth.chain_id
        except Exception as exc:  # connection refused while it starts
            last = exc
        if time.monotonic() >= deadline:
            raise NodeUnavailable(f"no answer from {w3.provider} within {timeout}s: {last}")
        time.sleep(interval)


def latest_timestamp(w3: Web3) -> int:
    return w3.eth.get_block("latest")["timestamp"]


def advance_time(w3: Web3, seconds: int) -> int:
    """Move a dev chain's clock forward and mine a block there (ganache and the embedded
    chain both serve evm_increaseTime/evm_mine); returns the new block's timestamp."""
    for method, params in (("evm_increaseTime", [seconds]), ("evm_mine", [])):
        response = w3.provider.make_request(method, params)
        if "error" in response:
            raise Web3RPCError(f"{method}: {response['error']}")
    return latest_timestamp(w3)
