"""A transition table shared by the job and replica life cycles."""

from __future__ import annotations

import enum
from typing import Mapping, TypeVar

S = TypeVar("S", bound=enum.Enum)


class IllegalTransition(ValueError):
    def __init__(self, kind: str, old: enum.Enum, new: enum.Enum):
        super().__init__(f"{kind}: {old.value} -> {new.value} is not allowed")
        self.kind, self.old, self.new = kind, old, new


def check(kind: str, table: Mapping[S, frozenset[S]], old: S, new: S) -> S:
    """Return ``new`` when ``old -> new`` is in ``table``; raise IllegalTransition otherwise."""
    if new not in table[old]:
        raise IllegalTransition(kind, old, new)
    return new
