"""Give the Function App's managed identity its contained user in Azure SQL (read/write, no DDL), idempotently.

    python infra/scripts/sql_grant_app_identity.py --server sql-xxx.database.windows.net --database trading-race \
        --identity-name id-func-xxx --client-id 00000000-0000-0000-0000-000000000000

Runs as the server's Entra admin (the deployer or the deploy pipeline: `az login`/`azd auth login`, or the
GitHub runner's OIDC login) with an Entra access token; there is no SQL password anywhere. The user is created
from the identity's client id (`WITH SID = ..., TYPE = E`), so the server needs no Microsoft Graph permission to
look the identity up. Migrations (DDL) run from the same admin session, never from the app.
"""

from __future__ import annotations

import argparse
import struct
import sys
import uuid
from collections.abc import Sequence

SQL_SCOPE = "https://database.windows.net/.default"
SQL_COPT_SS_ACCESS_TOKEN = 1256  # msodbcsql's pre-connect attribute for an Entra access token
APP_ROLES = ("db_datareader", "db_datawriter")


def sid_literal(client_id: str) -> str:
    """The SID Azure SQL gives an Entra application: its client id's bytes in GUID (little-endian) order."""
    return "0x" + uuid.UUID(client_id).bytes_le.hex().upper()


def grant_statements(identity_name: str, client_id: str, roles: Sequence[str] = APP_ROLES) -> list[str]:
    """T-SQL that creates the contained user once and adds it to `roles` (ALTER ROLE ... ADD MEMBER is idempotent)."""
    bracketed = "[" + identity_name.replace("]", "]]") + "]"
    quoted = identity_name.replace("'", "''")
    statements = [
        f"IF DATABASE_PRINCIPAL_ID(N'{quoted}') IS NULL "
        f"CREATE USER {bracketed} WITH SID = {sid_literal(client_id)}, TYPE = E;"
    ]
    statements += [f"ALTER ROLE {role} ADD MEMBER {bracketed};" for role in roles]
    return statements


def odbc_connection_string(server: str, database: str, driver: str = "ODBC Driver 18 for SQL Server") -> str:
    return (
        f"Driver={{{driver}}};Server=tcp:{server},1433;Database={database};"
        "Encrypt=yes;TrustServerCertificate=no;Connection Timeout=60"
    )


def token_struct(token: str) -> bytes:
    """The access token as msodbcsql expects it: a 4-byte length, then the token in UTF-16-LE."""
    raw = token.encode("utf-16-le")
    return struct.pack(f"<I{len(raw)}s", len(raw), raw)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--server", required=True, help="server FQDN, e.g. sql-xxx.database.windows.net")
    parser.add_argument("--database", required=True)
    parser.add_argument("--identity-name", required=True, help="the user-assigned identity's name (id-func-...)")
    parser.add_argument("--client-id", required=True, help="the identity's client (application) id")
    parser.add_argument("--print-only", action="store_true", help="print the T-SQL and exit")
    args = parser.parse_args(argv)

    statements = grant_statements(args.identity_name, args.client_id)
    if args.print_only:
        print("\n".join(statements))
        return 0

    import pyodbc  # type: ignore[import-not-found]
    from azure.identity import DefaultAzureCredential

    token = DefaultAzureCredential().get_token(SQL_SCOPE).token
    # A serverless database that is resuming answers 40613 for up to a minute: the timeout above covers it.
    connection = pyodbc.connect(
        odbc_connection_string(args.server, args.database),
        attrs_before={SQL_COPT_SS_ACCESS_TOKEN: token_struct(token)},
        autocommit=True,
    )
    try:
        cursor = connection.cursor()
        for statement in statements:
            cursor.execute(statement)
    finally:
        connection.close()
    print(f"{args.identity_name}: contained user with {', '.join(APP_ROLES)} in {args.database}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
