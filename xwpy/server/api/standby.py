"""What a standby coordinator answers while it waits for the catalog's lease (catalog/lease.py):
503 to every request, ``{"error": "standby", ...}``; ``/health`` says ``"status": "standby"``, so a
load balancer sends it nothing and a client moves on to another coordinator. It names no one: the
leader's host is in the log, for the operator."""

from __future__ import annotations

import json

from twisted.web import server
from twisted.web.resource import Resource

from xwpy.protocol import API_PREFIX

HEALTH = (API_PREFIX + "/health").encode()
MESSAGE = "this coordinator is a standby: another one leads the catalog; retry elsewhere or later"


def body(path: bytes) -> dict:
    if path.rstrip(b"/") == HEALTH:
        return {"status": "standby", "failed": ["leader"],
                "checks": {"leader": {"ok": False, "detail": "standby: another coordinator leads the catalog"}}}
    return {"error": "standby", "message": MESSAGE}


class Standby(Resource):
    isLeaf = True

    def render(self, request: server.Request) -> bytes:
        request.setResponseCode(503)
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"retry-after", b"1")
        return json.dumps(body(request.path)).encode()


__all__ = ["Standby", "body"]
