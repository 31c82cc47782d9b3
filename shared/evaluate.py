"""`python -m shared.evaluate`: robustness across windows (`make evaluate`); see `shared.evaluation.cli`."""

from __future__ import annotations

from shared.evaluation.cli import main

if __name__ == "__main__":
    main()
