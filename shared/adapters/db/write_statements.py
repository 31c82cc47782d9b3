"""Portable write statements the repositories share: INSERT ... ON CONFLICT DO NOTHING where the dialect has
it, UPDATE-then-INSERT elsewhere, all built once per shape with bound parameters (a year-long replay runs
them tens of thousands of times, and building a statement per call costs more than executing it)."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, cast

from sqlalchemy import Connection, CursorResult, Insert, Result, Table, Update, bindparam, update
from sqlalchemy.dialects import postgresql, sqlite

ON_CONFLICT_DIALECTS = ("sqlite", "postgresql")


@functools.cache
def insert_ignoring_conflict(table: Table, key: tuple[str, ...], dialect_name: str) -> Insert:
    """INSERT ... ON CONFLICT (key) DO NOTHING: its row count is 1 when the row was written, 0 when not."""
    base = sqlite.insert(table) if dialect_name == "sqlite" else postgresql.insert(table)
    return base.on_conflict_do_nothing(index_elements=[table.c[name] for name in key])


@functools.cache
def insert_unless_exists(table: Table, key: tuple[str, ...], dialect_name: str) -> Insert:
    """INSERT ... ON CONFLICT (key) DO NOTHING RETURNING the key: a row comes back only when one was written."""
    returned = table.c.id if "id" in table.c else table.c[key[0]]
    return insert_ignoring_conflict(table, key, dialect_name).returning(returned)


def update_or_insert(
    connection: Connection,
    table: Table,
    key: Mapping[str, Any],
    values: Mapping[str, Any],
    *,
    insert_missing: bool = True,
) -> None:
    """Portable single-row upsert: UPDATE by key, INSERT when nothing matched (the row's writer is unique:
    one agent's cycle, one asset seed, one cycle record). `insert_missing=False`: UPDATE only."""
    statement = _update_by_key(table, tuple(key), tuple(values))
    parameters = {f"key_{name}": value for name, value in key.items()} | {
        f"new_{name}": value for name, value in values.items()
    }
    result = connection.execute(statement, parameters)
    if insert_missing and cast(CursorResult[Any], result).rowcount == 0:
        connection.execute(insert_into(table), {**key, **values})


@functools.cache
def insert_into(table: Table) -> Insert:
    return table.insert()


@functools.cache
def _update_by_key(table: Table, key: tuple[str, ...], names: tuple[str, ...]) -> Update:
    # Built once per shape with bound parameters: a replay runs this tens of thousands of times, and
    # statements with inline values cost more to build than to execute.
    return (
        update(table)
        .where(*(table.c[name] == bindparam(f"key_{name}") for name in key))
        .values({name: bindparam(f"new_{name}") for name in names})
    )


def inserted_id(result: Result[Any]) -> int:
    """The id the database assigned to a single-row INSERT (RETURNING, OUTPUT or lastrowid, per dialect)."""
    key = cast(CursorResult[Any], result).inserted_primary_key
    new_id = key[0] if key else None
    if not isinstance(new_id, int):
        raise RuntimeError(f"the database returned no id for the inserted row: {key!r}")
    return new_id
