"""Hypothesis strategies shared by the vanity tests."""

from hypothesis import strategies as st

from xwpy.apps.vanitygen.prefix import ALPHABET
from xwpy.apps.vanitygen.secp256k1 import N

scalars = st.integers(min_value=1, max_value=N - 1)

# Prefixes that match often enough for small ranges to contain hits: '1' + one character
# (1 in 23..1354), or '11' (1 in 256); sometimes longer, which mostly tests "no hit".
frequent_prefixes = st.one_of(
    st.sampled_from(ALPHABET[1:]).map(lambda c: "1" + c),
    st.just("11"),
    st.text(alphabet=ALPHABET[1:], min_size=2, max_size=3).map(lambda s: "1" + s),
)

# Starting scalars, biased towards the places where walks degenerate: around 0 (mod N).
starts = st.one_of(
    scalars,
    st.integers(min_value=0, max_value=40),
    st.integers(min_value=N - 80, max_value=N - 1),
)


def near_bounds(target, rng):
    """hash160 values at and around each range end, where the checksum decides."""
    for lo, hi in target.ranges:
        for h in (lo >> 32, (hi - 1) >> 32):
            for d in (-2, -1, 0, 1, 2):
                if 0 <= h + d < 1 << 160:
                    yield (h + d).to_bytes(20, "big")
        for _ in range(3):
            yield rng.randrange(lo >> 32, ((hi - 1) >> 32) + 1).to_bytes(20, "big")
