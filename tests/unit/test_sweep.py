"""Sweeps (issue 16, item 2): parsing the axes, the cartesian product, filling the templates."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xwpy.client.sweep import MAX_SWEEP_JOBS, Axis, SweepError, combinations, fill, parse_axis


@pytest.mark.parametrize("spec, values", [
    ("a=1..5", ("1", "2", "3", "4", "5")),
    ("a=0..10:5", ("0", "5", "10")),
    ("a=0..9:5", ("0", "5")),  # the stop is a bound, not a value that must be hit
    ("a=5..1", ("5", "4", "3", "2", "1")),
    ("a=1..0.5:-0.25", ("1", "0.75", "0.5")),
    ("a=0..1:0.1", ("0", "0.1", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7", "0.8", "0.9", "1")),
    ("a=-2..2:2", ("-2", "0", "2")),
    ("a=x,y,z", ("x", "y", "z")),
    ("a=only", ("only",)),
    ("a=1.5", ("1.5",)),
    ("b_2=red,green", ("red", "green")),
])
def test_axes(spec, values):
    assert parse_axis(spec).values == values


def test_decimal_steps_are_exact():
    assert parse_axis("t=0..1:0.1").values[-1] == "1"  # 0.1 * 10 in binary floating point is 0.9999999999999999
    assert len(parse_axis("t=0..1:0.1").values) == 11


def test_values_from_a_file(tmp_path):
    (tmp_path / "v.txt").write_text("# temperatures\n300\n\n  310 \n320\n")
    assert parse_axis(f"t=@{tmp_path / 'v.txt'}").values == ("300", "310", "320")
    assert parse_axis("t=@v.txt", base=tmp_path).values == ("300", "310", "320")


@pytest.mark.parametrize("spec, needle", [
    ("a", "expected NAME="), ("=1..3", "expected NAME="), ("1a=1", "expected NAME="), ("a b=1", "expected NAME="),
    ("a=1..3:0", "step is 0"), ("a=1..3:-1", "never goes from 1 to 3"), ("a=", "an empty value"),
    ("a=x,,y", "an empty value"), ("a=@/no/such/file", "cannot read"), ("a=1..1e9", "more than"),
    ("a=1..x", "x"),
])
def test_bad_axes_are_named(spec, needle):
    with pytest.raises(SweepError) as e:
        parse_axis(spec)
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_fill_touches_only_the_sweeps_names():
    assert fill('{"n": {a}, "k": {k}}', {"a": "3"}) == '{"n": 3, "k": {k}}'
    assert fill("{a}{a}-{b}", {"a": "1", "b": "x"}) == "11-x"
    assert fill("{a}", {}) == "{a}"
    assert fill("{ab}", {"a": "1"}) == "{ab}"  # a longer name is another name


def test_combinations_refuse_what_would_be_a_mistake():
    with pytest.raises(SweepError, match="given twice"):
        list(combinations([Axis("a", ("1",)), Axis("a", ("2",))], ["{a}"]))
    with pytest.raises(SweepError, match="appears in no argument"):
        list(combinations([Axis("a", ("1", "2")), Axis("b", ("x",))], ["{a}"]))
    big = Axis("a", tuple(map(str, range(1000))))
    with pytest.raises(SweepError, match="more than"):
        list(combinations([big, Axis("b", tuple(map(str, range(MAX_SWEEP_JOBS // 1000 + 1))))], ["{a}{b}"]))


names = st.from_regex(r"[a-z][a-z0-9_]{0,5}", fullmatch=True)
values = st.lists(st.text("abc123.-", min_size=1, max_size=4), min_size=1, max_size=5, unique=True)


@given(st.dictionaries(names, values, min_size=1, max_size=4))
def test_the_product_is_every_combination_once_in_order(axes_values):
    axes = [Axis(n, tuple(v)) for n, v in axes_values.items()]
    template = "-".join("{" + a.name + "}" for a in axes)
    combos = list(combinations(axes, [template]))
    assert len(combos) == math.prod(len(a.values) for a in axes)
    filled = [fill(template, c) for c in combos]
    assert len({tuple(c.items()) for c in combos}) == len(combos)
    # the last axis varies fastest, as in itertools.product and nested loops
    assert [c[axes[-1].name] for c in combos[:len(axes[-1].values)]] == list(axes[-1].values)
    assert all(f == "-".join(c[a.name] for a in axes) for f, c in zip(filled, combos))
