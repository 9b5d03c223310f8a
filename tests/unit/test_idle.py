"""The idle policy: suspend at once when the owner is busy, resume only after calm samples."""

import pytest

from xwpy.worker.idle import IdleSettings, IdleState, Sample, decide

S = IdleSettings(threshold=0.5, resume_below=0.3, calm_samples=3)


def run(samples, settings=S):
    state = IdleState()
    out = []
    for s in samples:
        state = decide(settings, state, s)
        out.append(state.suspended)
    return out


def test_grid_load_is_not_the_owners_load():
    # 2 CPUs fully busy, all of it ours: keep going.
    assert run([Sample(total=2.0, grid=2.0, cpus=2)]) == [False]


def test_owner_load_suspends_at_once_and_resumes_after_calm():
    busy = Sample(total=1.8, grid=0.5, cpus=2)  # owner uses 1.3 of 2 CPUs
    calm = Sample(total=0.2, grid=0.0, cpus=2)
    middling = Sample(total=0.8, grid=0.0, cpus=2)  # 40%: not busy enough to suspend, not calm enough to resume
    assert run([busy, calm, calm, middling, calm, calm, calm]) == [True, True, True, True, True, True, False]


@pytest.mark.parametrize("kw", [dict(threshold=0.2, resume_below=0.3), dict(calm_samples=0), dict(threshold=1.5)])
def test_settings_validated(kw):
    with pytest.raises(ValueError):
        IdleSettings(**kw)


def test_the_sampler_counts_a_job_as_the_grids_not_the_owners():
    """The measured sampler: CPU a grid job (and its children) burns is the grid's share. Only
    ordering is asserted (the machine's other tenants decide the absolute figures)."""
    import subprocess
    import sys

    from tests.harness import wait_for
    from xwpy.worker.idle import Sampler

    sampler = Sampler()
    job = subprocess.Popen([sys.executable, "-c", "import subprocess, sys; subprocess.run([sys.executable, '-c', "
                            "'import time\\nwhile time.process_time() < 60: pass'])"])
    try:
        sampler.sample([job.pid])
        sample = wait_for(lambda: (s := sampler.sample([job.pid])).grid > 0 and s, 30, "the job's CPU to be counted",
                          interval=0.2)
        assert 0 < sample.grid <= sample.total
        assert sample.owner_load <= (sample.total - sample.grid) / sample.cpus + 1e-9
    finally:
        for p in __import__("psutil").Process(job.pid).children(recursive=True):
            p.kill()
        job.kill()
        job.wait()


def test_a_load_file_stands_for_the_owner(tmp_path):
    from xwpy.worker.idle import LOAD_FILE_ENV, sampler_from_env

    f = tmp_path / "load"
    sample = sampler_from_env({LOAD_FILE_ENV: str(f)})
    assert sample([]).owner_load == 0.0  # missing: idle
    f.write_text("0.75")
    assert sample([]).owner_load == 0.75
    f.write_text("garbage")
    assert sample([]).owner_load == 0.0
