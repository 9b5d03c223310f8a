"""The confinement launcher: the first program of every replica's process.

The worker spawns ``python -m xwpy.worker.sandbox SPEC_JSON``; this sets the limits, leaves the
worker's session, drops to the job's user, and ``exec``s the job's command in its directory — so
the job never runs one instruction with the worker's rights or without its limits. The environment
it receives is already scrubbed by the worker.

With ``"bwrap"`` in the spec, what it ``exec``s (as the job's user, under the limits) is bubblewrap
running the command in a sandbox — its argv built by the worker (:mod:`xwpy.worker.bwrap`; not
imported here: every import costs each job milliseconds). Paths bwrap must show that the job's
user cannot reach (a venv under a 0700 home) are made reachable first, by root, in a private mount
namespace of the launcher's own: permissions on the host never change. A job with the network gets
a network namespace made here and connected by slirp4netns (see :func:`connect_network`).

SPEC_JSON: {"argv": [...], "cwd": "...", "uid": int|null, "gid": int|null,
            "cpu": seconds, "memory": bytes, "fsize": bytes, "nproc": n, "nofile": n,
            "bwrap": null | {"argv": [bwrap's argv], "reach": [paths], "network": bool, "slirp4netns": path}}
"""

from __future__ import annotations

import json
import os
import resource
import stat
import sys

EXIT_SETUP = 126  # the sandbox itself failed (like a shell's "cannot execute")
EXIT_NOT_FOUND = 127
RESOLV_FD = 9  # a networked job's resolv.conf, for bwrap's --ro-bind-data
ARGS_FD = 8  # bwrap's options (read with --args, then closed): host paths stay out of the job's /proc
EXIT_FD = 10  # a networked job holds it open: slirp4netns exits when the last holder has


def _limit(kind: int, value: int, grace: int = 0) -> None:
    """Soft limit ``value``; hard limit ``grace`` more (never above the hard limit we have)."""
    soft, hard = resource.getrlimit(kind)
    high = value + grace if hard == resource.RLIM_INFINITY else min(value + grace, hard)
    resource.setrlimit(kind, (min(value, high), high))


def apply(spec: dict) -> list[str]:
    """Set up the process for the job; return the argv to ``exec``."""
    os.setsid()  # its own session and process group: suspended and killed as one
    os.umask(0o077)
    # SIGXCPU at the soft limit (the job's error names it), SIGKILL 2 s later if it ignores that.
    _limit(resource.RLIMIT_CPU, int(spec["cpu"]), grace=2)
    _limit(resource.RLIMIT_AS, int(spec["memory"]))
    _limit(resource.RLIMIT_FSIZE, int(spec["fsize"]))
    _limit(resource.RLIMIT_NOFILE, int(spec.get("nofile", 256)))
    _limit(resource.RLIMIT_CORE, 0)
    if spec.get("cpus") and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, spec["cpus"])  # its own cores: jobs side by side do not share one
    b = spec.get("bwrap")
    if b and b.get("network"):
        if spec.get("uid") is None:
            raise OSError("a job may have the network only on a root worker (it makes the job's network namespace)")
        connect_network(b.get("slirp4netns") or "slirp4netns")
    argv = _options_in_fd(b["argv"]) if b else list(spec["argv"])
    if spec.get("uid") is not None:
        gid, uid = int(spec["gid"]), int(spec["uid"])
        if b:
            reach(b.get("reach", ()), uid, gid)
        os.setgroups([])
        os.setgid(gid)
        # NPROC counts every process of the uid: meaningful only for a uid of the job's own.
        _limit(resource.RLIMIT_NPROC, int(spec["nproc"]))
        os.setuid(uid)
    os.chdir("/" if b else spec["cwd"])
    return argv


SLIRP_DNS = "10.0.2.3"  # slirp4netns's resolver, which forwards to the host's


def connect_network(slirp: str) -> None:
    """Move this process (root) into a new network namespace that slirp4netns connects to the
    outside world — never to the host's loopback (--disable-host-loopback) — and leave the job's
    resolv.conf (slirp's resolver) readable at fd RESOLV_FD. slirp4netns runs from the host's namespace, is configured
    before the job starts, and exits when the job's last process has closed --exit-fd."""
    go_r, go_w = os.pipe()
    ready_r, ready_w = os.pipe()
    exit_r, exit_w = os.pipe()  # the write end stays open in the job (inherited) until it ends
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # still in the host's network namespace
        try:
            os.close(go_w)
            os.close(ready_r)
            os.close(exit_w)
            if os.read(go_r, 1) != b"1":
                os._exit(1)
            os.set_inheritable(ready_w, True)
            os.set_inheritable(exit_r, True)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.execvp(slirp, [slirp, "--configure", "--mtu=65520", "--disable-host-loopback", "--enable-sandbox",
                              "--enable-seccomp", f"--ready-fd={ready_w}", f"--exit-fd={exit_r}", str(parent), "tap0"])
        finally:
            os._exit(127)
    os.close(go_r)
    os.close(ready_w)
    os.close(exit_r)
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(0x40000000) != 0:  # CLONE_NEWNET
        e = ctypes.get_errno()
        raise OSError(e, f"unshare(CLONE_NEWNET): {os.strerror(e)}")
    os.write(go_w, b"1")
    os.close(go_w)
    if os.read(ready_r, 1) != b"1":
        raise OSError(f"cannot give the job a network: {slirp} failed (is slirp4netns installed?)")
    os.close(ready_r)
    _move_fd(exit_w, EXIT_FD)  # first: the descriptors below are placed after it
    fd = os.memfd_create("resolv.conf", 0)
    os.write(fd, f"nameserver {SLIRP_DNS}\n".encode())
    os.lseek(fd, 0, os.SEEK_SET)
    _move_fd(fd, RESOLV_FD)


def _options_in_fd(argv: list[str]) -> list[str]:
    """``bwrap OPTIONS -- COMMAND`` as ``bwrap --args ARGS_FD -- COMMAND``, OPTIONS in a memfd: the
    job's view of its pid 1 (bwrap) then shows no host path (the job's directory, the worker's)."""
    end = argv.index("--")
    fd = os.memfd_create("bwrap-args", 0)
    os.write(fd, "".join(f"{a}\0" for a in argv[1:end]).encode())
    os.lseek(fd, 0, os.SEEK_SET)
    _move_fd(fd, ARGS_FD)
    return [argv[0], "--args", str(ARGS_FD), *argv[end:]]


def _move_fd(fd: int, target: int) -> None:
    """Make ``fd`` the inheritable descriptor ``target`` (and close ``fd``)."""
    if fd == target:
        os.set_inheritable(fd, True)
    else:
        os.dup2(fd, target)  # (inheritable)
        os.close(fd)


def _traversable(st: os.stat_result, uid: int, gid: int) -> bool:
    if st.st_uid == uid:
        return bool(st.st_mode & stat.S_IXUSR)
    if st.st_gid == gid:
        return bool(st.st_mode & stat.S_IXGRP)
    return bool(st.st_mode & stat.S_IXOTH)


def blocked_at(path: str, uid: int, gid: int) -> str | None:
    """The outermost directory above ``path`` that ``uid`` cannot traverse, or None."""
    parts = os.path.abspath(path).split("/")[1:]
    d = ""
    for name in parts[:-1]:
        d += "/" + name
        if not _traversable(os.stat(d), uid, gid):
            return d
    return None


def reach(paths, uid: int, gid: int) -> None:
    """Let ``uid`` reach ``paths`` in this process's own mount namespace (root only): each
    directory it cannot traverse is covered with a small tmpfs holding only the way to the paths
    below it, on which those paths are bound back. Nothing changes outside this process."""
    blocked: dict[str, list[str]] = {}
    for p in paths:
        top = blocked_at(p, uid, gid)
        if top is not None:
            blocked.setdefault(top, []).append(os.path.abspath(p))
    if not blocked:
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)

    def check(rc, what):
        if rc != 0:
            e = ctypes.get_errno()
            raise OSError(e, f"{what}: {os.strerror(e)}")

    check(libc.unshare(0x00020000), "unshare(CLONE_NEWNS)")
    MS_REC, MS_PRIVATE, MS_BIND = 0x4000, 0x40000, 0x1000
    check(libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "mount --make-rprivate /")
    # Opened (in the new namespace) before anything is covered: the bind sources, by descriptor.
    fds = {p: os.open(p, os.O_PATH | os.O_CLOEXEC) for ps in blocked.values() for p in ps}
    mask = os.umask(0o022)  # the way down is traversable: directories 0755
    for top, ps in sorted(blocked.items()):
        check(libc.mount(b"tmpfs", top.encode(), b"tmpfs", 0, b"mode=0755,size=64k"), f"tmpfs on {top}")
        for p in ps:
            kind = os.stat(f"/proc/self/fd/{fds[p]}").st_mode
            if stat.S_ISDIR(kind):
                os.makedirs(p, mode=0o755, exist_ok=True)
            else:
                os.makedirs(os.path.dirname(p), mode=0o755, exist_ok=True)
                open(p, "a").close()
            check(libc.mount(f"/proc/self/fd/{fds[p]}".encode(), p.encode(), None, MS_BIND | MS_REC, None), f"bind {p}")
    os.umask(mask)
    for fd in fds.values():
        os.close(fd)


def main(argv: list[str]) -> int:
    try:
        spec = json.loads(argv[1])
        args = apply(spec)
    except Exception as e:  # noqa: BLE001 - report any set-up failure as the job's error
        print(f"xwpy sandbox: cannot set up the job: {e}", file=sys.stderr)
        return EXIT_SETUP
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
