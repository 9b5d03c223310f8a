"""Named plug-ins (verifiers, comparators): the ones shipped in this tree first — they work
without an installed distribution — then the entry points of their group."""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any, Mapping


_found: dict[tuple[str, str], Any] = {}  # (group, name) -> the plug-in, once found


def load(group: str, builtin: Mapping[str, str], name: str, unknown: type[LookupError]) -> Any:
    """The plug-in called ``name``: a built-in ``"module:attr"``, else an entry point of ``group``;
    raises ``unknown(name)`` when there is none. Each is looked up once (the coordinator asks at
    every result, and listing the entry points reads every installed distribution's metadata);
    one not found is looked for again next time (it may be installed meanwhile)."""
    hit = _found.get((group, name))
    if hit is not None:
        return hit
    if name in builtin:
        module, _, attr = builtin[name].partition(":")
        hit = getattr(__import__(module, fromlist=[attr]), attr)
    else:
        hit = next((ep.load() for ep in entry_points(group=group) if ep.name == name), None)
        if hit is None:
            raise unknown(name)
    _found[(group, name)] = hit
    return hit


def known(group: str, builtin: Mapping[str, str]) -> set[str]:
    return set(builtin) | {ep.name for ep in entry_points(group=group)}
