"""The list of coordinators workers and clients are given, and how they move along it
(xwpy/coordinators.py): pure, so the properties are checked over many lists and histories."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from xwpy.coordinators import MAX_URLS, BadURL, Rotation, parse

URLS = st.lists(st.integers(1, 65535), min_size=1, max_size=6, unique=True).map(
    lambda ports: tuple(f"https://127.0.0.1:{p}" for p in ports))


def test_one_text_or_a_list_and_each_url_once():
    assert parse("https://a:1, https://b:2/,https://a:1") == ("https://a:1", "https://b:2")
    assert parse(["https://a:1,https://b:2", "https://c"]) == ("https://a:1", "https://b:2", "https://c")


@pytest.mark.parametrize("text", ["", " , ", "http://a:1", "https://a:1,http://b:2", "https://:1", "https://a:0",
                                  "https://a:99999", "https://a:1/api", "a:1"])
def test_anything_but_https_host_port_is_refused(text):
    with pytest.raises(BadURL, match="must"):
        parse(text)


def test_a_list_has_a_bound():
    with pytest.raises(BadURL, match=f"at most {MAX_URLS}"):
        parse([f"https://h:{p}" for p in range(1, MAX_URLS + 2)])


@given(URLS, st.integers(0, 20))
def test_one_request_tries_each_coordinator_once_starting_from_the_current(urls, moves):
    r = Rotation(urls)
    for _ in range(moves):
        r.failed(r.current)
    start = r.current
    tried = []
    for url in r.attempts():
        tried.append(url)
        r.failed(url)
    assert sorted(tried) == sorted(urls)
    assert tried[0] == start and r.current == start  # a whole round: back where it began


@given(URLS, st.data())
def test_it_stays_with_the_first_that_answers(urls, data):
    r = Rotation(urls)
    answers = data.draw(st.sampled_from(urls))
    for url in r.attempts():
        if url == answers:
            break
        r.failed(url)
    assert r.current == answers
    assert list(r.attempts())[:1] == [answers]  # the next request asks it first


@given(URLS, st.integers(1, 5))
def test_requests_failing_together_on_one_coordinator_move_one_step(urls, together):
    r = Rotation(urls)
    dead = r.current
    for _ in range(together):  # each in-flight request reports the same dead coordinator
        r.failed(dead)
    assert r.current == (urls[1] if len(urls) > 1 else dead)


@given(URLS, st.lists(st.integers(0, 5), max_size=30))
def test_a_request_never_asks_one_coordinator_twice_whatever_others_do(urls, history):
    r = Rotation(urls)
    seen = []
    for step in r.attempts():
        seen.append(step)
        for i in history[:2]:  # other requests' failures, reported meanwhile
            r.failed(urls[i % len(urls)])
        history = history[2:]
        r.failed(step)
    assert len(seen) == len(set(seen)) <= len(urls)
