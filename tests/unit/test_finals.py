"""The futures' long poll (xwpy.server.finals): woken by a job it follows, after the settle, once;
never by another's; after the timeout otherwise."""

from twisted.internet.task import Clock

from xwpy.server.finals import Finals


def test_woken_by_a_followed_job_after_the_settle():
    clock = Clock()
    finals = Finals(clock, settle=0.1)
    d = finals.wait([1, 2, 3], timeout=30)
    finals.ended([7])
    clock.advance(1)
    assert not d.called  # not one of its jobs
    finals.ended([2])
    assert not d.called  # the settle: jobs ending together answer one request
    clock.advance(0.1)
    assert d.called and finals.waiting == 0
    finals.ended([3])  # woken once only
    clock.advance(30)


def test_timeout_answers_without_a_job():
    clock = Clock()
    finals = Finals(clock, settle=0.1)
    d = finals.wait([1], timeout=5)
    clock.advance(4.9)
    assert not d.called
    clock.advance(0.1)
    assert d.called and finals.waiting == 0
    assert not clock.getDelayedCalls()
