"""The one back-off of every retry loop."""

from hypothesis import given
from hypothesis import strategies as st

from xwpy.backoff import Backoff


def test_doubles_from_the_first_delay_up_to_the_cap_and_resets():
    b = Backoff(0.5, 3.0, jitter=lambda: 0.0)
    assert [b.next() for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    b.reset()
    assert b.next() == 0.5


@given(st.floats(0.01, 10), st.floats(10, 100), st.integers(1, 200))
def test_jitter_stays_within_a_quarter_of_the_first_delay(first, cap, n):
    b = Backoff(first, cap)
    delays = [b.next() for _ in range(n)]
    assert all(0 < d <= cap + first / 4 for d in delays)
    assert delays[0] >= first
