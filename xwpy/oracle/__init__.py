"""The blockchain oracle: hub requests in, grid jobs, certified results committed on chain.

Runs inside the coordinator (``[oracle] enabled = true``), on its reactor; every web3 call on a
thread pool of its own. Modules, one job each:

- ``handlers/``  per hub app: params -> grid jobs -> result (pure decisions)
- ``chainlink``  the chain as the oracle needs it: events, task state, signed commits (blocking
                 calls made off the reactor thread)
- ``follower``   request events -> catalog, behind a confirmation depth, with a persisted cursor
- ``grid``       the coordinator as the oracle needs it: its account, apps, batches, results
- ``runner``     a task from NEW to CERTIFIED (or FAILED / EXPIRED): jobs submitted exactly once
- ``committer``  a CERTIFIED task's result on chain exactly once
- ``service``    the Twisted service that assembles them (and the embedded chain, if asked)
"""
