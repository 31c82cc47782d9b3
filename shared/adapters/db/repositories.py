"""The write-side repositories, one module per aggregate, re-exported here so `repositories` stays the one
import for code and tests written against it.

Everything runs on one Core `Connection` per unit of work, with statements built once at import (bound
parameters): a year-long replay runs these tens of thousands of times, and building a select() per call, or
the ORM session around it, costs more than the database work. Inserts that must not duplicate a row use
`ON CONFLICT DO NOTHING` where the dialect has it (one statement, and the transaction stays usable), and
check-then-insert inside a savepoint elsewhere.

Where each lives: `tables` (the Core tables, the latest-equity join), `write_statements` (the shared portable
upserts), `asset_repository`, `agent_repository`, `portfolio_repository`, `decision_repository` (decisions,
their trades and LLM usage), `equity_repository`, `cycle_repository`; candles in `candles`.
"""

from __future__ import annotations

from shared.adapters.db.agent_repository import SqlAlchemyAgentRepository
from shared.adapters.db.agent_repository import agent_from_row as _agent
from shared.adapters.db.asset_repository import SqlAlchemyAssetRepository
from shared.adapters.db.candles import SqlAlchemyCandleRepository
from shared.adapters.db.cycle_repository import (
    _RECORD_COUNTED_INSERT,
    _RECORD_COUNTED_UPDATE,
    SqlAlchemyCycleRepository,
)
from shared.adapters.db.decision_repository import (
    _INSERT_DECISIONS_RETURNING_IDS,
    SqlAlchemyDecisionRepository,
    _decision_values,
    order_to_json,
    rejection_to_json,
)
from shared.adapters.db.equity_repository import _MARKING_INPUTS, SqlAlchemyEquityRepository
from shared.adapters.db.portfolio_repository import _REPLACE_PORTFOLIO, SqlAlchemyPortfolioRepository
from shared.adapters.db.tables import (
    AGENTS,
    ASSETS,
    CYCLES,
    DECISIONS,
    EQUITY,
    PORTFOLIOS,
    POSITIONS,
    TRADES,
    is_latest_equity_of,
)
from shared.adapters.db.write_statements import ON_CONFLICT_DIALECTS

__all__ = [
    "AGENTS",
    "ASSETS",
    "CYCLES",
    "DECISIONS",
    "EQUITY",
    "ON_CONFLICT_DIALECTS",
    "PORTFOLIOS",
    "POSITIONS",
    "TRADES",
    "_INSERT_DECISIONS_RETURNING_IDS",
    "_MARKING_INPUTS",
    "_RECORD_COUNTED_INSERT",
    "_RECORD_COUNTED_UPDATE",
    "_REPLACE_PORTFOLIO",
    "SqlAlchemyAgentRepository",
    "SqlAlchemyAssetRepository",
    "SqlAlchemyCandleRepository",
    "SqlAlchemyCycleRepository",
    "SqlAlchemyDecisionRepository",
    "SqlAlchemyEquityRepository",
    "SqlAlchemyPortfolioRepository",
    "_agent",
    "_decision_values",
    "is_latest_equity_of",
    "order_to_json",
    "rejection_to_json",
]
