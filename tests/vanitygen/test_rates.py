"""The kernel's rate is measured once per machine and kernel build, then read from the cache."""

from __future__ import annotations

import json
import os

import pytest

from xwpy.apps.vanitygen import native, rates


class Measure:
    def __init__(self, value: float = 1234.0):
        self.value, self.calls = value, 0

    def __call__(self, kernel):
        self.calls += 1
        return self.value


def test_measured_once_then_remembered(tmp_path):
    path, m = tmp_path / "rates.json", Measure()
    assert rates.rate("python", measure=m, path=path) == 1234.0
    assert rates.rate("python", measure=m, path=path) == 1234.0
    assert m.calls == 1
    other = Measure(99.0)  # another kernel is measured on its own
    assert rates.rate("reference", measure=other, path=path) == 99.0
    assert other.calls == 1 and len(json.loads(path.read_text())) == 2


def test_a_rebuilt_kernel_is_measured_again(tmp_path):
    path, m = tmp_path / "rates.json", Measure()
    rates.rate("python", measure=m, path=path)
    source = rates.kernels.get("python")[1].__module__
    module_file = __import__(source, fromlist=["x"]).__file__
    st = os.stat(module_file)
    try:
        os.utime(module_file, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
        rates.rate("python", measure=m, path=path)
    finally:
        os.utime(module_file, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert m.calls == 2


def test_a_damaged_or_unwritable_cache_only_costs_the_measurement(tmp_path):
    path = tmp_path / "rates.json"
    path.write_text("{not json")
    m = Measure()
    assert rates.rate("python", measure=m, path=path) == 1234.0
    assert m.calls == 1 and json.loads(path.read_text())  # rewritten whole
    path.write_text(json.dumps({rates.key("python"): -5}))  # nonsense value: measured again
    assert rates.rate("python", measure=m, path=path) == 1234.0 and m.calls == 2
    blocked = tmp_path / "file"
    blocked.write_text("")
    m2 = Measure(7.0)
    assert rates.rate("python", measure=m2, path=blocked / "sub" / "rates.json") == 7.0  # parent is a file


def test_the_cache_stays_small(tmp_path):
    path = tmp_path / "rates.json"
    path.write_text(json.dumps({f"old{i}": 1.0 for i in range(rates.KEEP + 10)}))
    rates.rate("python", measure=Measure(), path=path)
    known = json.loads(path.read_text())
    assert len(known) == rates.KEEP and rates.key("python") in known


def test_native_kernel_key_names_its_extension():
    if not native.AVAILABLE:
        pytest.skip("the C kernel is not built here")
    facts = rates._build(rates.kernels.get("native")[1])
    assert any(name.endswith(".so") for name, *_ in facts)


def test_a_rate_measured_on_a_busy_machine_is_raised_by_the_first_faster_run(tmp_path):
    """Measured while the machine was loaded (400 keys/s), the rate used to stay low until the
    machine, kernel or release changed; a run that sees more raises it, without measuring again,
    and a slower run (a busy machine, or a short run's start-up) never lowers it."""
    path, busy = tmp_path / "rates.json", Measure(400.0)
    assert rates.rate("python", measure=busy, path=path) == 400.0
    assert rates.observe("python", 300.0, path=path) is False  # slower: no news
    assert rates.rate("python", measure=busy, path=path) == 400.0
    assert rates.observe("python", 1234.5, path=path) is True
    assert rates.rate("python", measure=busy, path=path) == 1234.5 and busy.calls == 1
    for nonsense in (0.0, float("nan"), float("inf"), -1.0):
        assert rates.observe("python", nonsense, path=path) is False
    assert rates.rate("python", measure=busy, path=path) == 1234.5
    # Nothing remembered yet: a run's figure is no measurement (the first use measures).
    assert rates.observe("reference", 99.0, path=path) is False
    assert rates.rate("reference", measure=Measure(7.0), path=path) == 7.0


def test_what_a_run_saw_per_process():
    from xwpy.apps.vanitygen.cli import observed_rate

    assert observed_rate(8_000, 2.0, 2) == 2_000.0
    assert observed_rate(8_000, 0.0, 2) == 0.0 and observed_rate(0, 1.0, 4) == 0.0
