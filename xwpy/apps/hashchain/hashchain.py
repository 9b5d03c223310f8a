"""Iterated SHA-256: the oracle's simplest app, deterministic and as slow as asked.

    python -m xwpy.apps.hashchain.hashchain ROUNDS TEXT_HEX

prints the hex of sha256 applied ROUNDS times to the bytes TEXT_HEX names (the text travels as
hex so that no job argument is ever mistaken for an option). Honest replicas print the same line.
"""

from __future__ import annotations

import hashlib
import sys

MAX_ROUNDS = 50_000_000


def hash_chain(data: bytes, rounds: int) -> bytes:
    for _ in range(rounds):
        data = hashlib.sha256(data).digest()
    return data


def main(argv: list[str]) -> int:
    if len(argv) != 2 or not argv[0].isdigit() or not 1 <= int(argv[0]) <= MAX_ROUNDS:
        print(f"usage: hashchain ROUNDS(1..{MAX_ROUNDS}) TEXT_HEX", file=sys.stderr)
        return 2
    try:
        data = bytes.fromhex(argv[1])
    except ValueError:
        print("hashchain: TEXT_HEX is not hexadecimal", file=sys.stderr)
        return 2
    print(hash_chain(data, int(argv[0])).hex())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
