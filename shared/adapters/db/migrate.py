"""Apply the schema migrations, or write them out as a SQL script for review (Azure SQL).

    python -m shared.adapters.db.migrate upgrade [--url URL]
    python -m shared.adapters.db.migrate sql --dialect mssql -o build/azure-sql-migration.sql

Without `--url`, the database is the app's own setting (`ConnectionStrings__TradingDb`). The SQL script is
generated offline: no server and no ODBC driver are needed, only SQLAlchemy's dialect.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine
from sqlalchemy.engine import URL

from shared.adapters.db.engine import make_engine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# Offline scripts need only a dialect, which a bare URL names.
OFFLINE_URLS = {
    "mssql": "mssql+pyodbc://",
    "postgresql": "postgresql+psycopg://",
    "sqlite": "sqlite://",
}


def alembic_config(*, output: TextIO | None = None) -> Config:
    """Alembic's configuration without reading alembic.ini, so it works from any working directory."""
    config = Config(output_buffer=output) if output is not None else Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def upgrade(url: str | URL | Engine | None = None, revision: str = "head") -> None:
    """Migrate the database at `url` (or an engine; default: the configured database) up to `revision`."""
    if url is None:
        from shared.config import Settings

        url = Settings().database_url
    engine = url if isinstance(url, Engine) else make_engine(url)  # make_engine creates a SQLite file's folder
    try:
        with engine.begin() as connection:
            config = alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    finally:
        if engine is not url:
            engine.dispose()


def offline_sql(dialect: str, *, revision: str = "head") -> str:
    """The migration script up to `revision` for `dialect` (mssql, postgresql or sqlite), as text."""
    try:
        url = OFFLINE_URLS[dialect]
    except KeyError:
        raise ValueError(f"unknown dialect {dialect!r}; use one of {sorted(OFFLINE_URLS)}") from None
    import io

    buffer = io.StringIO()
    config = alembic_config(output=buffer)
    config.attributes["database_url"] = url
    command.upgrade(config, revision, sql=True)
    return buffer.getvalue()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.adapters.db.migrate", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("upgrade", help="migrate the configured database (or --url) to the latest schema")
    up.add_argument("--url", help="database URL (default: ConnectionStrings__TradingDb)")
    up.add_argument("--revision", default="head")
    sql = commands.add_parser("sql", help="write the migration script for review, without a database")
    sql.add_argument("--dialect", choices=sorted(OFFLINE_URLS), default="mssql")
    sql.add_argument("-o", "--output", type=Path, help="file to write (default: standard output)")
    sql.add_argument("--revision", default="head")
    args = parser.parse_args(argv)

    if args.command == "upgrade":
        upgrade(args.url, args.revision)
        print(f"database migrated to {args.revision}", file=sys.stderr)
        return 0
    script = offline_sql(args.dialect, revision=args.revision)
    if args.output is None:
        sys.stdout.write(script)
    else:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(script, encoding="utf-8")
        print(f"wrote {args.output} ({args.dialect})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
