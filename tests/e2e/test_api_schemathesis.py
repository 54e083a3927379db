"""schemathesis against the live app's /openapi.json: no 5xx, and every answer fits its schema.

Each operation gets valid (positive) and invalid (negative) requests generated from the
document. Driven through hypothesis directly: schemathesis' pytest plugin does not work
with the pytest release installed here.
"""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from e2e.live import AUTH, LiveServer

CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
]
EXAMPLES_PER_OPERATION = 40


def test_the_api_honours_its_openapi_document(live: LiveServer) -> None:
    schema = schemathesis.openapi.from_url(f"{live.url}/openapi.json", headers=AUTH, timeout=10)
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result.err()
        operations.append(result.ok())
    assert len(operations) >= 9

    for operation in operations:
        cases = st.one_of(
            operation.as_strategy(GenerationMode.POSITIVE),
            operation.as_strategy(GenerationMode.NEGATIVE),
        )

        @given(case=cases)
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            print_blob=True,  # a failure prints the blob that replays it (@reproduce_failure)
            suppress_health_check=list(HealthCheck),
        )
        def honours(case: schemathesis.Case[Any]) -> None:
            case.call_and_validate(headers=AUTH, checks=CHECKS, timeout=10)

        honours()
