import os
import random

import base58
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xwpy.apps.vanitygen.hashing import checksum
from xwpy.apps.vanitygen.prefix import ALPHABET, PrefixError, address_from_hash160, compile_prefix
from xwpy.apps.vanitygen.difficulty import expected_tries

from .strategies import near_bounds


def b58_address(h160: bytes) -> str:
    return base58.b58encode_check(b"\x00" + h160).decode()


@pytest.mark.parametrize(
    "prefix, tries",
    [
        ("1Abc", 77_178.32),  # figures from the issue
        ("1Love", 4_476_342.78),
        ("11", 256.0),  # one zero byte of hash160
        ("1111", 256.0**3),
    ],
)
def test_expected_tries_match_known_values(prefix, tries):
    assert expected_tries(compile_prefix(prefix)) == pytest.approx(tries, abs=0.01)


@pytest.mark.parametrize("head", ["1", "1A", "1z1", "11"])
def test_prefixes_one_character_longer_partition_the_shorter_one(head):
    """Every address starting with `head` continues with exactly one base58 character, so the
    ranges of head + c over all c add up exactly to the ranges of head."""
    whole = compile_prefix(head).probability
    parts = 0
    for c in ALPHABET:
        try:
            parts += compile_prefix(head + c).probability
        except PrefixError:
            pass
    assert parts == whole


def test_icase_is_the_union_of_its_spellings():
    spellings = ["1ab", "1aB", "1Ab", "1AB"]
    total = sum(compile_prefix(s).probability for s in spellings)
    assert compile_prefix("1ab", icase=True).probability == total
    # 'l' has no lowercase form in base58 but matches 'L' case-insensitively
    assert compile_prefix("1l", icase=True).probability == compile_prefix("1L").probability


@settings(max_examples=150, deadline=None)
@given(
    st.binary(min_size=20, max_size=20),
    st.integers(min_value=1, max_value=8),
    st.booleans(),
    st.randoms(use_true_random=False),
)
def test_range_membership_equals_base58_prefix(h160, length, icase, rng):
    """Take a prefix of a real address (so it is possible), compile it, and compare the exact
    range test with base58-encoding, on random hashes and on hashes next to every bound."""
    address = b58_address(h160)
    prefix = address[:length]
    if icase:
        prefix = "".join(c.swapcase() if rng.random() < 0.5 else c for c in prefix)
    target = compile_prefix(prefix, icase)
    assert target.matches_hash160(h160)
    candidates = list(near_bounds(target, rng)) + [os.urandom(20) for _ in range(20)]
    for h in candidates:
        addr = b58_address(h)
        assert address_from_hash160(h) == addr
        assert target.matches_hash160(h) == target.matches_address(addr), (prefix, h.hex(), addr)
        # the kernels' coarse test never rules out a real match
        if target.matches_hash160(h):
            assert any(lo <= h <= hi for lo, hi in target.h160_bounds)


def test_all_zero_hash160_gives_the_longest_run_of_ones():
    zero = bytes(20)
    assert b58_address(zero).startswith("1" * 21)
    assert compile_prefix("1" * 21).matches_hash160(zero)
    assert checksum(zero)[0] != 0


@pytest.mark.parametrize(
    "prefix, icase, words",
    [
        ("", False, ["empty"]),
        ("1O", False, ["'O'", "position 2", "base58"]),
        ("10abc", False, ["'0'", "position 2"]),
        ("1Il", False, ["'I'", "'l'"]),
        ("10", True, ["'0'"]),
        ("3Abc", False, ["does not start with '1'", "P2SH"]),
        ("bc1qxyz", False, ["does not start with '1'"]),
        ("1" * 22, False, ["22 leading '1's", "at most 21"]),
        ("1" * 21 + "5", False, ["checksum"]),
        ("1" + "z" * 33, False, ["too large"]),
        ("1" + "z" * 34, False, ["too long"]),
        ("1" + "a" * 40, False, ["34 characters"]),
        ("1abcdefghjkmnpqrs", True, ["spellings"]),
        ("1Ab c", False, ["' '"]),
    ],
)
def test_bad_prefixes_are_rejected_with_the_reason(prefix, icase, words):
    with pytest.raises(PrefixError) as info:
        compile_prefix(prefix, icase)
    for w in words:
        assert w in str(info.value)


def test_non_string_prefix_is_rejected():
    with pytest.raises(PrefixError, match="string"):
        compile_prefix(b"1abc")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40), st.booleans())
def test_prefix_parser_only_ever_raises_prefix_error(text, icase):
    try:
        target = compile_prefix(text, icase)
    except PrefixError as exc:
        assert str(exc)
        return
    assert 0 < target.probability <= 1
    assert text.startswith("1")


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet=ALPHABET, min_size=1, max_size=12))
def test_possible_prefixes_have_sorted_disjoint_nonempty_ranges(tail):
    try:
        target = compile_prefix("1" + tail)
    except PrefixError:
        return
    prev = -1
    for lo, hi in target.ranges:
        assert prev < lo < hi <= 1 << 192
        prev = hi
    assert target.ranges_bytes() and len(target.ranges_bytes()) == 48 * len(target.ranges)


def test_a_random_address_prefix_matches_its_address():
    rng = random.Random(7)
    for _ in range(50):
        h = rng.randbytes(20)
        a = b58_address(h)
        for n in range(1, len(a) + 1):
            assert compile_prefix(a[:n]).matches_hash160(h)
