"""An account address as a volunteer types it (``xwpy worker payout-address``), checked once for
the CLI and the coordinator alike: 0x and 40 hexadecimal digits, and when its letters are mixed
case, the EIP-55 checksum they encode (a typo in a checksummed address is caught, not paid)."""

from __future__ import annotations

from xwpy.protocol import ADDRESS_RE


def checked(text: str) -> str:
    """TEXT as a checksummed address; ValueError saying what is wrong. Without the chain part of
    xwpy (no keccak) the format alone is checked and the address kept as typed."""
    if not isinstance(text, str) or not ADDRESS_RE.fullmatch(text):
        raise ValueError(f"not an address (0x and 40 hexadecimal digits): {str(text)[:60]!r}")
    try:
        from eth_utils import to_checksum_address
    except ImportError:
        return text
    summed = to_checksum_address(text)
    digits = text[2:]
    if digits != digits.lower() and digits != digits.upper() and summed != text:
        raise ValueError(f"{text} fails its EIP-55 checksum (a typo?): check the address")
    if int(digits, 16) == 0:
        raise ValueError("the zero address cannot claim anything")
    return summed
