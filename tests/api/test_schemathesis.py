"""Property-based requests from the served OpenAPI document, against the live server.

Schemathesis generates requests for every operation of ``/api/v1/openapi.json``
(valid and invalid bodies, parameters and headers) and sends them to the
service on loopback, as the office key of K1 and, for every other example,
with no credential. Every answer must be no 5xx and inside the document: a
documented status, content type, headers and body schema (schemathesis's
checks, and the suite's own :mod:`openapi_check` on the same responses).
Bounded by a small number of examples per operation, so the whole run stays
well under a minute.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from api_data import seed
from api_service import Api, served_api, service_context
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from sqlalchemy import Engine

CHECKS = ("not_a_server_error", "status_code_conformance", "content_type_conformance",
          "response_headers_conformance", "response_schema_conformance")
EXAMPLES = 20
"""Examples per operation and generation mode (valid and invalid requests)."""
BUDGET_SECONDS = 50


@pytest.fixture
def fuzzed_api(sqlite_engine: Engine, tmp_path: Path) -> Iterator[Api]:
    with served_api(service_context(sqlite_engine, tmp_path), seed(sqlite_engine),
                    log_in=False) as api:
        yield api


def _checks() -> list[Any]:
    from schemathesis import checks

    checks.load_all_checks()
    return list(checks.CHECKS.get_by_names(list(CHECKS)))


def _modes() -> list[Any]:
    return [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]


def test_no_5xx_and_nothing_outside_the_document(fuzzed_api: Api) -> None:
    schema = schemathesis.openapi.from_url(f"{fuzzed_api.url}/api/v1/openapi.json")
    key = fuzzed_api.tenants.keys["K1"]
    checks = _checks()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 8, [op.label for op in operations]
    started = time.monotonic()
    for operation in operations:
        for mode in _modes():

            @given(case=operation.as_strategy(generation_mode=mode), anonymous=st.booleans())
            @settings(max_examples=EXAMPLES, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck), phases=[Phase.generate])
            def run(case: schemathesis.Case, anonymous: bool) -> None:
                headers = {} if anonymous else {"Authorization": f"Bearer {key}"}
                response = case.call(base_url=fuzzed_api.url, session=fuzzed_api.http,
                                     headers=headers)
                case.validate_response(response, checks=checks)

            run()
    assert time.monotonic() - started < BUDGET_SECONDS
