import pytest

from xwpy.apps.vanitygen import kernels
from xwpy.apps.vanitygen.progress import bar, human, render
from xwpy.apps.vanitygen.search import Progress


def test_kernel_choice(monkeypatch):
    monkeypatch.delenv("XWPY_VANITY_KERNEL", raising=False)
    names = list(kernels.available())
    assert names[-2:] == ["python", "reference"]
    assert kernels.get()[0] == names[0]
    monkeypatch.setenv("XWPY_VANITY_KERNEL", "python")
    assert kernels.get()[0] == "python"
    assert kernels.get("reference")[0] == "reference"
    with pytest.raises(ValueError, match="unknown or unavailable kernel 'gpu'"):
        kernels.get("gpu")


def test_human_and_bar():
    assert human(999) == "999"
    assert human(1_234_567) == "1.23M"
    assert human(14_800_000_000) == "14.8G"
    assert bar(0.5, 10) == "#####-----"
    assert bar(2.0, 4) == "####"


def test_render_shows_keys_rate_probability_and_eta():
    p = Progress(keys_tried=2_000_000, units_done=2, units_in_flight=2, probability=0.36, expected_tries=4_476_342, found=None)
    line = render(p, elapsed=2.0)
    assert "2M keys" in line and "1M keys/s" in line and "P=36.0%" in line and "50% in 1.1 s" in line
    done = Progress(keys_tried=10, units_done=1, units_in_flight=0, probability=0.9, expected_tries=5, found={})
    assert "50% in" not in render(done, 1.0)
