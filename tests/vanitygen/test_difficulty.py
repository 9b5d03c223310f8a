import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xwpy.apps.vanitygen.difficulty import estimate, format_duration, probability_after, tries_for
from xwpy.apps.vanitygen.prefix import compile_prefix


@given(
    st.floats(min_value=1e-30, max_value=0.5),
    st.floats(min_value=0.01, max_value=0.99),
)
def test_tries_for_inverts_probability_after(p, q):
    assert probability_after(p, tries_for(p, q)) == pytest.approx(q, rel=1e-9)


def test_median_is_about_ln2_over_p_for_small_p():
    e = estimate(compile_prefix("1Love"))
    assert e.tries_50 == pytest.approx(math.log(2) * e.expected_tries, rel=1e-6)
    assert e.tries_50 < e.tries_90 < e.tries_99
    assert probability_after(e.probability, e.expected_tries) == pytest.approx(1 - 1 / math.e, rel=1e-6)


def test_probability_edges():
    assert probability_after(0.1, 0) == 0.0
    assert probability_after(1.0, 1) == 1.0
    assert tries_for(0.0, 0.5) == math.inf
    with pytest.raises(ValueError, match="probability"):
        tries_for(0.1, 1.0)


def test_format_duration():
    assert format_duration(0.5) == "0.5 s"
    assert format_duration(90) == "1.5 minutes"
    assert format_duration(2 * 86400) == "2 days"
    assert format_duration(math.inf) == "forever"
