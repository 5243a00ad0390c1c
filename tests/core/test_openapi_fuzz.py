"""Property-based fuzzing of the whole OpenAPI document (schemathesis): every operation, as an HQ admin and as a
dealer consultant, with data generated from the document (valid and invalid), must answer without a 5xx and as
the document says (a documented status code, the documented content type, a body matching the schema).

Bounded for CI, which runs the suite twice (SQLite, PostgreSQL) on two cores: few examples per operation, a
fixed seed (the same cases every run, so a failure reproduces), no shrinking. For a longer hunt:
``KEHU_FUZZ_EXAMPLES=200 KEHU_FUZZ_SEED=random pytest tests/core/test_openapi_fuzz.py``."""

from __future__ import annotations

import os
import time
from collections import Counter
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import seed as hypothesis_seed  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.python import asgi  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.factories.cdp import make_source  # noqa: E402

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES = int(os.environ.get("KEHU_FUZZ_EXAMPLES", "5"))
SEED = os.environ.get("KEHU_FUZZ_SEED", "19")
# Operations that end the caller's own session would blind the rest of the run: fuzzed last.
LAST = ("/api/v1/users", "/api/v1/roles", "/api/v1/api-keys", "/api/v1/auth/token")


def _order(operation: Any) -> tuple[int, int, str]:
    method = operation.method.upper()
    return (operation.path.startswith(LAST), {"GET": 0, "POST": 1, "PUT": 1, "PATCH": 2}.get(method, 3),
            operation.label)


STATUSES: Counter[int] = Counter()


def _run(operation: Any, mode: Any, session: Any, callers: dict[str, dict[str, str]]) -> None:
    settings_ = settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=SEED != "random",
                         phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck),
                         print_blob=False)

    @settings_
    @given(case=operation.as_strategy(generation_mode=mode), who=st.sampled_from(sorted(callers)))
    def fuzz(case: Any, who: str) -> None:
        headers = callers[who]
        response = case.call(session=session, headers=headers)
        STATUSES[response.status_code] += 1
        case.validate_response(response, checks=CHECKS, headers=headers)

    if SEED not in ("random",) and not settings_.derandomize:
        fuzz = hypothesis_seed(int(SEED))(fuzz)
    fuzz()


def test_every_operation_answers_as_documented(app, client, tree, session, login):
    # something to find: a source (its write key for /v1), customers in two dealers
    _source, write_key = make_source(session, tree.principal(session, tree.admin))
    session.commit()
    callers = {"admin": login("admin@example.com"), "consultant": login("a.sales@example.com")}
    for name, unit in (("王先生", tree.dealer_a.id), ("李女士", tree.dealer_b.id)):
        response = client.post("/api/v1/customers", headers=callers["admin"],
                               json={"name": name, "unit_id": unit, "city": "上海"})
        assert response.status_code == 201, response.text
    callers["source"] = {"Authorization": "Basic " + __import__("base64").b64encode(f"{write_key}:".encode())
                         .decode()}

    schema = schemathesis.openapi.from_dict(app.openapi())
    schema.app = app
    # the callers' credentials are ours: random X-API-Key or bearer values would only ever answer 401
    schema.config.generation.update(with_security_parameters=False)
    operations = sorted((result.ok() for result in schema.get_all_operations()), key=_order)
    failures: list[str] = []
    timings: list[tuple[float, str]] = []
    started = time.monotonic()
    document = app.openapi()
    with asgi.get_client(app) as http:
        for operation in operations:
            # the Segment-spec API answers a source's write key; the rest, an admin and a dealer consultant
            who = {"source": callers["source"]} if operation.path.startswith("/v1/") else {
                k: v for k, v in callers.items() if k != "source"}
            spec = document["paths"][operation.path][operation.method.lower()]
            # invalid input can only be made for an operation that takes some
            modes = [GenerationMode.POSITIVE] + ([GenerationMode.NEGATIVE] if spec.get("parameters")
                                                 or spec.get("requestBody") else [])
            for mode in modes:
                t0 = time.monotonic()
                try:
                    _run(operation, mode, http, who)
                except Unsatisfiable:  # nothing invalid can be made of its input (a free-text path parameter)
                    pass
                except (Exception, BaseExceptionGroup) as exc:  # every operation's problem, not the first only
                    failures.append(f"--- {mode.value} {operation.label}\n{str(exc)[:3000]}")
                timings.append((time.monotonic() - t0, f"{mode.value} {operation.label}"))
    elapsed = time.monotonic() - started
    print("slowest:", sorted(timings, reverse=True)[:15], "total", sum(t for t, _ in timings), STATUSES)
    assert not failures, f"{len(failures)} operations answered against the document:\n" + "\n".join(failures)
    print(f"fuzzed {len(operations)} operations in {elapsed:.1f} s")
