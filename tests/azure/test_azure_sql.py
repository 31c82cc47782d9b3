"""Azure SQL without a SQL Server: the access-token struct, the `do_connect` hook, pooling, and the retry of a
unit of work on transient error codes. pyodbc is never imported: the engine gets a fake DBAPI module."""

from __future__ import annotations

import struct
import types
from typing import Any

import pytest
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from shared.adapters.db.engine import (
    SQL_COPT_SS_ACCESS_TOKEN,
    encode_access_token,
    make_engine,
    strip_credentials,
)
from shared.adapters.db.retry import TransientDbRetry, is_transient_db_error


class FakeDbapiError(Exception):
    pass


def fake_pyodbc() -> types.ModuleType:
    module = types.ModuleType("fake_pyodbc")
    module.paramstyle = "qmark"  # type: ignore[attr-defined]
    module.version = "5.5.0"  # type: ignore[attr-defined]
    for name in ("Error", "DatabaseError", "OperationalError", "InterfaceError", "IntegrityError",
                 "ProgrammingError", "DataError", "InternalError", "NotSupportedError", "Warning"):  # fmt: skip
        setattr(module, name, FakeDbapiError)

    class Cursor:
        def nextset(self) -> None: ...

    module.Cursor = Cursor  # type: ignore[attr-defined]
    return module


def connect_arguments(url: str, token: str = "eyJ0eXAi.token") -> tuple[list[Any], dict[str, Any]]:
    """What the pool would pass to pyodbc.connect once the engine's `do_connect` listeners ran."""
    engine = make_engine(url, module=fake_pyodbc(), token_provider=lambda: token)
    cargs, cparams = engine.dialect.create_connect_args(engine.url)
    cargs = list(cargs)
    engine.dialect.dispatch.do_connect(engine.dialect, None, cargs, cparams)
    return cargs, cparams


def test_the_token_struct_is_a_length_prefixed_utf16le_token() -> None:
    encoded = encode_access_token("abc")

    assert encoded == struct.pack("<I6s", 6, "abc".encode("utf-16-le"))
    assert encoded[:4] == b"\x06\x00\x00\x00"
    assert encoded[4:] == b"a\x00b\x00c\x00"


def test_connections_get_the_managed_identity_token_and_odbc_driver_18_with_encryption() -> None:
    cargs, cparams = connect_arguments("mssql+pyodbc://sql-race.database.windows.net/race")

    connection_string = cargs[0]
    assert "DRIVER={ODBC Driver 18 for SQL Server}" in connection_string
    assert "Encrypt=yes" in connection_string
    assert "TrustServerCertificate=no" in connection_string
    assert "Trusted_Connection" not in connection_string
    assert cparams["attrs_before"] == {SQL_COPT_SS_ACCESS_TOKEN: encode_access_token("eyJ0eXAi.token")}


def test_a_password_in_the_url_is_removed(caplog: pytest.LogCaptureFixture) -> None:
    cargs, cparams = connect_arguments("mssql+pyodbc://admin:hunter2@sql-race.database.windows.net:1433/race")

    assert "hunter2" not in cargs[0]
    assert "UID=" not in cargs[0]
    assert "PWD=" not in cargs[0]
    assert "password" not in cparams
    assert SQL_COPT_SS_ACCESS_TOKEN in cparams["attrs_before"]
    assert "password in ConnectionStrings__TradingDb is ignored" in caplog.text
    assert "hunter2" not in caplog.text


def test_a_url_with_its_own_authentication_mode_is_left_to_the_driver() -> None:
    cargs, cparams = connect_arguments("mssql+pyodbc://sa:pw@localhost:1433/race?Authentication=SqlPassword")

    assert "PWD=pw" in cargs[0]
    assert "attrs_before" not in cparams


def test_each_new_connection_asks_for_the_current_token() -> None:
    tokens = iter(["t1", "t2"])
    engine = make_engine(
        "mssql://sql-race.database.windows.net/race", module=fake_pyodbc(), token_provider=lambda: next(tokens)
    )
    seen = []
    for _ in range(2):
        cargs, cparams = engine.dialect.create_connect_args(engine.url)
        engine.dialect.dispatch.do_connect(engine.dialect, None, list(cargs), cparams)
        seen.append(cparams["attrs_before"][SQL_COPT_SS_ACCESS_TOKEN])
    assert seen == [encode_access_token("t1"), encode_access_token("t2")]


def test_the_pool_suits_functions() -> None:
    engine = make_engine("mssql+pyodbc://sql-race.database.windows.net/race", module=fake_pyodbc(), token_provider=str)

    assert engine.pool.size() == 3
    assert engine.pool._max_overflow == 2  # type: ignore[attr-defined]
    assert engine.pool._pre_ping is True  # type: ignore[attr-defined]
    assert 0 < engine.pool._recycle < 3600  # type: ignore[attr-defined]  (tokens live 60-90 minutes)


def test_strip_credentials_keeps_everything_else() -> None:
    assert strip_credentials("DRIVER={x};Server=s;UID=u;PWD=p;Trusted_Connection=Yes;Encrypt=yes") == (
        "DRIVER={x};Server=s;Encrypt=yes"
    )


def dbapi_error(*args: Any, cls: type[DBAPIError] = OperationalError) -> DBAPIError:
    return cls("SELECT 1", None, FakeDbapiError(*args))


UNAVAILABLE = (
    "[Microsoft][ODBC Driver 18 for SQL Server][SQL Server]Database 'race' on server 'sql-race' is not currently "
    "available. Please retry the connection later. (40613) (SQLDriverConnect)"
)


@pytest.mark.parametrize(
    "error",
    [
        dbapi_error("42000", UNAVAILABLE),
        dbapi_error(
            "08S01", "[08S01] [Microsoft][ODBC Driver 18 for SQL Server]TCP Provider: Error code 0x2746 (10054)"
        ),
        dbapi_error("HY000", "[Microsoft][ODBC Driver 18 for SQL Server][SQL Server]The service is busy. (40501)"),
        dbapi_error("HYT00", "[HYT00] [Microsoft][ODBC Driver 18 for SQL Server]Login timeout expired (0)"),
    ],
)
def test_azure_sql_transient_errors_are_recognised(error: DBAPIError) -> None:
    assert is_transient_db_error(error)


@pytest.mark.parametrize(
    "error",
    [
        dbapi_error(
            "23000", "[SQL Server]Violation of UNIQUE KEY constraint 'uq_decisions'. (2627)", cls=IntegrityError
        ),
        dbapi_error("42S02", "[SQL Server]Invalid object name 'agents'. (208) (SQLExecDirectW)"),
        dbapi_error("28000", "[SQL Server]Login failed for user '<token-identified principal>'. (18456)"),
        ValueError("(40613)"),
    ],
)
def test_other_errors_are_not_transient(error: Exception) -> None:
    assert not is_transient_db_error(error)


def test_the_unit_of_work_is_run_again_after_a_transient_error() -> None:
    sleeps: list[float] = []
    attempts = []

    def job() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise dbapi_error("42000", UNAVAILABLE)
        return "done"

    assert TransientDbRetry(attempts=4, sleep=sleeps.append)(job, what="test job") == "done"
    assert len(attempts) == 3
    assert len(sleeps) == 2


def test_a_permanent_error_is_raised_at_once_and_retries_stop_after_the_last_attempt() -> None:
    attempts = []

    def bad_sql() -> None:
        attempts.append(1)
        raise dbapi_error("42S02", "Invalid object name 'agents'. (208)")

    with pytest.raises(OperationalError):
        TransientDbRetry(sleep=lambda s: None)(bad_sql)
    assert len(attempts) == 1

    def always_unavailable() -> None:
        attempts.append(1)
        raise dbapi_error("42000", UNAVAILABLE)

    attempts.clear()
    with pytest.raises(OperationalError, match="40613"):
        TransientDbRetry(attempts=3, sleep=lambda s: None)(always_unavailable)
    assert len(attempts) == 3
