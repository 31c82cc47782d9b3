"""The agents table: the racers, unique by name."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, bindparam, select

from shared.adapters.db.tables import AGENTS
from shared.adapters.db.write_statements import insert_into, inserted_id, update_or_insert
from shared.domain.model import Agent

_AGENTS_ALL = select(AGENTS).order_by(AGENTS.c.id)
_AGENTS_ACTIVE = _AGENTS_ALL.where(AGENTS.c.active.is_(True))
_AGENT_BY_ID = select(AGENTS).where(AGENTS.c.id == bindparam("agent_id"))
_AGENT_BY_NAME = select(AGENTS).where(AGENTS.c.name == bindparam("name"))


class SqlAlchemyAgentRepository:
    """Racers; `name` is unique, `id` is assigned by the database."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def list(self, *, active_only: bool = False) -> list[Agent]:
        statement = _AGENTS_ACTIVE if active_only else _AGENTS_ALL
        return [agent_from_row(row) for row in self._connection.execute(statement)]

    def get(self, agent_id: int) -> Agent | None:
        row = self._connection.execute(_AGENT_BY_ID, {"agent_id": agent_id}).first()
        return agent_from_row(row) if row else None

    def get_by_name(self, name: str) -> Agent | None:
        row = self._connection.execute(_AGENT_BY_NAME, {"name": name}).first()
        return agent_from_row(row) if row else None

    def add(self, agent: Agent) -> Agent:
        result = self._connection.execute(
            insert_into(AGENTS),
            {
                "name": agent.name,
                "provider": agent.provider,
                "model": agent.model,
                "strategy": agent.strategy,
                "params": dict(agent.params),
                "active": agent.active,
                "inactive_reason": agent.inactive_reason,
                "created_at": datetime.now(UTC),
            },
        )
        new_id = inserted_id(result)
        return Agent(
            new_id,
            agent.name,
            agent.provider,
            agent.model,
            agent.strategy,
            dict(agent.params),
            agent.active,
            agent.inactive_reason,
        )

    def set_active(self, agent_id: int, *, active: bool, reason: str | None) -> None:
        update_or_insert(
            self._connection,
            AGENTS,
            {"id": agent_id},
            {"active": active, "inactive_reason": reason},
            insert_missing=False,
        )


def agent_from_row(row: Any) -> Agent:
    return Agent(
        row.id, row.name, row.provider, row.model, row.strategy, dict(row.params or {}), row.active, row.inactive_reason
    )
