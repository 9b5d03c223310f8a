import os
import shutil

import pytest

from tests.harness import Grid


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)


@pytest.fixture
def grid(request, tmp_path):
    """A site with its coordinator's catalog in SQLite — or, for tests marked
    ``@pytest.mark.parametrize("grid", ["postgres"], indirect=True)``, in PostgreSQL."""
    if shutil.which("bwrap") is None:  # never a skip: CI installs it (.ci/run)
        pytest.fail("workers run jobs in bubblewrap sandboxes: apt install bubblewrap slirp4netns")
    database = None
    if getattr(request, "param", "sqlite") == "postgres":
        base = os.environ.get("XWPY_TEST_PG")
        if not base:
            if os.environ.get("XWPY_REQUIRE_PG"):
                pytest.fail("XWPY_REQUIRE_PG is set but XWPY_TEST_PG is not")
            pytest.skip("set XWPY_TEST_PG to run against PostgreSQL")
        from xwpy.localgrid import fresh_postgres_database

        database = fresh_postgres_database(base)
    g = Grid(tmp_path, database=database)
    try:
        yield g
    finally:
        g.close()
        if database is not None:
            from xwpy.localgrid import drop_postgres_database

            drop_postgres_database(database)
        rep = getattr(request.node, "rep_call", None)
        if rep is not None and rep.failed:
            for p in g.procs:
                tail = "\n".join(p.output().splitlines()[-40:])
                print(f"\n----- {p.name} (exit {p.popen.returncode}) -----\n{tail}")


SQUARE = ["{python}", "-c", "import sys; n = int(sys.argv[1]); print(n * n)", "{args}"]
SLOW = ["{python}", "-c", "import sys, time; time.sleep(float(sys.argv[1])); print('done', sys.argv[2])", "{args}"]
UPPER = ["{python}", "-c", "import sys; print(open('data.txt').read().upper(), sys.argv[1])", "{args}"]


def stdout_of(client, job_id, tmp_path):
    from xwpy import archive

    dest = tmp_path / f"r{job_id}.tar"
    client.result(job_id, dest)
    return archive.read_files(dest.read_bytes())["stdout"].decode()
