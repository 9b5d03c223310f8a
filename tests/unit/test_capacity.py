"""Platform matching and core/memory packing, as pure functions."""

from hypothesis import given
from hypothesis import strategies as st

from xwpy import platforms
from xwpy.server.scheduler.capacity import ANY_BUNDLE, Need, Offer, Version, fits, never, version_for

PLATFORMS = ["linux-x86_64", "linux-aarch64", "darwin-arm64", "windows-x86_64", ""]
versions = st.lists(st.builds(Version, st.sampled_from([*PLATFORMS[:-1], platforms.ANY]), st.booleans()),
                    min_size=1, max_size=4).map(tuple)
offers = st.builds(Offer, st.integers(1, 16), st.integers(0, 64 << 30), st.sampled_from(PLATFORMS), st.booleans())
needs = st.builds(Need, st.integers(1, 8), st.integers(0, 16 << 30), versions)


@given(offers, versions)
def test_a_host_never_gets_a_version_it_cannot_run(offer, vs):
    i = version_for(offer, vs)
    if i is None:
        assert all(not platforms.runs(offer.platform, v.platform) or (v.image and not offer.images) for v in vs)
    else:
        v = vs[i]
        assert v.platform in (platforms.ANY, offer.platform) and (offer.images or not v.image)
        if any(w.platform == offer.platform and (offer.images or not w.image) for w in vs):
            assert v.platform == offer.platform  # its own platform's build first


@given(offers, st.lists(needs, max_size=20))
def test_packing_never_exceeds_the_offer(offer, queue):
    cores = memory = 0
    for need in queue:
        if fits(offer, cores, memory, need):
            cores += need.cores
            memory += need.memory
    assert cores <= offer.cores
    assert not offer.memory or memory <= offer.memory


@given(offers, needs)
def test_a_job_that_could_never_run_never_fits_and_says_why(offer, need):
    reason = never(offer, need)
    assert fits(offer, 0, 0, need) == (reason is None)


def test_four_4gib_jobs_on_an_8gib_host_run_two_at_a_time():
    host, job = Offer(cores=8, memory=8 << 30, platform="linux-x86_64"), Need(cores=1, memory=4 << 30)
    running = 0
    while fits(host, running, running * job.memory, job):
        running += 1
    assert running == 2


def test_reasons_name_what_is_missing():
    host = Offer(cores=2, memory=1 << 30, platform="linux-x86_64")
    assert "needs 4 cores, the host offers 2" in never(host, Need(cores=4))
    assert "needs 2048 MiB of memory, the host offers 1024 MiB" in never(host, Need(memory=2 << 30))
    assert "no version for it (linux-x86_64, no images; the app has any image)" in never(host, Need(versions=(Version("any", True),)))
    assert never(host, Need(versions=ANY_BUNDLE)) is None


# -- the engine packs hosts and matches platforms ------------------------------------------------

from types import SimpleNamespace  # noqa: E402

from xwpy.server.catalog.rows import AppVersion  # noqa: E402
from xwpy.server.scheduler import policy as pol  # noqa: E402
from xwpy.server.scheduler.engine import Engine, HostState, NewJob  # noqa: E402
from xwpy.server.scheduler.policy import PUBLIC  # noqa: E402
from xwpy.server.scheduler.quorum import Policy  # noqa: E402

GiB = 1 << 30


def app(cores=1, versions=(AppVersion("any"),)):
    return SimpleNamespace(limits={"cores": cores}, versions=versions)


def grid_engine(apps: dict, hosts: list[HostState]) -> Engine:
    e = Engine(lease_seconds=10.0, apps=apps.get)
    for h in hosts:
        e.add_host(h)
    e.refresh_pool(0.0)
    return e


def jobs(e, app_id, n, memory):
    ids, _ = e.add_jobs([NewJob(99, app_id, Policy(1, 1, 3, 3), PUBLIC, memory, {}) for _ in range(n)], 0.0)
    return ids


def test_four_4gib_jobs_land_two_at_a_time_on_an_8gib_host():
    e = grid_engine({1: app()}, [HostState(1, 10, "", 8 * GiB, last_alive=0.0, cores=8)])
    jobs(e, 1, 4, 4 * GiB)
    got, _ = e.assign(1, 4, 1.0)
    assert len(got) == 2
    assert e.assign(1, 2, 1.0)[0] == []  # no room until one ends


def test_cores_are_packed_too():
    e = grid_engine({1: app(cores=3)}, [HostState(1, 10, "", 64 * GiB, last_alive=0.0, cores=8)])
    jobs(e, 1, 4, GiB)
    assert len(e.assign(1, 4, 1.0)[0]) == 2  # 3 + 3 <= 8 < 9


def test_a_job_goes_only_to_a_host_with_a_version_for_it():
    arm_only = app(versions=(AppVersion("linux-aarch64", "b" * 64),))
    image = app(versions=(AppVersion("linux-x86_64", image={"platform": "linux-x86_64", "sha256": "c" * 64}),))
    hosts = [HostState(1, 10, "", 8 * GiB, last_alive=0.0, cores=4, platform="linux-x86_64", images=False),
             HostState(2, 11, "", 8 * GiB, last_alive=0.0, cores=4, platform="linux-aarch64", images=False),
             HostState(3, 12, "", 8 * GiB, last_alive=0.0, cores=4, platform="linux-x86_64", images=True)]
    e = grid_engine({1: arm_only, 2: image}, hosts)
    [arm_job] = jobs(e, 1, 1, GiB)
    [image_job] = jobs(e, 2, 1, GiB)
    assert e.assign(1, 2, 1.0)[0] == []
    assert [r.job_id for r in e.assign(2, 2, 1.0)[0]] == [arm_job]
    assert [r.job_id for r in e.assign(3, 2, 1.0)[0]] == [image_job]


def test_a_job_no_host_can_run_says_why():
    e = grid_engine({1: app(versions=(AppVersion("darwin-arm64", "b" * 64),))},
                    [HostState(1, 10, "", 8 * GiB, last_alive=0.0, cores=4, platform="linux-x86_64")])
    [jid] = jobs(e, 1, 1, GiB)
    assert e.assign(1, 1, 1.0)[0] == []
    why = e.why(jid, 1.0)
    assert why is not None and why.stalled and pol.NO_VERSION in why.line, why


@given(st.lists(st.tuples(st.integers(1, 4), st.integers(1, 6)), min_size=1, max_size=12),
       st.integers(1, 8), st.integers(1, 16), st.integers(1, 8))
def test_engine_never_packs_beyond_an_offer(specs, host_cores, host_gib, slots):
    apps = {i: app(cores=c) for i, (c, _) in enumerate(specs, 1)}
    e = grid_engine(apps, [HostState(1, 10, "", host_gib * GiB, last_alive=0.0, cores=host_cores)])
    for i, (_, gib) in enumerate(specs, 1):
        jobs(e, i, 1, gib * GiB)
    for step in range(3):
        e.assign(1, slots, float(step))
        running = [e.jobs[e.replicas[r].job_id] for r in e.hosts[1].active]
        assert sum(e.need(j).cores for j in running) <= host_cores
        assert sum(j.memory for j in running) <= host_gib * GiB


def test_a_rebuilt_engine_still_knows_the_apps():
    e = grid_engine({1: app(cores=3)}, [])
    e.load(hosts=[HostState(1, 10, "", 8 * GiB, last_alive=0.0, cores=2)], jobs=[], replicas=[], next_job_id=1,
           next_replica_id=1, now=0.0)
    [jid] = jobs(e, 1, 1, GiB)
    assert e.need(e.jobs[jid]).cores == 3 and e.assign(1, 1, 1.0)[0] == []


def test_a_networked_app_goes_only_to_a_host_that_gives_the_network():
    need = Need(network=True)
    assert "needs the network" in never(Offer(4, GiB, "linux-x86_64"), need)
    assert never(Offer(4, GiB, "linux-x86_64", network=True), need) is None
    assert never(Offer(4, GiB, "linux-x86_64"), Need()) is None


# -- the disk budget: a job's inputs must fit what a host's volunteer lets its cache hold ----------

MiB = 1 << 20


def test_a_job_whose_inputs_exceed_the_disk_offered_never_goes_there_and_says_why():
    host = Offer(4, GiB, "linux-x86_64", disk=100 * MiB)
    assert never(host, Need(disk=100 * MiB)) is None
    assert never(host, Need(disk=101 * MiB)) == "its inputs take 101 MiB, the host's disk budget holds 100 MiB of inputs"
    assert never(Offer(4, GiB, "linux-x86_64"), Need(disk=1 << 40)) is None  # no budget said: no limit
    assert not fits(host, 0, 0, Need(disk=60 * MiB), used_disk=50 * MiB)  # beside what runs: a wait
    assert fits(host, 0, 0, Need(disk=50 * MiB), used_disk=50 * MiB)


@given(st.integers(0, 1 << 30), st.lists(st.integers(0, 1 << 29), max_size=12))
def test_disk_packing_never_exceeds_the_offer(offered, inputs):
    host, used = Offer(64, 0, disk=offered), 0
    for size in inputs:
        if fits(host, 0, 0, Need(disk=size), used):
            used += size
    assert not offered or used <= offered


def disk_engine(offered: int) -> Engine:
    return grid_engine({1: app()}, [HostState(1, 10, "", 8 * GiB, last_alive=0.0, cores=8, disk=offered)])


def test_the_engine_never_gives_a_host_a_job_whose_inputs_exceed_its_disk():
    e = disk_engine(100 * MiB)
    [big] = e.add_jobs([NewJob(99, 1, Policy(1, 1, 3, 3), PUBLIC, GiB, {}, disk=200 * MiB)], 0.0)[0]
    assert e.assign(1, 4, 1.0)[0] == []
    why = e.why(big, 1.0)
    assert why.stalled and why.line == f"no host alive may run it (1 host {pol.NO_DISK})", why
    # Three 40 MiB jobs: two fit beside each other, the third waits for room.
    small = e.add_jobs([NewJob(99, 1, Policy(1, 1, 3, 3), PUBLIC, GiB, {}, disk=40 * MiB) for _ in range(3)], 0.0)[0]
    got = e.assign(1, 4, 1.0)[0]
    assert sorted(r.job_id for r in got) == small[:2]
    e.offer(1, disk=0)  # its volunteer lifted the budget (a new hello)
    assert sorted(r.job_id for r in e.assign(1, 4, 2.0)[0]) == [big, small[2]]


def test_a_replica_whose_result_waits_to_be_reported_frees_its_cores_and_memory():
    """A slow uplink: the worker ran a replica to the end and is still uploading its result. The
    host's cores and memory are free for other work meanwhile; only what it says it ran counts so."""
    e = grid_engine({1: app()}, [HostState(1, 10, "", 8 * GiB, last_alive=0.0, cores=8)])
    jobs(e, 1, 4, 4 * GiB)
    first = e.assign(1, 4, 1.0)[0]
    assert len(first) == 2 and e.assign(1, 2, 1.0)[0] == []
    e.ran(1, [first[0].id, 10**9])  # (an id it does not hold changes nothing)
    got = e.assign(1, 2, 2.0)[0]
    assert len(got) == 1  # room for one more: the other replica still runs
    assert e.assign(1, 2, 2.0)[0] == []
    e.ran(2, [first[1].id])  # another host cannot free this one's room
    assert e.assign(1, 2, 2.0)[0] == []
