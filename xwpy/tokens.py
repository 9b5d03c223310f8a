"""Bearer tokens: 256 random bits, shown once, stored only as their sha256.

A token is high-entropy, so a plain sha256 is enough to make a stolen catalog useless (no slow
hash needed), and lets a request find its user by one dictionary look-up.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

PREFIXES = ("xwu", "xwh")  # user tokens, host tokens


def new_token(kind: str = "xwu") -> str:
    return f"{kind}_{secrets.token_urlsafe(32)}"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def redact(token: str) -> str:
    """What may appear in a log line: the kind only."""
    return token.split("_", 1)[0] + "_…" if token else ""
