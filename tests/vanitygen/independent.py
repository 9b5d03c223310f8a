"""Address computation that shares no code with the project: coincurve, hashlib, base58."""

import hashlib

import base58
import coincurve


def independent_address(key: int, compressed: bool = True) -> str:
    pub = coincurve.PrivateKey(key.to_bytes(32, "big")).public_key.format(compressed)
    h160 = hashlib.new("ripemd160", hashlib.sha256(pub).digest()).digest()
    return base58.b58encode_check(b"\x00" + h160).decode()


def independent_wif_key(wif: str) -> tuple[int, bool]:
    raw = base58.b58decode_check(wif)
    assert raw[0] == 0x80
    return int.from_bytes(raw[1:33], "big"), len(raw) == 34
