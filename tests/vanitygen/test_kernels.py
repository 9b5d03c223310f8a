"""Every kernel finds exactly what the reference finds: same (offset, candidate) hits, in order."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xwpy.apps.vanitygen import kernel, native, reference, walk
from xwpy.apps.vanitygen.candidates import PER_POINT, transform_key, transform_point
from xwpy.apps.vanitygen.prefix import compile_prefix
from xwpy.apps.vanitygen.secp256k1 import N, encode, mul
from xwpy.apps.vanitygen.keys import address, candidate_public_key

from .strategies import frequent_prefixes, near_bounds, scalars, starts

ALL = 10**9  # "limit": collect every hit


def fast_kernels():
    """(name, scan) for every fast kernel built here, each native hash implementation apart."""
    out = [("python", kernel.scan)]
    for impl in native.impls():
        out.append((f"native:{impl}", lambda *a, impl=impl, **k: native.scan(*a, impl=impl, **k)))
    return out


KERNELS = fast_kernels()
needs_native = pytest.mark.skipif(not native.AVAILABLE, reason="native kernel not built")


def test_native_kernel_is_built_when_a_compiler_is_present():
    # the test machine has gcc; without this, every native check below would silently skip
    import shutil

    if shutil.which("gcc") or shutil.which("cc"):
        assert native.AVAILABLE, "run: python setup.py build_ext --inplace"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    prefix=frequent_prefixes,
    icase=st.booleans(),
    start=starts,
    count=st.integers(min_value=1, max_value=40),
    compressed=st.booleans(),
    half=st.sampled_from([1, 2, 5, None]),
    split=st.one_of(st.none(), scalars, st.integers(min_value=1, max_value=60).map(lambda j: N - j)),
)
def test_every_kernel_finds_what_the_reference_finds(prefix, icase, start, count, compressed, half, split):
    """Small batches (half) make ranges cross several batch edges; starts near 0 mod N and
    split-key points Q = -jG make batches degenerate, exercising the slow path."""
    target = compile_prefix(prefix, icase)
    pubkey = mul(split) if split is not None else None
    expected = reference.scan(target, start, count, compressed=compressed, pubkey=pubkey, limit=ALL)
    extra = {} if half is None else {"half": half}
    for name, scan in KERNELS:
        got = scan(target, start, count, compressed=compressed, pubkey=pubkey, limit=ALL, **extra)
        assert got == expected, name
        first = scan(target, start, count, compressed=compressed, pubkey=pubkey, limit=1, **extra)
        assert first == expected[:1], name


@needs_native
@settings(max_examples=5, deadline=None)
@given(start=scalars, compressed=st.booleans())
def test_native_agrees_with_python_over_many_batches(start, compressed):
    """Longer ranges than the reference can afford: 3 native batches, hundreds of hits."""
    target = compile_prefix("1A")
    count = 3 * (2 * native.HALF + 1) + 17
    expected = kernel.scan(target, start, count, compressed=compressed, limit=ALL)
    assert len(expected) > 100
    for name, scan in KERNELS[1:]:
        assert scan(target, start, count, compressed=compressed, limit=ALL) == expected, name


@settings(max_examples=10, deadline=None)
@given(start=scalars, split=st.one_of(st.none(), scalars))
def test_hits_are_real_matches(start, split):
    """Independent of the kernels: each reported hit's key, derived by coincurve, has a matching
    address, and no key between two hits matches (checked by the reference on the same range)."""
    target = compile_prefix("1B")
    q = mul(split) if split is not None else None
    hits = kernel.scan(target, start, 300, pubkey=q, limit=ALL)
    assert hits
    for off, cand in hits:
        pub = candidate_public_key((start + off) % N, cand, True, None if q is None else encode(q))
        assert target.matches_address(address(pub))


def test_candidate_order_matches_key_transforms():
    """Candidate c of point kG is the point of key transform_key(k, c)."""
    k = 0x1234567890ABCDEF
    pt = mul(k)
    for c in range(PER_POINT):
        assert transform_point(pt, c) == mul(transform_key(k, c))


def test_walk_wraps_through_zero_exactly():
    """Offsets from N-3 cross the scalar 0 (no key in normal mode): every kernel skips it."""
    target = compile_prefix("1")  # everything matches
    hits = reference.scan(target, N - 3, 6, limit=ALL)
    assert {o for o, _ in hits} == {0, 1, 2, 4, 5}
    for name, scan in KERNELS:
        assert scan(target, N - 3, 6, limit=ALL, half=2) == hits, name


def test_split_key_point_at_infinity_is_skipped():
    target = compile_prefix("1")
    q = mul(N - 10)  # (10 + offset)G + Q is infinity at offset 0 when start = 10
    hits = reference.scan(target, 10, 4, pubkey=q, limit=ALL)
    assert {o for o, _ in hits} == {1, 2, 3}
    for name, scan in KERNELS:
        assert scan(target, 10, 4, pubkey=q, limit=ALL, half=3) == hits, name


def test_bad_ranges_are_refused():
    target = compile_prefix("1A")
    for name, scan in KERNELS:
        with pytest.raises(ValueError, match="start"):
            scan(target, N, 1)
        with pytest.raises(ValueError, match="count"):
            scan(target, 1, -1)
        with pytest.raises(ValueError, match="limit"):
            scan(target, 1, 1, limit=0)


@needs_native
def test_native_hash160_matches_hashlib_for_every_implementation():
    from xwpy.apps.vanitygen.hashing import hash160

    for k in (1, 2, 3, 0xDEADBEEF, N - 1):
        pt = mul(k)
        for compressed in (True, False):
            pub = encode(pt, compressed)
            for impl in native.impls():
                assert native._native.hash160(pub, impl) == hash160(pub), impl


def test_pure_ripemd_fallback_gives_the_same_hits():
    target = compile_prefix("1C")
    assert kernel.scan(target, 99, 30, limit=ALL, force_pure_ripemd=True) == kernel.scan(target, 99, 30, limit=ALL)


def test_walk_table_holds_multiples_of_g_then_the_batch_step():
    tx, ty = walk.table(3)
    assert len(tx) == 4 and (tx[3], ty[3]) == mul(7)


@needs_native
@settings(max_examples=60, deadline=None)
@given(st.binary(min_size=20, max_size=20), st.integers(min_value=1, max_value=6), st.booleans(), st.randoms(use_true_random=False))
def test_native_range_test_is_exact_next_to_every_bound(h160, length, icase, rng):
    """Real hits never land on a range's end hash160, where the checksum decides; this drives the
    C coarse + exact test there directly and compares it with the Python definition."""
    import base58

    prefix = base58.b58encode_check(b"\x00" + h160).decode()[:length]
    target = compile_prefix(prefix.lower() if icase else prefix, icase)
    ranges = target.ranges_bytes()
    for h in list(near_bounds(target, rng)) + [h160]:
        assert native._native.matches(ranges, h) == target.matches_hash160(h), (prefix, h.hex())
