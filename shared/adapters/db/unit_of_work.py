"""The SQLAlchemy unit of work: one Core connection and transaction per `with` block, explicit commit,
rollback by default."""

from __future__ import annotations

from typing import Self

from sqlalchemy import Connection, Engine

from shared.adapters.db.candles import CandleCache, SqlAlchemyCandleRepository
from shared.adapters.db.engine import SQLITE_BEGIN_MODE, set_sqlite_begin_mode
from shared.adapters.db.repositories import (
    SqlAlchemyAgentRepository,
    SqlAlchemyAssetRepository,
    SqlAlchemyCycleRepository,
    SqlAlchemyDecisionRepository,
    SqlAlchemyEquityRepository,
    SqlAlchemyPortfolioRepository,
)
from shared.services.ports import (
    AgentRepository,
    AssetRepository,
    CandleRepository,
    CycleRepository,
    DecisionRepository,
    EquityRepository,
    PortfolioRepository,
)


class SqlAlchemyUnitOfWork:
    """One transaction over all repositories. Leaving the block without `commit()` rolls everything back,
    so an exception can never leave half a decision behind. The repositories run Core statements on one
    connection: the ORM session's identity map and flush machinery would buy nothing for these row mappers."""

    assets: AssetRepository
    candles: CandleRepository
    agents: AgentRepository
    portfolios: PortfolioRepository
    decisions: DecisionRepository
    equity: EquityRepository
    cycles: CycleRepository

    def __init__(self, engine: Engine, candle_cache: CandleCache | None = None) -> None:
        self._engine = engine
        self._candle_cache = candle_cache
        self._sqlite = engine.dialect.name == "sqlite"
        self._connection: Connection | None = None

    @property
    def connection(self) -> Connection:
        if self._connection is None:
            raise RuntimeError("the unit of work is used outside its `with` block")
        return self._connection

    def __enter__(self) -> Self:
        if self._connection is not None:
            raise RuntimeError("a unit of work is not reentrant: create a new one from the factory")
        connection = self._connection = self._engine.connect()
        if self._sqlite:
            set_sqlite_begin_mode(connection, "IMMEDIATE")
        self.assets = SqlAlchemyAssetRepository(connection)
        self.candles = SqlAlchemyCandleRepository(connection, cache=self._candle_cache)
        self.agents = SqlAlchemyAgentRepository(connection)
        self.portfolios = SqlAlchemyPortfolioRepository(connection)
        self.decisions = SqlAlchemyDecisionRepository(connection)
        self.equity = SqlAlchemyEquityRepository(connection)
        self.cycles = SqlAlchemyCycleRepository(connection)
        return self

    def __exit__(self, *exc_info: object) -> None:
        connection, self._connection = self.connection, None
        try:
            if self._sqlite:  # a unit of work that ran no statement leaves its begin mode unused
                connection.connection.info.pop(SQLITE_BEGIN_MODE, None)
            connection.rollback()  # a no-op after commit(); undoes everything otherwise
        finally:
            connection.close()

    def commit(self) -> None:
        self.connection.commit()

    def rollback(self) -> None:
        self.connection.rollback()


class SqlAlchemyUnitOfWorkFactory:
    """Creates units of work on one engine (the `UnitOfWorkFactory` port). Units of work of one factory share
    a cache of candles (see `CandleCache`): the candles table has a single writer and every change is
    numbered, so the cache stays exact while the snapshot query stops converting the same rows every cycle."""

    def __init__(self, engine: Engine, *, cache_candles: bool = True) -> None:
        # On SQLite a unit of work takes the write lock when it begins: two read-then-write transactions can
        # then queue behind each other (busy_timeout) instead of one failing with SQLITE_BUSY_SNAPSHOT.
        # Other dialects ignore the option. Keep units of work short: never hold one across a model call.
        self.engine = engine
        self.candle_cache = CandleCache() if cache_candles else None

    def __call__(self) -> SqlAlchemyUnitOfWork:
        return SqlAlchemyUnitOfWork(self.engine, self.candle_cache)
