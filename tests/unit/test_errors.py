"""The grid's refusals become HTTP statuses in one place: the router's table."""

from __future__ import annotations

import pytest

from xwpy.server import errors
from xwpy.server.api.router import STATUS, status_of

PROMISED = {  # as the README and the clients expect them
    errors.BadRequest: 400, errors.Unauthorized: 401, errors.Forbidden: 403, errors.NotFound: 404, errors.Conflict: 409,
    errors.Gone: 410,
    errors.TooLarge: 413, errors.DigestMismatch: 422, errors.TooMany: 429, errors.OverQuota: 403, errors.Unavailable: 503,
}


@pytest.mark.parametrize("kind", sorted(PROMISED, key=lambda k: k.__name__))
def test_each_refusal_has_its_status_and_code(kind):
    e = kind("why", "field")
    assert status_of(e) == PROMISED[kind]
    assert (e.code, e.message, e.field) == (kind.code, "why", "field")


def test_a_code_of_its_own_keeps_its_kinds_status():
    """A job with no certified result is a conflict (409) whose code says which."""
    e = errors.Conflict("job 3 is RUNNING", code="not_certified")
    assert (status_of(e), e.code) == (409, "not_certified")
    assert errors.Conflict.code == "conflict"  # the class's code is untouched


def test_every_refusal_the_grid_can_raise_is_in_the_table():
    kinds = [getattr(errors, n) for n in errors.__all__ if n != "GridError"]
    assert set(kinds) == set(PROMISED) and set(PROMISED) <= set(STATUS)
