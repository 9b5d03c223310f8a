"""Follow the hub's TaskRequested events into the catalog, each exactly once.

The cursor (the last block whose requests are all in the catalog) lives in the catalog, and a
pass writes its new tasks and the cursor that covers them in one transaction: a follower killed
anywhere before that commit leaves the old cursor, and the next one fetches the same range again;
one killed after it starts past it. A task seen twice (after a rewind) is skipped by its
(chain, hub, task id) key, unless its content hash changed: a reorganisation gave the id to
another request, and the row starts again for that one. Requests for an app that is not one of this oracle's deployment
(``ChainLink.served``) are left alone: its requester gets a refund after the deadline. Blocks closer than ``confirmations`` to the head are left for later,
so a short reorganisation never reaches the catalog; a deeper one is noticed (the cursor's block
hash changed) and the range is fetched again.
"""

from __future__ import annotations

from dataclasses import dataclass

from twisted.logger import Logger

from xwpy.chain.contracts import TaskRequested
from xwpy.server.catalog.chain import Cursor, NewTask

log = Logger()


def next_range(cursor: int, head: int, confirmations: int, max_blocks: int) -> tuple[int, int] | None:
    """The blocks to fetch next, [first, last], or None when nothing is confirmed past CURSOR."""
    if confirmations < 0 or max_blocks < 1:
        raise ValueError("confirmations must be >= 0 and max_blocks >= 1")
    safe = head - confirmations
    if safe <= cursor:
        return None
    return cursor + 1, min(safe, cursor + max_blocks)


def new_task(event: TaskRequested, app: str) -> NewTask:
    return NewTask(
        task_id=event.task_id, app_id=event.app_id, app=app, params=event.params, requester=event.requester,
        callback=event.callback, price=event.price, deadline=event.deadline,
        block_number=event.ref.block_number, log_tx="0x" + event.ref.tx_hash.hex(), log_index=event.ref.log_index,
        request_hash="0x" + event.request_hash.hex() if event.request_hash else None,
    )


@dataclass
class ChainClock:
    """The chain's time between polls: the last block's stamp, advanced by wall time since.

    On a dev chain whose clock was moved forward the chain runs ahead of the wall clock, so
    deadlines are always compared with this, never with time.time().
    """

    block_time: float = 0.0
    seen_at: float = 0.0

    def observe(self, block_time: int, wall: float) -> None:
        self.block_time, self.seen_at = float(block_time), wall

    def now(self, wall: float) -> float:
        return self.block_time + max(0.0, wall - self.seen_at)


class Follower:
    def __init__(self, link, catalog, *, start_block: int, confirmations: int, block_range: int, wall):
        self.link = link
        self.catalog = catalog
        self.start_block = start_block
        self.confirmations = confirmations
        self.block_range = block_range
        self.wall = wall  # () -> UNIX seconds (the reactor's clock)
        self.clock = ChainClock()
        self.head: int | None = None  # the node's head at the last poll
        self.read_to: int | None = None  # the last block whose requests are in the catalog
        self._ignored: set[int] = set()  # foreign app ids already reported

    async def poll(self) -> list[int]:
        """Catch up to the confirmed head; the catalog ids of the tasks that are new."""
        new: list[int] = []
        while True:
            head = await self.link.head()
            self.clock.observe(head.timestamp, self.wall())
            got, more = await self._pass(head.number)
            new += got
            if not more:
                return new

    async def _pass(self, head: int) -> tuple[list[int], bool]:
        chain = self.catalog.chain
        cid, hub = self.link.chain_id, self.link.hub_address
        cursor = await chain.cursor(cid, hub)
        at = self.start_block - 1 if cursor is None else cursor.block
        self.head, self.read_to = head, at
        span = next_range(at, head, self.confirmations, self.block_range)
        if span is None:
            return [], False
        if cursor is not None and not await self._still_there(cursor):
            back = max(self.start_block - 1, cursor.block - self.confirmations - 1)
            log.error(
                "chain reorganised below {n} confirmations at block {b}: reading from block {back} again",
                n=self.confirmations, b=cursor.block, back=back + 1,
            )
            block = await self.link.block(back) if back >= 0 else None
            await chain.rewind(cid, hub, back, block.hash if block else "", self.wall())
            return [], True
        first, last = span
        events = await self.link.requests(first, last)
        tasks = []
        for e in events:
            name = self.link.app_name(e.app_id)
            if name is None:
                if e.app_id not in self._ignored:
                    self._ignored.add(e.app_id)
                    log.warn("ignoring requests for hub app #{app}: not an app of this oracle's deployment",
                             app=e.app_id)
                continue
            tasks.append(new_task(e, name))
        end = await self.link.block(last)
        ids = await chain.ingest(cid, hub, cursor, tasks, last, end.hash, self.wall())
        self.read_to = last
        if ids:
            log.info("{n} new request(s) in blocks {a}-{b}", n=len(ids), a=first, b=last)
        return ids, last < head - self.confirmations

    async def _still_there(self, cursor: Cursor) -> bool:
        if not cursor.block_hash or cursor.block < 0:
            return True
        block = await self.link.block(cursor.block)
        return block.hash == cursor.block_hash
