"""Property-based API tests: schemathesis generates requests from ``/api/openapi.json`` itself.

Every operation the document describes is called with generated (valid and invalid) parameters
against the real WSGI app on the sample index, and each response must be no server error, carry a
status code and a content type the document lists for it, and match the documented schema.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from kb.web import create_app

pytestmark = [
    # schemathesis' own dependencies (requests, urllib3, jsonschema) may warn about each other; none
    # of it concerns kb
    pytest.mark.filterwarnings("ignore::DeprecationWarning:schemathesis.*"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning:hypothesis_graphql.*"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning:jsonschema.*"),
]

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


#: The operations schemathesis exercises: every path of the document but the document itself
#: (schemathesis leaves ``/api/v1/openapi.json`` out; loading the schema above has just fetched it).
OPERATIONS = [("/api/v1/search", "GET"), ("/api/v1/articles/{id}", "GET"), ("/api/v1/articles/{id}/related", "GET"),
              ("/api/v1/facets/{name}", "GET"), ("/api/v1/insights", "GET"), ("/healthz", "GET"), ("/readyz", "GET"),
              ("/api/v1/suggest", "GET")]


@pytest.fixture(scope="module")
def api_schema(sample_index):
    app = create_app({"KB_INDEX": str(sample_index)})
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)


def test_every_operation_is_tested(api_schema):
    found = [(op.ok().path, op.ok().method.upper()) for op in api_schema.get_all_operations()]
    assert sorted(found) == sorted(OPERATIONS)


# schemathesis.pytest.from_fixture does not work with pytest 9 (it reads a private attribute of
# the test item), so each operation is driven through its Hypothesis strategy directly.
@pytest.mark.parametrize("path,method,mode", [
    *((path, method, GenerationMode.POSITIVE) for path, method in OPERATIONS),
    # values outside the document (page=0, per_page=abc, 21 services, a 300-character tag, ...);
    # only search has parameters a request can break (any string is a possible article id)
    ("/api/v1/search", "GET", GenerationMode.NEGATIVE),
], ids=lambda v: v.value if isinstance(v, GenerationMode) else None)
def test_api_conforms_to_its_openapi_document(api_schema, path, method, mode):
    """Valid requests (per the document) and, for search, invalid ones alike."""
    operation = api_schema[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck), database=None,
              derandomize=True)
    def check(case):
        # identity: the WSGI transport hands back bodies as sent, undecoded (gzip, br and zstd are
        # tested through a real server in tests/test_api_conventions.py)
        case.call_and_validate(checks=CHECKS, headers={"Accept-Encoding": "identity"})

    check()
