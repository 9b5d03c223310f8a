import pytest

from tests.grid.conftest import grid, pytest_runtest_makereport  # noqa: F401 - the grid fixture, here too
from tests.reliability.ledger import Ledger


@pytest.fixture
def ledger(request):
    return Ledger(request.node.nodeid)
