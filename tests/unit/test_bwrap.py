"""The bubblewrap argv (pure): namespaces, what of the host is shown and how, in which order."""

from __future__ import annotations

from xwpy.worker import bwrap

LAYOUT = bwrap.Layout(system=(("/usr", None), ("/bin", "usr/bin"), ("/opt", None)),
                      etc=("ld.so.cache", "ssl", "resolv.conf", "hosts"))


def spec(**kw) -> bwrap.Spec:
    base = dict(workdir="/var/lib/xwpy/jobs/7", argv=("gzip", "-c", "in.txt"), layout=LAYOUT, inputs=("in.txt",),
                ro_binds=("/srv/venv", "/srv/venv/lib", "/usr/lib/python3", "/srv/code"), tmp_bytes=1 << 20)
    return bwrap.Spec(**{**base, **kw})


def pairs(argv, flag):
    """The operands of each occurrence of ``flag`` (two operands)."""
    return [(argv[i + 1], argv[i + 2]) for i, a in enumerate(argv) if a == flag]


def test_every_namespace_and_no_way_back():
    a = bwrap.build(spec())
    for flag in ("--unshare-user", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-net",
                 "--unshare-cgroup-try", "--die-with-parent", "--new-session", "--disable-userns"):
        assert flag in a
    assert a[a.index("--hostname") + 1] == bwrap.HOSTNAME
    assert a[a.index("--uid") + 1] == a[a.index("--gid") + 1] == str(bwrap.JOB_UID)
    assert "--share-net" not in a


def test_system_read_only_links_recreated_and_etc_a_subset():
    a = bwrap.build(spec())
    assert ("/usr", "/usr") in pairs(a, "--ro-bind") and ("/opt", "/opt") in pairs(a, "--ro-bind")
    assert ("usr/bin", "/bin") in pairs(a, "--symlink")
    etc = [dest for _, dest in pairs(a, "--ro-bind-try")]
    assert etc == ["/etc/ld.so.cache", "/etc/ssl"]  # no name resolution without the network
    assert "/etc" not in [d for _, d in pairs(a, "--ro-bind")]
    networked = [d for _, d in pairs(bwrap.build(spec(network=True)), "--ro-bind-try")]
    assert "/etc/resolv.conf" in networked and "/etc/hosts" in networked


def test_job_directory_at_a_fixed_path_inputs_read_only_after_it():
    a = bwrap.build(spec())
    assert pairs(a, "--bind") == [("/var/lib/xwpy/jobs/7", bwrap.JOB_DIR)]
    binds = pairs(a, "--ro-bind")
    assert ("/var/lib/xwpy/jobs/7/in.txt", "/job/in.txt") in binds
    assert binds.index(("/var/lib/xwpy/jobs/7/in.txt", "/job/in.txt")) == len(binds) - 1  # over the job dir
    assert a[a.index("--chdir") + 1] == "/job"
    assert a[a.index("--") + 1:] == ["gzip", "-c", "in.txt"]


def test_private_tmp_and_shm_of_bounded_size_minimal_dev_own_proc_read_only_root():
    a = bwrap.build(spec(tmp_bytes=12345))
    for mount in ("/tmp", "/dev/shm"):
        i = a.index(mount)
        assert a[i - 1] == "--tmpfs" and a[i - 5:i - 3] == ["--size", "12345"]
    assert ("--dev", "/dev") == tuple(a[a.index("--dev"):a.index("--dev") + 2])
    assert ("--proc", "/proc") == tuple(a[a.index("--proc"):a.index("--proc") + 2])
    # The root is remounted read-only after every mount, before the command.
    assert a.index("--remount-ro") > max(i for i, x in enumerate(a) if x in ("--bind", "--ro-bind", "--tmpfs"))
    assert a[a.index("--remount-ro") + 1] == "/"


def test_interpreter_bound_once_system_parts_not_again():
    binds = [src for src, _ in pairs(bwrap.build(spec()), "--ro-bind")]
    assert binds.count("/srv/venv") == 1 and "/srv/venv/lib" not in binds and "/usr/lib/python3" not in binds
    assert "/srv/code" in binds


def test_nothing_of_the_host_unless_given():
    a = " ".join(bwrap.build(spec()))
    for hidden in ("/root", "/home", "/var/lib/xwpy/cache", "/var/lib/xwpy/jobs/8", "/run"):
        assert f" {hidden} " not in a and f" {hidden}/" not in a


def test_a_state_directory_inside_a_bound_tree_is_covered():
    a = bwrap.build(spec(hide=("/srv/code/state", "/var/lib/xwpy")))
    tmpfs = [a[i + 1] for i, x in enumerate(a) if x == "--tmpfs"]
    assert "/srv/code/state" in tmpfs and "/var/lib/xwpy" not in tmpfs


def test_file_descriptors_replace_paths():
    a = bwrap.build(spec(fds={"/srv/venv": 5, "/var/lib/xwpy/jobs/7": 6}))
    assert ("5", "/srv/venv") in pairs(a, "--ro-bind-fd")
    assert ("6", "/job") in pairs(a, "--bind-fd")


def test_host_layout_is_what_exists():
    layout = bwrap.host_layout()
    assert ("/usr", None) in layout.system
    assert all(p in bwrap.SYSTEM_DIRS for p, _ in layout.system)


def test_a_networked_job_stays_in_the_namespace_its_launcher_made():
    a = bwrap.build(spec(network=True, resolv_fd=9))
    assert "--unshare-net" not in a  # the launcher made (and slirp4netns connected) its own
    assert ("9", "/etc/resolv.conf") in pairs(a, "--ro-bind-data")
    assert "/etc/resolv.conf" not in [d for _, d in pairs(a, "--ro-bind-try")]
    assert "/etc/hosts" in [d for _, d in pairs(a, "--ro-bind-try")]


def test_an_image_is_the_whole_root_and_the_job_directory_its_workdir():
    argv = bwrap.build(spec(image_root="/state/images/abc", job_dir="/work"))
    assert pairs(argv, "--ro-bind")[0] == ("/state/images/abc", "/")
    bound = {dest for _, dest in pairs(argv, "--ro-bind")}
    assert not bound & {"/usr", "/opt", "/srv/venv", "/srv/code"} and not any(a.startswith("/etc/") for a in argv)
    assert ("/var/lib/xwpy/jobs/7", "/work") in pairs(argv, "--bind")
    assert ("/var/lib/xwpy/jobs/7/in.txt", "/work/in.txt") in pairs(argv, "--ro-bind")
    assert argv[argv.index("--chdir") + 1] == "/work"
    # The root's mounts come first: /proc, /dev and /tmp are mounted over the image, not under it.
    assert argv.index("/state/images/abc") < argv.index("--proc")
