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
