"""Serve the embedded chain as JSON-RPC over HTTP, as a process of its own::

    python -m xwpy.chain.serve --port 8545 [--state-dir DIR] [--token-file FILE]

Kept apart from :mod:`xwpy.chain.embedded` so that the chain does not import its own RPC layer
(which imports the chain): the layers go chain <- ethrpc <- rpc <- this.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from xwpy.chain.embedded import EmbeddedChain
from xwpy.chain.journal import JournalError



def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m xwpy.chain.serve",
        description="Serve the embedded chain as JSON-RPC over HTTP.",
    )
    parser.add_argument("--port", type=int, default=8545, help="TCP port (0: any free port)")
    parser.add_argument("--interface", default="127.0.0.1", help="address to bind (default: loopback)")
    parser.add_argument("--state-dir", type=Path, help="keep a journal here and replay it on start")
    parser.add_argument(
        "--token-file",
        type=Path,
        help="require the bearer token in this file (mandatory when not on loopback)",
    )
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error(f"--port {args.port}: not a TCP port")

    from twisted.internet import reactor
    from twisted.logger import globalLogBeginner, textFileLogObserver

    from xwpy.chain.rpc import serve

    token = None
    if args.token_file is not None:
        try:
            token = args.token_file.read_text().strip()
        except OSError as exc:
            print(f"error: cannot read --token-file {args.token_file}: {exc.strerror}", file=sys.stderr)
            return 2
    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stderr)], redirectStandardIO=False)
    try:
        chain = EmbeddedChain.create(args.state_dir)
    except JournalError as exc:
        print(f"error: cannot restore the chain from {args.state_dir}: {exc}", file=sys.stderr)
        return 2
    try:
        port = serve(chain, args.port, args.interface, reactor=reactor, token=token)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # CannotListenError and friends
        print(f"error: cannot listen on {args.interface}:{args.port}: {exc}", file=sys.stderr)
        return 2
    # The first stdout line is the contract with whoever started us (tests read the port).
    print(f"listening on http://{args.interface}:{port} chain_id={chain.chain_id}", flush=True)
    reactor.addSystemEventTrigger("after", "shutdown", chain.close)
    reactor.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
