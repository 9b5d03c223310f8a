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
