"""Market data providers: the bundled replay set (offline) and, later, CoinGecko (live)."""
