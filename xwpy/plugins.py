"""Named plug-ins (verifiers, comparators): the ones shipped in this tree first — they work
without an installed distribution — then the entry points of their group."""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any, Mapping


def load(group: str, builtin: Mapping[str, str], name: str, unknown: type[LookupError]) -> Any:
    """The plug-in called ``name``: a built-in ``"module:attr"``, else an entry point of ``group``;
    raises ``unknown(name)`` when there is none."""
    if name in builtin:
        module, _, attr = builtin[name].partition(":")
        return getattr(__import__(module, fromlist=[attr]), attr)
    for ep in entry_points(group=group):
        if ep.name == name:
            return ep.load()
    raise unknown(name)


def known(group: str, builtin: Mapping[str, str]) -> set[str]:
    return set(builtin) | {ep.name for ep in entry_points(group=group)}
