"""Alembic environment: runs the migrations online (a live connection) or offline (SQL script output).

The URL is, in order: a connection or URL handed over by `shared.adapters.db.migrate` (config attributes),
`-x url=...`, `sqlalchemy.url` in alembic.ini, then `Settings().database_url` (`ConnectionStrings__TradingDb`).
"""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection
from sqlalchemy.engine import URL

from shared.adapters.db.engine import make_engine, normalize_database_url
from shared.adapters.db.models import metadata

config = context.config
if config.config_file_name is not None and "connection" not in config.attributes:
    fileConfig(config.config_file_name, disable_existing_loggers=False)  # the `alembic` command line


def database_url() -> URL:
    handed_over = config.attributes.get("database_url")
    url = (
        handed_over or context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    )
    if not url:
        from shared.config import Settings

        url = Settings().database_url
    return normalize_database_url(url)


def configure(**options: object) -> None:
    context.configure(target_metadata=metadata, compare_type=True, **options)  # type: ignore[arg-type]


def run_offline() -> None:
    url = database_url()
    dialect_opts: dict[str, object] = {"paramstyle": "named"}
    if url.get_backend_name() == "mssql":
        # Offline there is no server version to detect: target Azure SQL, whose large text type is NVARCHAR(max)
        # (the legacy default would be the deprecated NTEXT).
        dialect_opts["deprecate_large_types"] = True
    configure(url=url, literal_binds=True, dialect_opts=dialect_opts)
    with context.begin_transaction():
        context.run_migrations()


def run_on(connection: Connection) -> None:
    # SQLite cannot ALTER most things in place: batch mode rebuilds the table instead.
    configure(connection=connection, render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        run_on(connection)
        return
    engine = make_engine(database_url())
    try:
        with engine.connect() as connection:
            run_on(connection)
            connection.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
