"""Ethereum side of xwpy: contracts, nodes, and a small typed API for the oracle and CLI.

Modules (each one job; all blocking, call them off the reactor thread):

- ``artifacts``  the contracts' ABI and bytecode: shipped compiled in a wheel, else compiled and cached
- ``accounts``   deterministic demo accounts (public keys, local chains only)
- ``tx``         TxSender: local-key signing, nonces, receipts, typed errors
- ``contracts``  Token / Hub / VanityConsumer wrappers, event and task dataclasses
- ``deploy``     deploy token + hub, register apps, mint; Deployment (JSON file)
- ``node``       connect to a JSON-RPC URL, wait until ready, dev-chain time travel
- ``nodeproc``   run the embedded chain or ganache as a child process (tests, CI, bench)
- ``embedded``   the embedded chain (eth-tester/py-evm + journal); ``python -m`` serves it
- ``journal``    the embedded chain's append-only journal (restart persistence)
- ``ethrpc``     JSON-RPC methods over the embedded chain (pure translation)
- ``rpc``        twisted.web resource, server and Twisted service for the embedded chain
- ``inprocess``  web3 provider straight into an in-process chain (unit tests)
"""
