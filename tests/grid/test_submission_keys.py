"""A submission sent again under its request key (its answer was lost) makes no new jobs: not
while the first is in flight, not once it is committed, not after the coordinator was killed."""

import signal
import threading

import pytest

from tests.grid.conftest import SQUARE
from xwpy.client.api import ClientError

pytestmark = pytest.mark.slow


def post(client, key, n=3, batch="b"):
    return client.call("POST", "/jobs", {"jobs": [{"app": "sq", "args": [str(i)]} for i in range(n)],
                                         "batch": batch, "request": key})["ids"]


def test_a_resent_submission_gets_the_jobs_of_the_first(grid):
    coord = grid.start_coordinator()
    alice = grid.client(grid.user("alice"))
    bob = grid.client(grid.user("bob"))
    alice.register_app(name="sq", command=SQUARE, replication=1, quorum=1, access="public")

    first = post(alice, "key-0001")
    assert len(first) == 3
    assert post(alice, "key-0001") == first  # committed: read back from the catalog
    assert post(alice, "key-0002") != first  # another key: new jobs

    # The same key sent by several clients at once: one submission.
    clients = [grid.client(alice.endpoint.token) for _ in range(6)]
    answers: list = [None] * len(clients)

    def send(i):
        answers[i] = post(clients[i], "key-0003", n=200)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(clients))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert answers[0] and len(answers[0]) == 200 and all(a == answers[0] for a in answers)

    # Killed and restarted: the key still names the same jobs.
    coord.stop(signal.SIGKILL)
    grid.start_coordinator()
    alice.close()
    assert post(alice, "key-0001") == first
    assert sorted(j["id"] for j in alice.jobs()) == sorted(first + post(alice, "key-0002") + answers[0])

    # Keys are per user: bob's "key-0001" is not alice's.
    theirs = post(bob, "key-0001")
    assert len(theirs) == 3 and not set(theirs) & set(first)
    assert post(bob, "key-0001") == theirs
    with pytest.raises(ClientError) as e:
        post(alice, "short")
    assert e.value.status == 400 and e.value.field == "request"
