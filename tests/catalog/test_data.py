"""The data catalog: a second upload of the same content may widen its access, never narrow it."""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import reactor

from xwpy import tokens
from xwpy.server.catalog import users as users_catalog
from xwpy.server.catalog.connector import Catalog

SHA = "ab" * 32


@pytest.fixture
def catalog(catalog_url):
    cat = Catalog.open(catalog_url, reactor)
    yield cat
    pytest_twisted.blockon(cat.close())


@pytest.mark.parametrize("first, again, expected", [
    ("private", "group", "group"), ("group", "private", "group"), ("public", "private", "public"),
    ("public", "group", "public"), ("private", "public", "public"), ("group", "group", "group"),
])
@pytest_twisted.ensureDeferred
async def test_reupload_only_widens_access(catalog, first, again, expected):
    uid = await catalog.write(lambda conn: users_catalog.insert(
        conn, login="alice", role="user", group="lab", token_hash=tokens.token_hash("alice"), now=1.0))
    assert await catalog.data.add(sha256=SHA, size=3, owner_id=uid, access=first, name="in.txt", now=1.0) == first
    assert await catalog.data.add(sha256=SHA, size=3, owner_id=uid, access=again, name="", now=2.0) == expected
    [row] = await catalog.data.list(uid)
    assert (row.access, row.name) == (expected, "in.txt")
