"""The API description (xwpy.server.api.openapi): a valid OpenAPI 3.1 document that lists every
route the router serves, each with its reply; each check's JSON Schema accepts what the check
accepts; query strings and headers are parsed as the document says."""

from __future__ import annotations

import re
from types import SimpleNamespace

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openapi_spec_validator import validate

from xwpy import protocol
from xwpy.protocol import ProtocolError
from xwpy.server import api as api_module
from xwpy.server.api import openapi

ROUTES = api_module.build(SimpleNamespace(directory=None)).routes()
DOC = openapi.document(ROUTES)


def test_the_document_is_valid_openapi_3_1():
    validate(DOC)
    assert DOC["openapi"].startswith("3.1")


def test_every_route_is_described_with_its_reply():
    described = {(m.upper(), p) for p, ops in DOC["paths"].items() for m in ops}
    served = {(r.method.decode(), re.sub(r"\{(\w+):\w+\}", r"{\1}", r.path)) for r in ROUTES}
    assert described == served
    assert ("GET", "/openapi.json") in served
    for r in ROUTES:
        assert r.reply is not None, f"{r.method.decode()} {r.path} declares no reply"


def test_authenticated_routes_say_so_and_list_their_refusals():
    for path, ops in DOC["paths"].items():
        for method, op in ops.items():
            codes = set(op["responses"])
            assert "503" in codes
            if op["security"]:
                assert {"401", "403"} <= codes, (method, path)
            if "requestBody" in op:
                assert {"400", "413"} <= codes, (method, path)
    assert DOC["paths"]["/ping"]["get"]["security"] == []
    assert DOC["paths"]["/openapi.json"]["get"]["security"] == []


def test_records_nested_anywhere_are_components():
    refs = set(re.findall(r'"#/components/schemas/(\w+)"', repr(DOC).replace("'", '"')))
    assert refs <= set(DOC["components"]["schemas"])
    assert {"SubmitJobs", "JobSpec", "InputRef", "JobInfo", "ReplicaInfo", "Assignment", "Error"} <= refs | {"Error"}


def test_a_record_schema_lists_its_fields_and_requires_those_without_default():
    s = protocol.schema_of(protocol.InputRef)
    assert set(s["properties"]) == {"name", "sha256", "size", "member"}
    assert s["required"] == ["name", "sha256"] and s["additionalProperties"] is False
    assert s["properties"]["size"]["anyOf"][1] == {"type": "null"}


# Each check's schema and the check agree on values of every JSON type (the bounds, patterns and
# choices a Check knows are what its schema says).
CHECKS = [
    protocol.Int(1, 1000), protocol.Float(0.5, 60.0), protocol.Bool(), protocol.Name, protocol.Sha256,
    protocol.FileName, protocol.OneOf("a", "bc"), protocol.Optional(protocol.Int(0, 5)),
    protocol.ListOf(protocol.Int(0, 9), 3, min_len=1), protocol.MapOf(protocol.Int(0), 2),
    protocol.Str(5, min_len=2), protocol.Base64(6),
]
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-2000, 2000) | st.floats(-100, 100) | st.text(max_size=12)
    | st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,70}", fullmatch=True) | st.sampled_from(["a", "bc", "0" * 64]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=6,
)


def accepts(check, value) -> bool:
    try:
        check(value, "x")
    except ProtocolError:
        return False
    return True


@settings(max_examples=300, deadline=None)
@given(index=st.integers(0, len(CHECKS) - 1), value=JSON)
def test_a_checks_schema_accepts_what_the_check_accepts(index, value):
    check = CHECKS[index]
    valid = jsonschema.Draft202012Validator(check.schema, format_checker=None).is_valid(value)
    if check is CHECKS[-1] and isinstance(value, str):  # base64's alphabet is the check's alone
        assert accepts(check, value) <= valid
    elif isinstance(value, str) and ("\x00" in value or not value.isascii() or value.endswith("\n")):
        # NUL and lone surrogates: refused, not in the schema; a pattern's "$" is ECMA-262's in the
        # document (the end), Python's here (also before a last newline).
        assert accepts(check, value) <= valid
    else:
        assert accepts(check, value) == valid, (check.schema, value)


def test_query_strings_are_parsed_as_described():
    q = protocol.parse_query(protocol.JobsQuery, {"limit": "5", "all": "1", "newest": "false", "status": "PENDING",
                                                  "seen": "ignored"})
    assert (q.limit, q.all, q.newest, q.status, q.after) == (5, True, False, "PENDING", 0)
    for bad in ({"limit": "0"}, {"limit": "ten"}, {"limit": "1e3"}, {"all": "yes"}, {"status": "DONE"},
                {"batch": "../x"}):
        with pytest.raises(ProtocolError) as e:
            protocol.parse_query(protocol.JobsQuery, bad)
        assert e.value.field == next(iter(bad))


def test_parameters_carry_their_records_checks():
    params = {p["name"]: p for p in DOC["paths"]["/jobs"]["get"]["parameters"]}
    assert params["limit"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 1000}
    assert params["status"]["schema"]["enum"] == list(protocol.JOB_STATUSES)  # no null in a query string
    [offset] = DOC["paths"]["/uploads/{upload}"]["patch"]["parameters"][1:]
    assert (offset["name"], offset["in"], offset["required"]) == ("Upload-Offset", "header", True)


# -- the router parses what a route declares ---------------------------------------------------------


class FakeRequest:
    def __init__(self, uri: str, headers: dict[str, str] | None = None):
        self.uri, self.method = uri.encode(), b"GET"
        self.headers = {k.lower().encode(): v.encode() for k, v in (headers or {}).items()}

    def getHeader(self, name: bytes):
        return self.headers.get(name.lower())


def dispatch(api, uri: str, headers: dict[str, str] | None = None):
    """Api._dispatch on a request, driven by hand (the handlers below never wait)."""
    coro = api._dispatch(FakeRequest(uri, headers))
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    raise AssertionError("the handler waited")


def echo_api():
    from xwpy.server.api.router import ANON, Api

    api = Api(auth=None)

    @api.route("GET", "/echo", ANON, query=protocol.JobsQuery, headers=protocol.UploadOffset, reply=protocol.Json())
    async def echo(ctx):
        return (ctx.args, ctx.headers)

    return api


def test_a_routes_query_and_headers_are_parsed_before_its_handler():
    args, headers = dispatch(echo_api(), "/api/v1/echo?limit=7&all=true&other=x", {"Upload-Offset": "12"})
    assert (args.limit, args.all, headers.upload_offset) == (7, True, 12)


@pytest.mark.parametrize("query", ["limit=", "batch=", "status=", "all=", "after=-1"])
def test_a_blank_or_bad_query_value_is_refused_naming_it(query):
    # Regression (schemathesis): "?limit=" was taken for no limit, as if absent, where the document
    # says an integer; a blank value is a value, checked as any other.
    with pytest.raises(ProtocolError) as e:
        dispatch(echo_api(), f"/api/v1/echo?{query}", {"Upload-Offset": "0"})
    assert e.value.field == query.split("=")[0]


def test_a_missing_or_bad_header_is_refused_naming_the_header():
    from xwpy.server.errors import BadRequest

    for headers in ({}, {"Upload-Offset": "ten"}, {"Upload-Offset": "-1"}):
        with pytest.raises(BadRequest) as e:
            dispatch(echo_api(), "/api/v1/echo", headers)
        assert e.value.field == "Upload-Offset" and e.value.message.startswith("header Upload-Offset: ")


def test_an_integral_number_is_an_integer_as_the_document_says():
    # Regression (the schema property above): JSON Schema's "integer" includes 3.0, which the
    # checks refused; a fraction is still refused.
    assert protocol.parse(protocol.WorkRequest, {"slots": 3.0}).slots == 3
    assert type(protocol.parse(protocol.WorkRequest, {"slots": 3.0}).slots) is int
    with pytest.raises(ProtocolError):
        protocol.parse(protocol.WorkRequest, {"slots": 2.5})


def test_a_number_too_large_for_a_float_is_refused_in_one_line():
    # Regression (the hostile-input test, after the router took over parsing): {"wait": 10**400}
    # overflowed converting to a float — a 500 — where it is a number out of range.
    with pytest.raises(ProtocolError) as e:
        protocol.parse(protocol.WorkRequest, protocol.loads(b'{"wait": 1' + b"0" * 400 + b"}"))
    assert e.value.field == "wait" and e.value.message.startswith("must be between 0 and 120.0, got 1000")
    assert len(e.value.message) < 100
