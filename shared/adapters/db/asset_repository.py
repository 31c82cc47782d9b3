"""The assets table: what the race can trade."""

from __future__ import annotations

from sqlalchemy import Connection, select

from shared.adapters.db.tables import ASSETS
from shared.adapters.db.write_statements import update_or_insert
from shared.domain.model import Asset

_ASSETS_ALL = select(ASSETS).order_by(ASSETS.c.symbol)
_ASSETS_ACTIVE = _ASSETS_ALL.where(ASSETS.c.active.is_(True))


class SqlAlchemyAssetRepository:
    """Tradable assets; the live provider's id is data, so adding an asset needs no code change."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def list(self, *, active_only: bool = True) -> list[Asset]:
        statement = _ASSETS_ACTIVE if active_only else _ASSETS_ALL
        return [Asset(r.symbol, r.name, r.coingecko_id, r.active) for r in self._connection.execute(statement)]

    def upsert(self, asset: Asset) -> None:
        values = {"name": asset.name, "coingecko_id": asset.coingecko_id, "active": asset.active}
        update_or_insert(self._connection, ASSETS, {"symbol": asset.symbol}, values)
