"""The bubblewrap sandbox of a replica: :func:`build` turns a :class:`Spec` into ``bwrap``'s argv
(pure: the host's layout is an argument, see :func:`host_layout`), :func:`probe` says whether this
machine can run it.

Inside, a job has new user, pid, ipc, uts, network (and, where possible, cgroup) namespaces; it
sees the system directories read-only, a subset of ``/etc``, its job directory read-write at
:data:`JOB_DIR` (the same path on every host, so that honest replicas agree), its inputs read-only,
a private ``/tmp`` of bounded size, a minimal ``/dev`` and its own ``/proc``, under the fixed host
name :data:`HOSTNAME` and uid :data:`JOB_UID` — and nothing of ``/root``, ``/home``, the worker's
state directory, other jobs, or the host's ``/tmp``. The root of its tree is read-only.

The launcher (:mod:`xwpy.worker.sandbox`) sets the limits, leaves the worker's session and drops to
the slot's uid, then ``exec``s bwrap: bwrap then runs with the job's rights only (no setuid, no
capability outside the namespaces it creates). Directories the job's uid could not reach (a venv
under a 0700 home, the job directory under the worker's state) are opened by the launcher before
it drops its rights and handed to bwrap as file descriptors (``--ro-bind-fd``/``--bind-fd``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from typing import Mapping

JOB_DIR = "/job"
HOSTNAME = "xwpy"
JOB_UID = 1000  # the job's uid and gid inside its user namespace (the slot's uid outside)
TMP_DIR = "/tmp"

# Read-only system directories (those present on the host); a merged-/usr link is recreated as a link.
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/opt")
# What programs need of /etc: the dynamic linker's cache, alternatives (links of /usr/bin), TLS roots.
ETC_FILES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "alternatives", "ssl", "ca-certificates",
             "ca-certificates.conf", "nsswitch.conf", "mime.types", "localtime")
# ... and, for a job allowed on the network, name resolution.
ETC_NETWORK = ("resolv.conf", "hosts", "host.conf", "gai.conf")

INSTALL_HINT = "install bubblewrap (Debian/Ubuntu: apt install bubblewrap; Fedora: dnf install bubblewrap)"


@dataclass(frozen=True)
class Layout:
    """What of the host the sandbox shows: (path, link target or None) per system directory, and
    the /etc entries that exist."""

    system: tuple[tuple[str, str | None], ...]
    etc: tuple[str, ...]


@dataclass(frozen=True)
class Spec:
    workdir: str  # the job's directory on the host; JOB_DIR inside
    argv: tuple[str, ...]
    layout: Layout
    inputs: tuple[str, ...] = ()  # names (relative to workdir) bound read-only over themselves
    ro_binds: tuple[str, ...] = ()  # host directories shown read-only at the same path (the interpreter, xwpy)
    hide: tuple[str, ...] = ()  # host paths covered by an empty directory if a bind would show them
    tmp_bytes: int = 64 << 20  # size of the private /tmp (and of /dev/shm)
    # True: the caller made a network namespace of its own for the job, connected by slirp4netns
    # (see xwpy.worker.sandbox): bwrap stays in it; False: bwrap makes an empty one (loopback only).
    network: bool = False
    resolv_fd: int | None = None  # with network: the job's /etc/resolv.conf, read from this fd
    fds: Mapping[str, int] = field(default_factory=dict)  # host path -> open fd bwrap binds instead
    # An image app: its unpacked root (see xwpy.worker.images) is the job's whole file system,
    # read-only, instead of the host's system directories; the job's directory is bound at
    # ``job_dir`` (the image's WorkingDir, or JOB_DIR).
    image_root: str | None = None
    job_dir: str = JOB_DIR


def host_layout() -> Layout:
    system = []
    for d in SYSTEM_DIRS:
        if os.path.islink(d):
            system.append((d, os.readlink(d)))
        elif os.path.isdir(d):
            system.append((d, None))
    etc = tuple(name for name in (*ETC_FILES, *ETC_NETWORK) if os.path.lexists(os.path.join("/etc", name)))
    return Layout(tuple(system), etc)


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _bind(spec: Spec, src: str, dest: str, writable: bool = False) -> list[str]:
    fd = spec.fds.get(src)
    if fd is not None:
        return ["--bind-fd" if writable else "--ro-bind-fd", str(fd), dest]
    return ["--bind" if writable else "--ro-bind", src, dest]


def build(spec: Spec, bwrap: str = "bwrap") -> list[str]:
    """bwrap's argv that runs ``spec.argv`` in ``JOB_DIR`` (pure)."""
    a = [bwrap,
         "--unshare-user", "--uid", str(JOB_UID), "--gid", str(JOB_UID), "--disable-userns",
         "--unshare-pid", "--unshare-ipc", "--unshare-uts", *(() if spec.network else ("--unshare-net",)),
         "--unshare-cgroup-try",
         "--die-with-parent", "--new-session", "--hostname", HOSTNAME]
    system_roots = []
    if spec.image_root is not None:
        a += ["--ro-bind", spec.image_root, "/"]  # its mount points exist (images.ImageCache made them)
    for path, target in () if spec.image_root is not None else spec.layout.system:
        if target is None:
            a += ["--ro-bind", path, path]
            system_roots.append(path)
        else:
            a += ["--symlink", target, path]
    for name in () if spec.image_root is not None else spec.layout.etc:
        if name in ETC_NETWORK and not spec.network or name == "resolv.conf" and spec.resolv_fd is not None:
            continue
        a += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    if spec.network and spec.resolv_fd is not None:
        a += ["--ro-bind-data", str(spec.resolv_fd), "/etc/resolv.conf"]
    a += ["--proc", "/proc", "--dev", "/dev",
          "--size", str(spec.tmp_bytes), "--perms", "1777", "--tmpfs", "/dev/shm",
          "--size", str(spec.tmp_bytes), "--perms", "1777", "--tmpfs", TMP_DIR]
    shown = list(system_roots)
    for path in () if spec.image_root is not None else _outermost(spec.ro_binds):
        if any(_under(path, root) for root in system_roots) or _under(path, spec.job_dir):
            continue
        a += _bind(spec, path, path)
        shown.append(path)
    for path in spec.hide:  # e.g. the worker's state directory, if it lies inside its code root
        if any(_under(path, root) for root in shown):
            a += ["--perms", "0000", "--tmpfs", path]
    a += _bind(spec, spec.workdir, spec.job_dir, writable=True)
    for name in spec.inputs:
        a += _bind(spec, os.path.join(spec.workdir, name), os.path.join(spec.job_dir, name))
    a += ["--remount-ro", "/", "--chdir", spec.job_dir, "--", *spec.argv]
    return a


def _outermost(paths) -> list[str]:
    """The paths, without those inside another one (sorted, deduplicated)."""
    out: list[str] = []
    for p in sorted({os.path.normpath(p) for p in paths}):
        if not any(_under(p, q) for q in out):
            out.append(p)
    return out


def interpreter_paths() -> tuple[str, ...]:
    """What a ``{python}`` job needs of the worker's Python: its venv, the installation under it,
    and xwpy's code root (for ``PYTHONPATH``)."""
    from xwpy.worker.runner import CODE_ROOT

    paths = {os.path.realpath(sys.prefix), os.path.realpath(sys.base_prefix), CODE_ROOT, sys.prefix, sys.base_prefix}
    exe = os.path.realpath(sys.executable)
    paths.add(os.path.dirname(os.path.dirname(exe)))  # e.g. /usr/local from /usr/local/bin/python3
    return tuple(_outermost(p for p in paths if p and p != "/"))


def probe(uid: int | None = None) -> str | None:
    """None when bwrap can run a job here (as ``uid`` when given: the user namespace is created
    with that uid's rights, as the launcher does); else a one-line reason."""
    exe = shutil.which("bwrap")
    if exe is None:
        return f"bwrap not found on PATH: {INSTALL_HINT}, or run with --confinement uid (no sandbox)"
    with tempfile.TemporaryDirectory(prefix="xwpy-probe-") as tmp:
        if uid is not None:
            os.chown(tmp, uid, uid)
        argv = build(Spec(workdir=tmp, argv=("/bin/sh", "-c", "exit 0"), layout=host_layout()), bwrap=exe)
        try:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd="/",
                               **({"user": uid, "group": uid, "extra_groups": []} if uid is not None else {}))
        except (OSError, subprocess.SubprocessError) as e:
            return f"bwrap cannot run: {e}"
    if r.returncode != 0:
        why = (r.stderr.strip().splitlines() or [f"exit code {r.returncode}"])[-1]
        if "mount proc" in why:  # the kernel gives a namespace a new /proc only if nothing hides part of it
            return (f"bwrap cannot create a sandbox here ({why}): something is mounted over part of /proc "
                    "(systemd's ProtectKernelTunables=, ProtectKernelLogs=, ProtectProc=; a container's masked "
                    "paths), or run with --confinement uid (no sandbox)")
        return (f"bwrap cannot create a sandbox here ({why}): user namespaces may be disabled "
                "(sysctl user.max_user_namespaces, kernel.unprivileged_userns_clone, AppArmor's "
                "kernel.apparmor_restrict_unprivileged_userns), or run with --confinement uid (no sandbox)")
    return None


__all__ = ["HOSTNAME", "JOB_DIR", "JOB_UID", "Layout", "Spec", "build", "host_layout", "interpreter_paths", "probe"]
