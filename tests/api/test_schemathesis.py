"""The served OpenAPI document, fuzzed in process by schemathesis: every operation, positive and negative
inputs, and the stateful phase over the document's links. The contract: no 5xx, every response matches its
documented schema and status; the admin routes answer 401/403 to every request without the key."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from shared.adapters.db.engine import make_engine
from shared.adapters.db.migrate import upgrade
from shared.adapters.db.queries import SqlAlchemyRaceQueries
from shared.adapters.db.statistics_store import SqlAlchemyStatisticsRepository
from shared.api.app import create_app
from tests.api.conftest import ADMIN_KEY, FakeContainer, make_settings

CONTAINER = FakeContainer(settings=make_settings())
APP = create_app(lambda: CONTAINER)  # type: ignore[arg-type, return-value]
schema = schemathesis.openapi.from_asgi("/api/openapi.json", APP)

FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
AUTH = {"x-admin-key": ADMIN_KEY}
# A schema-valid request may still break a rule JSON Schema cannot say (start after end): a documented 422.
RULES_BEYOND_THE_SCHEMA = [positive_data_acceptance]


def _is_admin(case: Any) -> bool:
    return str(case.path).startswith("/api/admin/")


@schema.parametrize()
@FUZZ
def test_every_operation_keeps_its_contract(case: Any) -> None:
    case.call_and_validate(headers=AUTH if _is_admin(case) else None, excluded_checks=RULES_BEYOND_THE_SCHEMA)


@schema.include(path_regex="^/api/admin/").parametrize()
@FUZZ
def test_admin_without_the_key_is_always_401(case: Any) -> None:
    if case.headers:
        case.headers.pop("x-admin-key", None)
        case.headers.pop("x-functions-key", None)
    response = case.call()

    if case.method.upper() != "POST":  # the negative phase tries other methods too: routing answers first
        assert response.status_code == 405, response.text
    else:
        assert response.status_code == 401, response.text


class ApiStateMachine(schema.as_state_machine()):  # type: ignore[misc]
    def call(self, case: Any, **kwargs: Any) -> Any:
        return case.call(headers=AUTH if _is_admin(case) else None, **kwargs)

    def validate_response(self, response: Any, case: Any, additional_checks: Any = None, **kwargs: Any) -> None:
        # The base class passes its keyword arguments on as transport options, so `excluded_checks` must go to
        # the case directly (given to super() it was silently ignored).
        case.validate_response(
            response,
            additional_checks=additional_checks,
            excluded_checks=RULES_BEYOND_THE_SCHEMA,
            transport_kwargs=kwargs or None,
            recorder=getattr(self, "recorder", None),
        )


TestApiStateful = ApiStateMachine.TestCase
TestApiStateful.settings = settings(max_examples=15, stateful_step_count=5, deadline=None, derandomize=True)


# The same reads on a real (empty, migrated) SQLite database: what the drivers cannot bind shows up here.
_DB_URL = f"sqlite:///{Path(tempfile.mkdtemp(prefix='schemathesis-')) / 'race.db'}"
upgrade(_DB_URL)
_ENGINE = make_engine(_DB_URL)
SQL_CONTAINER = FakeContainer(
    settings=make_settings(),
    queries=SqlAlchemyRaceQueries(_ENGINE),  # type: ignore[arg-type]
    statistics=SqlAlchemyStatisticsRepository(_ENGINE),  # type: ignore[arg-type]
)
SQL_APP = create_app(lambda: SQL_CONTAINER)  # type: ignore[arg-type, return-value]
sql_schema = schemathesis.openapi.from_asgi("/api/openapi.json", SQL_APP).include(method="GET")


@sql_schema.parametrize()
@FUZZ
def test_every_read_keeps_its_contract_on_sqlite(case: Any) -> None:
    case.call_and_validate(excluded_checks=RULES_BEYOND_THE_SCHEMA)
