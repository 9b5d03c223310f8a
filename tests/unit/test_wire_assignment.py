"""A replica's assignment on the wire: built from its app's part encoded once, exactly what
encoding the whole protocol.Assignment gives (the same JSON, field for field and in order)."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from xwpy import protocol
from xwpy.lifecycle import ReplicaStatus
from xwpy.server.catalog.rows import App
from xwpy.server.grid import assignment, wire_assignment
from xwpy.server.scheduler.dispatcher import Dispatched
from xwpy.server.scheduler.engine import ReplicaState

LIMITS = {"wall_seconds": 60, "cpu_seconds": 60, "memory_bytes": 1 << 28, "output_bytes": 1 << 20, "processes": 4}
IMAGE = {"sha256": "e" * 64, "id": "sha256:" + "f" * 64, "platform": "linux-x86_64", "env": ["A=1"], "cmd": ["sh"]}


def app(app_id: int, image: bool, network: bool, checkpoints: str) -> App:
    return App(app_id, "a", 1, "alice", "public", "b" * 64, ("run", "{x}"), dict(LIMITS), "quorum", 1, 1,
               network=network, image=dict(IMAGE) if image else None, checkpoints=checkpoints)


inputs = st.lists(st.fixed_dictionaries(
    {"name": st.sampled_from(["in", "data.bin"]), "sha256": st.just("c" * 64)},
    optional={"size": st.integers(0, 10**9), "member": st.sampled_from(["out/x", None])}), max_size=3)


@given(st.booleans(), st.booleans(), st.sampled_from(["keep", "upload"]), st.lists(st.text(max_size=5), max_size=3),
       inputs, st.sampled_from([None, "d" * 64]), st.sampled_from([None, 1234.5]))
def test_the_wire_form_is_the_whole_assignment_encoded(image, network, checkpoints, args, ins, resume, deadline):
    parts: dict = {}
    for replica_id, a in ((7, app(3, image, network, checkpoints)), (8, None)):
        a = a or parts[3][0]  # the second replica of the app: its part from the cache
        r = ReplicaState(replica_id, 11, 2, ReplicaStatus.ASSIGNED, lease_expires=99.5, deadline=deadline, resume=resume)
        x = Dispatched(r, a, list(args), list(ins))
        expected = protocol.encode(assignment(x))
        got = wire_assignment(x, parts)
        assert got == expected
        assert json.dumps(got) == json.dumps(expected)  # the same keys in the same order
    # A new App for the same id (an app updated) is encoded afresh.
    new = app(3, not image, network, checkpoints)
    x = Dispatched(ReplicaState(9, 11, 2, ReplicaStatus.ASSIGNED, lease_expires=1.0), new, [], [])
    assert wire_assignment(x, parts) == protocol.encode(assignment(x))
