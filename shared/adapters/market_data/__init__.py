"""Market data providers: the bundled replay set (offline) and CoinGecko (live)."""
