"""Count the primes in [LO, HI) with a segmented sieve; print "LO HI COUNT".

Shipped to workers as an app bundle (this directory), run as ``{python} primes.py LO HI``.
"""

import math
import sys


def count_primes(lo: int, hi: int) -> int:
    if hi <= 2:
        return 0
    lo = max(lo, 2)
    root = math.isqrt(hi - 1)
    base = bytearray([1]) * (root + 1)
    base[0:2] = b"\x00\x00"
    for i in range(2, math.isqrt(root) + 1):
        if base[i]:
            base[i * i :: i] = bytes(len(base[i * i :: i]))
    segment = bytearray([1]) * (hi - lo)
    for p in (i for i, flag in enumerate(base) if flag):
        start = max(p * p, (lo + p - 1) // p * p)
        segment[start - lo :: p] = bytes(len(segment[start - lo :: p]))
    return sum(segment)


def main(argv: list[str]) -> int:
    try:
        lo, hi = int(argv[1]), int(argv[2])
    except (IndexError, ValueError):
        print("usage: primes.py LO HI", file=sys.stderr)
        return 2
    if not 0 <= lo <= hi <= 10**10:
        print("need 0 <= LO <= HI <= 10^10", file=sys.stderr)
        return 2
    print(lo, hi, count_primes(lo, hi))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
