"""Why a job is not progressing, in one line. A pure function, no I/O.

The scheduler gathers the facts (:meth:`Engine.why`): the job's replicas, and for every host alive
the reason :func:`policy.refusal` gives for not running it (None when it may). :func:`explain`
turns them into the line ``xwpy status`` shows and into ``stalled``: true when no host alive may
take the job, so that it cannot progress until something changes (a host joins, or the job ends by
the no-quorum rule documented in :mod:`policy`).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

from xwpy.lifecycle import FINAL_NAMES as FINAL
from xwpy.server.scheduler import policy as pol

MiB = 1 << 20


@dataclass(frozen=True, slots=True)
class Why:
    stalled: bool
    line: str  # "" when the job is final or progressing


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def explain(
    *,
    status: str,
    active: int,
    wanted: int,
    quorum: int,
    digests: list[str],
    refusals: list[str | None],
    hosts_known: int,
    memory_needed: int = 0,
    largest_memory: int = 0,
    ends_in: float | None = None,
    suspended: Sequence[str] = (),
    alive: int = 0,
    silent: list[float] = (),
    extras: int = 0,
    extras_wanted: int = 0,
    agreeing: int | None = None,
) -> Why:
    """``refusals``: one per host alive — or fewer, ending at the first None (a host that may run
    it: the rest does not change the answer). ``ends_in``: seconds before the job ends by the
    no-quorum rule, when it is counting down. ``suspended``: why the hosts alive whose workers
    suspended their jobs did (their owners are using them, the volunteers' windows, battery);
    ``alive``: how many hosts are alive. ``silent``: for each running replica whose host is
    silent (asleep, offline), for how long; ``extras``: replicas running beside silent ones, and
    ``extras_wanted``: those wanted (silence.py). ``agreeing``: the most results that agree (an
    app's comparator counted: quorum.agreement), else the most identical ones."""
    if status in FINAL:
        return Why(False, "")
    if silent:
        why = _waiting(status=status, active=active, wanted=wanted, quorum=quorum, digests=digests,
                       refusals=refusals, hosts_known=hosts_known, memory_needed=memory_needed,
                       largest_memory=largest_memory, ends_in=ends_in, suspended=suspended, alive=alive,
                       agreeing=agreeing)
        n = len(silent)
        note = (f"waiting on {_plural(n, 'silent host')} (silent {max(silent):.0f} s; "
                f"its replica{'' if n == 1 else 's'} count until {'its' if n == 1 else 'their'} deadline)")
        if extras:
            note += f"; {_plural(extras, 'extra replica')} started elsewhere"
        elif extras_wanted:
            note += f"; {_plural(extras_wanted, 'extra replica')} wanted elsewhere"
        return Why(False, f"{note}; {why.line}" if why.line else note)
    return _waiting(status=status, active=active, wanted=wanted, quorum=quorum, digests=digests, refusals=refusals,
                    hosts_known=hosts_known, memory_needed=memory_needed, largest_memory=largest_memory,
                    ends_in=ends_in, suspended=suspended, alive=alive, agreeing=agreeing)


def _waiting(*, status, active, wanted, quorum, digests, refusals, hosts_known, memory_needed, largest_memory,
             ends_in, suspended, alive, agreeing) -> Why:
    agree = Counter(digests)
    best = max(agree.values(), default=0) if agreeing is None else agreeing
    # Results that do not all agree, short of the quorum: the job waits for more results to decide.
    disagree = (f"replicas disagree ({_plural(len(digests), 'result')}, best agreement {best} of {quorum})"
                if len(digests) > best and best < quorum else "")
    if wanted <= 0:
        return Why(False, f"{disagree}: {active} more running" if disagree and active else "")
    if not refusals:
        if hosts_known == 0:
            line = "no host alive: no worker has registered with this site yet"
        else:
            line = f"no host alive ({_plural(hosts_known, 'host')} registered, none heard from lately)"
        return Why(not active, f"{active} running; for more: {line}" if active else line)
    if None in refusals:
        running = f"{active} running; " if active else ""
        if suspended and alive and len(suspended) >= alive:
            return Why(False, f"queued: {running}every host alive is suspended ({_suspended(suspended)})")
        busy = f" ({_suspended(suspended)})" if suspended else ""
        line = f"queued: {running}hosts alive may run it, waiting for a free slot{busy}"
        return Why(False, f"{disagree}; {line}" if disagree else line)
    counts = Counter(refusals)
    n = len(refusals)
    if counts[pol.TOO_SMALL] == n:
        line = (f"needs {memory_needed // MiB} MiB of memory, more than any host alive offers "
                f"(largest {largest_memory // MiB} MiB)")
    elif counts[pol.NOT_ADMITTED] == n:
        line = "no host alive may read its inputs (the job may run only on its owner's or group's hosts)"
    elif counts[pol.SAME_VOLUNTEER]:
        line = f"waiting for {_plural(wanted, 'more distinct volunteer')} (one volunteer's hosts may not outvote others)"
    elif disagree and counts[pol.RAN_IT] == n:
        line = (f"replicas disagree ({_plural(len(digests), 'result')}, {len(agree)} digests, best agreement "
                f"{best} of {quorum}): waiting for a host that has not run it")
    elif counts[pol.RAN_IT] == n:
        # Hosts for the replicas it wants now, but no more than the quorum still lacks once the
        # running ones agree (two running of r3 q2 want one more host, not two).
        more = max(min(wanted, quorum - best - active), 1)
        line = (f"waiting for {_plural(more, 'more distinct host')}: quorum {quorum} needs distinct hosts, "
                f"and {'the only host' if n == 1 else f'all {n} hosts'} alive {'has' if n == 1 else 'have'} run it")
    else:
        parts = ", ".join(f"{_plural(c, 'host')} {reason if c == 1 else reason.replace('has ', 'have ', 1)}"
                          for reason, c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
        line = f"no host alive may run it ({parts})"
    if active:
        line = f"{active} running; for more: {line}"
    if ends_in is not None and not active:
        line += f"; ends in ERROR in {max(ends_in, 0):.0f} s unless a host that may run it appears"
    return Why(not active, line)


def _suspended(reasons: Sequence[str]) -> str:
    """"2 hosts suspended: their owners are using them", "3 hosts suspended: 2 outside their
    computing windows, 1 on battery" (a worker's reasons: xwpy.worker.prefs.suspension)."""
    kinds = Counter(_kind(r) for r in reasons)
    if len(kinds) == 1:
        [(kind, n)] = kinds.items()
        return f"{_plural(n, 'host')} suspended: {_PHRASES.get(kind, (kind, kind))[n != 1]}"
    parts = ", ".join(f"{n} {_LISTED.get(kind, _PHRASES.get(kind, (kind, kind)))[n != 1]}"
                      for kind, n in sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0])))
    return f"{_plural(len(reasons), 'host')} suspended: {parts}"


_OWNER = "owner busy"
_PHRASES = {  # (one host, several)
    _OWNER: ("its owner is using it", "their owners are using them"),
    "outside its computing window": ("outside its computing window", "outside their computing windows"),
}
_LISTED = {_OWNER: ("in use by its owner", "in use by their owners")}  # "3 hosts suspended: 2 ..., 1 in use by its owner"


def _kind(reason: str) -> str:
    """The reason without what changes from host to host (a load, an opening time)."""
    if reason.startswith("owner"):
        return _OWNER
    return re.sub(r" \(.*\)$", "", reason)
