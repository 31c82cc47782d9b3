"""The SQLAlchemy unit of work: one Session per `with` block, explicit commit, rollback by default."""

from __future__ import annotations

from typing import Self

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from shared.adapters.db.candles import SqlAlchemyCandleRepository
from shared.adapters.db.engine import SQLITE_BEGIN_MODE
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
    so an exception can never leave half a decision behind."""

    assets: AssetRepository
    candles: CandleRepository
    agents: AgentRepository
    portfolios: PortfolioRepository
    decisions: DecisionRepository
    equity: EquityRepository
    cycles: CycleRepository

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self._session_factory = session_factory
        self._session: Session | None = None

    @property
    def session(self) -> Session:
        if self._session is None:
            raise RuntimeError("the unit of work is used outside its `with` block")
        return self._session

    def __enter__(self) -> Self:
        if self._session is not None:
            raise RuntimeError("a unit of work is not reentrant: create a new one from the factory")
        session = self._session = self._session_factory()
        self.assets = SqlAlchemyAssetRepository(session)
        self.candles = SqlAlchemyCandleRepository(session)
        self.agents = SqlAlchemyAgentRepository(session)
        self.portfolios = SqlAlchemyPortfolioRepository(session)
        self.decisions = SqlAlchemyDecisionRepository(session)
        self.equity = SqlAlchemyEquityRepository(session)
        self.cycles = SqlAlchemyCycleRepository(session)
        return self

    def __exit__(self, *exc_info: object) -> None:
        session, self._session = self.session, None
        try:
            session.rollback()  # a no-op after commit(); undoes everything otherwise
        finally:
            session.close()

    def commit(self) -> None:
        self.session.commit()

    def rollback(self) -> None:
        self.session.rollback()


class SqlAlchemyUnitOfWorkFactory:
    """Creates units of work on one engine (the `UnitOfWorkFactory` port)."""

    def __init__(self, engine: Engine) -> None:
        # On SQLite a unit of work takes the write lock when it begins: two read-then-write transactions can
        # then queue behind each other (busy_timeout) instead of one failing with SQLITE_BUSY_SNAPSHOT.
        # Other dialects ignore the option. Keep units of work short: never hold one across a model call.
        bind = engine.execution_options(**{SQLITE_BEGIN_MODE: "IMMEDIATE"})
        self.engine = engine
        self._sessions = sessionmaker(bind=bind, expire_on_commit=False, autoflush=False)

    def __call__(self) -> SqlAlchemyUnitOfWork:
        return SqlAlchemyUnitOfWork(self._sessions)
