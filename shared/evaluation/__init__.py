"""Robustness across windows: the roster's backtest over disjoint windows, in parallel processes, reported."""
