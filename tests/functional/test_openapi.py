"""openapi.yaml and the app must describe the same API: routes, methods and parameters.

Responses are checked against the document by the fuzz run (tests/e2e/test_fuzz.py),
which validates every response it gets.
"""

from __future__ import annotations

import re

import pytest
import yaml

from chalicelib.core.rules import POST_PARAMETERS, PUT_PARAMETERS
from chalicelib.multipart.companion import CREATE_FIELDS
from tests.functional.conftest import app_module
from tests.support import PROJECT

SPEC = yaml.safe_load((PROJECT / "openapi.yaml").read_text())
METHODS = {"get", "post", "put", "delete", "patch"}


def resolve(node):
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[1]
        section = node["$ref"].split("/")[2]
        return SPEC["components"][section][name]
    return node


def parameters(path, method, where):
    params = [resolve(p) for p in SPEC["paths"][path][method].get("parameters", [])]
    return {p["name"] for p in params if p["in"] == where}


def test_every_route_is_described_and_nothing_else():
    routes = {
        (path, method.lower())
        for path, entries in app_module.app.routes.items()
        for method in entries
        if method != "OPTIONS"
    }
    described = {
        (path, method) for path, ops in SPEC["paths"].items() for method in ops if method in METHODS
    }
    assert described == routes


@pytest.mark.parametrize(
    ("path", "method"),
    [(p, m) for p, ops in SPEC["paths"].items() for m in ops if m in METHODS],
)
def test_path_parameters_are_the_routes(path, method):
    assert parameters(path, method, "path") == set(re.findall(r"{(\w+)}", path))


@pytest.mark.parametrize(
    ("path", "method", "query"),
    [
        ("/put-url", "get", set(PUT_PARAMETERS)),
        ("/post-url", "get", set(POST_PARAMETERS)),
        ("/uploads/{upload_id}", "get", set()),
        ("/uploads/{upload_id}/download-url", "get", set()),
        ("/s3/params", "get", {"filename", "type", "metadata"}),
        ("/s3/multipart", "post", set()),
        ("/s3/multipart/{upload_id}", "get", {"key"}),
        ("/s3/multipart/{upload_id}", "delete", {"key"}),
        ("/s3/multipart/{upload_id}/batch", "get", {"key", "partNumbers"}),
        ("/s3/multipart/{upload_id}/complete", "post", {"key"}),
        ("/s3/multipart/{upload_id}/{part_number}", "get", {"key", "md5", "sha256", "size"}),
    ],
)
def test_query_parameters_are_exactly_what_the_route_accepts(path, method, query):
    assert parameters(path, method, "query") == query


def test_the_create_body_lists_exactly_the_fields_accepted():
    body = SPEC["components"]["schemas"]["MultipartCreateRequest"]
    assert set(body["properties"]) == set(CREATE_FIELDS)


def test_the_put_ticket_lists_exactly_the_fields_returned(api):
    body = api.http.get("/put-url").json_body
    schema = SPEC["components"]["schemas"]["PutTicket"]
    assert set(schema["properties"]) == set(schema["required"]) == set(body)
