"""Pure-Python curve arithmetic and hashes against coincurve and hashlib."""

import hashlib

import coincurve
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xwpy.apps.vanitygen import secp256k1 as ec
from xwpy.apps.vanitygen.hashing import ripemd160_factory, ripemd160_pure

from .strategies import scalars


@settings(max_examples=50, deadline=None)
@given(scalars)
def test_scalar_multiplication_matches_coincurve(k):
    assert ec.mul(k) == coincurve.PublicKey.from_secret(k.to_bytes(32, "big")).point()


@settings(max_examples=50, deadline=None)
@given(scalars, scalars)
def test_addition_is_scalar_addition(a, b):
    assert ec.add(ec.mul(a), ec.mul(b)) == ec.mul(a + b)


def test_addition_special_cases():
    p = ec.mul(5)
    assert ec.add(p, ec.neg(p)) is None
    assert ec.add(p, p) == ec.mul(10)
    assert ec.add(None, p) == p and ec.add(p, None) == p
    assert ec.mul(ec.N) is None and ec.mul(0) is None


def test_endomorphism_constants():
    assert pow(ec.BETA, 3, ec.P) == 1 and ec.BETA != 1
    assert pow(ec.LAMBDA, 3, ec.N) == 1 and ec.LAMBDA != 1
    assert ec.mul(ec.LAMBDA) == (ec.GX * ec.BETA % ec.P, ec.GY)


@settings(max_examples=50, deadline=None)
@given(scalars, st.booleans())
def test_encode_decode_roundtrip(k, compressed):
    pt = ec.mul(k)
    data = ec.encode(pt, compressed)
    assert data == coincurve.PublicKey.from_secret(k.to_bytes(32, "big")).format(compressed)
    assert ec.decode(data) == pt


@pytest.mark.parametrize(
    "data, words",
    [
        (b"\x02" + b"\xff" * 32, "field prime"),
        (b"\x05" + b"\x01" * 32, "33 bytes"),
        (b"\x04" + b"\x01" * 64, "not on secp256k1"),
        (b"", "got 0 bytes"),
    ],
)
def test_decode_names_the_problem(data, words):
    with pytest.raises(ValueError, match=words):
        ec.decode(data)


def test_decode_rejects_x_without_a_curve_point():
    x = next(x for x in range(1, 100) if pow((x**3 + 7) % ec.P, (ec.P - 1) // 2, ec.P) != 1)
    with pytest.raises(ValueError, match="not on secp256k1"):
        ec.decode(b"\x02" + x.to_bytes(32, "big"))


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200))
def test_pure_ripemd160_matches_hashlib(data):
    assert ripemd160_pure(data) == hashlib.new("ripemd160", data).digest()


def test_pure_ripemd160_object_protocol():
    make = ripemd160_factory(force_pure=True)
    h = make()
    h.update(b"ab")
    c = h.copy()
    c.update(b"c")
    assert c.digest() == hashlib.new("ripemd160", b"abc").digest()
    assert h.digest() == hashlib.new("ripemd160", b"ab").digest()


def test_ripemd_fallback_order(monkeypatch):
    from xwpy.apps.vanitygen import hashing

    assert hashing.ripemd160_factory(force_pure=True) is hashing._PureRipemd
    monkeypatch.setattr(hashing, "HASHLIB_RIPEMD", False)
    make = hashing.ripemd160_factory()
    h = make()
    h.update(b"abc")
    assert h.digest() == hashlib.new("ripemd160", b"abc").digest()
    monkeypatch.setattr(hashing, "_pycryptodome_ripemd", lambda: None)
    assert hashing.ripemd160_factory() is hashing._PureRipemd
