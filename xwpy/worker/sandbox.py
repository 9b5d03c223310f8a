"""The confinement launcher: the first program of every replica's process.

The worker spawns ``python -m xwpy.worker.sandbox SPEC_JSON``; this sets the limits, leaves the
worker's session, drops to the job's user, and ``exec``s the job's command in its directory — so
the job never runs one instruction with the worker's rights or without its limits. The environment
it receives is already scrubbed by the worker.

SPEC_JSON: {"argv": [...], "cwd": "...", "uid": int|null, "gid": int|null,
            "cpu": seconds, "memory": bytes, "fsize": bytes, "nproc": n, "nofile": n}
"""

from __future__ import annotations

import json
import os
import resource
import sys

EXIT_SETUP = 126  # the sandbox itself failed (like a shell's "cannot execute")
EXIT_NOT_FOUND = 127


def _limit(kind: int, value: int, grace: int = 0) -> None:
    """Soft limit ``value``; hard limit ``grace`` more (never above the hard limit we have)."""
    soft, hard = resource.getrlimit(kind)
    high = value + grace if hard == resource.RLIM_INFINITY else min(value + grace, hard)
    resource.setrlimit(kind, (min(value, high), high))


def apply(spec: dict) -> None:
    os.setsid()  # its own session and process group: suspended and killed as one
    os.umask(0o077)
    # SIGXCPU at the soft limit (the job's error names it), SIGKILL 2 s later if it ignores that.
    _limit(resource.RLIMIT_CPU, int(spec["cpu"]), grace=2)
    _limit(resource.RLIMIT_AS, int(spec["memory"]))
    _limit(resource.RLIMIT_FSIZE, int(spec["fsize"]))
    _limit(resource.RLIMIT_NOFILE, int(spec.get("nofile", 256)))
    _limit(resource.RLIMIT_CORE, 0)
    if spec.get("uid") is not None:
        gid, uid = int(spec["gid"]), int(spec["uid"])
        os.setgroups([])
        os.setgid(gid)
        # NPROC counts every process of the uid: meaningful only for a uid of the job's own.
        _limit(resource.RLIMIT_NPROC, int(spec["nproc"]))
        os.setuid(uid)
    os.chdir(spec["cwd"])


def main(argv: list[str]) -> int:
    try:
        spec = json.loads(argv[1])
        apply(spec)
    except Exception as e:  # noqa: BLE001 - report any set-up failure as the job's error
        print(f"xwpy sandbox: cannot set up the job: {e}", file=sys.stderr)
        return EXIT_SETUP
    args = spec["argv"]
    try:
        os.execvpe(args[0], args, os.environ)
    except FileNotFoundError:
        print(f"xwpy sandbox: command not found: {args[0]}", file=sys.stderr)
        return EXIT_NOT_FOUND
    except OSError as e:
        print(f"xwpy sandbox: cannot execute {args[0]}: {e.strerror}", file=sys.stderr)
        return EXIT_SETUP
    return EXIT_SETUP  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv))
