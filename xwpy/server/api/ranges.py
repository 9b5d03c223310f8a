"""HTTP ``Range`` for blob downloads (RFC 9110 §14): which bytes of a blob a request asks for.

Only what resuming a download needs is served as a range: one range that runs to the end of the
blob (``bytes=N-``, ``bytes=N-M`` with M at or past the last byte, or a suffix ``bytes=-K``). Any
other form (several ranges, a range that stops short of the end, a unit other than bytes, a
malformed header) is ignored and the whole blob is sent, as the RFC allows: a partial read must end
where the blob ends, so that the coordinator can still check the whole blob's sha256 before the
last byte goes out (see :class:`xwpy.server.api.router.Stream`). No I/O here.
"""

from __future__ import annotations

import re

_SPEC = re.compile(r"bytes=(?:(\d{1,19})-(\d{1,19})?|-(\d{1,19}))")


class Unsatisfiable(ValueError):
    """The range starts at or past the end of the blob: 416, ``Content-Range: bytes */SIZE``."""


def tail_start(header: str | None, size: int) -> int | None:
    """Where the served part starts, or None to send the whole blob (no usable range).

    Raises :class:`Unsatisfiable` for a range that starts at or past the end of the blob."""
    if header is None:
        return None
    m = _SPEC.fullmatch(header.strip().replace(" ", ""))
    if m is None:
        return None
    first, last, suffix = m.groups()
    if suffix is not None:
        k = int(suffix)
        if k == 0:
            raise Unsatisfiable("an empty suffix range")
        return max(size - k, 0)
    start = int(first)
    if last is not None and int(last) < start:
        return None  # invalid: ignored (RFC 9110 §14.1.1)
    if start >= size:
        raise Unsatisfiable(f"the range starts at byte {start}, the data has {size}")
    if last is not None and int(last) < size - 1:
        return None  # stops short of the end: not a resumption; the whole blob is sent
    return start


def content_range(start: int, size: int) -> str:
    return f"bytes {start}-{size - 1}/{size}"


__all__ = ["Unsatisfiable", "content_range", "tail_start"]
