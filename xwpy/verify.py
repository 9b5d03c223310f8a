"""Result verifiers: cheap checks of a claimed result, declared by an app.

An app whose validator is ``verifier:NAME`` has its results checked by the function registered
under NAME in the ``xwpy.verifiers`` entry-point group (or in ``BUILTIN``). A verifier sees the
job's arguments and the files of the result archive; it must be pure and fast (it runs on the
coordinator, off the reactor thread).

- ``VERIFIED``: the claim is proven (e.g. a vanity key that derives the address); one such result
  certifies the job.
- ``UNVERIFIABLE``: the claim cannot be checked cheaply (e.g. "no match in this range"); it goes
  through the quorum like any result.
- ``REJECTED``: the claim is false; the replica is invalid.
"""

from __future__ import annotations

import enum
from typing import Callable, Mapping, Sequence

from xwpy import plugins


class Verdict(enum.Enum):
    VERIFIED = "verified"
    UNVERIFIABLE = "unverifiable"
    REJECTED = "rejected"


Verifier = Callable[[Sequence[str], Mapping[str, bytes]], Verdict]

# Verifiers shipped in this source tree, so they work without an installed distribution.
BUILTIN: dict[str, str] = {
    "vanitygen": "xwpy.apps.vanitygen.verify:verify",
}


class UnknownVerifier(LookupError):
    pass


def load_verifier(name: str) -> Verifier:
    return plugins.load("xwpy.verifiers", BUILTIN, name, UnknownVerifier)


def known_verifiers() -> set[str]:
    return plugins.known("xwpy.verifiers", BUILTIN)
