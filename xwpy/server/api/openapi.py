"""The API's description: an OpenAPI 3.1 document built from the route table, served at
``/api/v1/openapi.json``.

Nothing here is written by hand twice: each route declares (:meth:`Api.route`) the records it
parses and answers, and each record's fields carry the checks that validate it
(:mod:`xwpy.protocol`), each check its JSON Schema fragment. No I/O here.
"""

from __future__ import annotations

import re
from typing import Any

import attrs

from xwpy import __version__, protocol
from xwpy.server.api.router import ANON, ERROR, Route, header_name

ERROR_SCHEMA = {
    "type": "object",
    "description": "A refusal: a code to act on, one line for a person, and the field at fault (if one is)",
    "properties": {"error": {"type": "string"}, "message": {"type": "string"}, "field": {"type": "string"}},
    "required": ["error", "message"],
}
REASONS = {
    200: "OK", 206: "Partial content (a Range that resumes a download)", 400: "Bad request", 401: "No valid token",
    403: "Not for this token", 404: "Not found (or not the caller's to see)", 409: "Conflict", 410: "Gone",
    413: "Too large", 416: "Range not satisfiable", 422: "Digest mismatch", 429: "Too many",
    503: "Unavailable now (Retry-After)",
}
WHO = {
    "anon": "Anyone, without a token.", "user": "A user's token.", "scientist": "A user's token (not a worker account's).",
    "admin": "An admin's token.", "host": "A host's token (from POST /work/register).",
    "user|host": "A user's or a host's token.",
}
_PARAM = re.compile(r"\{(\w+)(?::(\w+))?\}")
# Path parameters as the router matches them (its regexes in Api.route).
_PATH_SCHEMA = {
    "int": {"type": "integer", "minimum": 0, "maximum": 10**18 - 1},
    "sha": {"type": "string", "minLength": 1, "maxLength": 128, "pattern": "^[^/]+$"},
    None: {"type": "string", "minLength": 1, "maxLength": 256, "pattern": "^[^/]+$"},
}


def document(routes: list[Route]) -> dict:
    """The OpenAPI 3.1 document of ``routes``."""
    records: list[type] = []
    paths: dict[str, dict] = {}
    for r in routes:
        path = _PARAM.sub(lambda m: "{" + m.group(1) + "}", r.path)
        paths.setdefault(path, {})[r.method.decode().lower()] = _operation(r, records)
    schemas = {"Error": ERROR_SCHEMA}
    for cls in sorted({c for top in records for c in protocol.nested_records(top)}, key=lambda c: c.__name__):
        schemas[cls.__name__] = protocol.schema_of(cls)
    return {
        "openapi": "3.1.0",
        "info": {"title": "xwpy coordinator API", "version": __version__,
                 "description": "The coordinator's HTTPS JSON API. Generated from the route table and the "
                                "protocol's records (xwpy.protocol): what it says is what the coordinator checks."},
        "servers": [{"url": protocol.API_PREFIX}],
        "paths": dict(sorted(paths.items())),
        "components": {"schemas": schemas,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                                      "description": "A user's, an admin's or a host's token"}}},
    }


def _operation(r: Route, records: list[type]) -> dict:
    op: dict[str, Any] = {"operationId": f"{r.method.decode().lower()}{_camel(r.path)}"}
    doc = (r.handler.__doc__ or "").strip()
    op["summary"] = " ".join(doc.split("\n\n")[0].split()) if doc else f"{r.method.decode()} {r.path}"
    op["description"] = WHO[r.who] + (" " + " ".join(doc.split()) if doc else "")
    op["security"] = [] if r.who == ANON else [{"bearer": []}]
    params = [{"name": m.group(1), "in": "path", "required": True, "schema": _PATH_SCHEMA[m.group(2)]}
              for m in _PARAM.finditer(r.path)]
    for where, record, name in (("query", r.query, str), ("header", r.headers, header_name)):
        if record is not None:
            records.append(record)
            for f in attrs.fields(record):
                params.append({"name": name(f.name), "in": where, "required": f.default is attrs.NOTHING,
                               "schema": _not_null(f.metadata["check"].schema)})
    if params:
        op["parameters"] = params
    if r.body is not None:
        op["requestBody"] = {"required": True, "content": _content(r.body, records)}
    op["responses"] = {
        str(status): {"description": REASONS.get(status, "Answer"),
                      "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        if shape == ERROR else {"description": REASONS.get(status, "Answer"), "content": _content(shape, records)}
        for status, shape in r.statuses().items()
    }
    return op


def _content(shape: Any, records: list[type]) -> dict:
    """A body: a record (JSON), a check (JSON of its schema), or a media type (bytes)."""
    if shape is None:  # undeclared (tests/unit/test_openapi.py refuses it): any JSON
        return {"application/json": {"schema": {}}}
    if isinstance(shape, str):
        return {shape: {"schema": {"type": "string", "contentMediaType": shape}}}
    if isinstance(shape, type):
        records.append(shape)
        return {"application/json": {"schema": {"$ref": f"#/components/schemas/{shape.__name__}"}}}
    records.extend(shape.records)
    return {"application/json": {"schema": shape.schema}}


def _not_null(schema: dict) -> dict:
    """A parameter's schema: a query string has no null (absent is its None)."""
    options = [s for s in schema.get("anyOf", ()) if s.get("type") != "null"]
    return options[0] if len(options) == 1 and len(schema) == 1 else schema


def _camel(path: str) -> str:
    words = re.findall(r"[A-Za-z0-9]+", _PARAM.sub(lambda m: "by " + m.group(1), path))
    return "".join(w[:1].upper() + w[1:] for w in words)


__all__ = ["document"]
