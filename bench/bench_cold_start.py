"""Cold start: `import function_app` against importing its third-party dependencies alone.

Each measurement is a fresh interpreter (like a new Functions worker); medians of several runs are printed.
Target: function_app costs at most 15% more than its dependencies, never imports torch, and keeps the Azure
SDKs, OpenTelemetry and Alembic off the import path.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = 7
THIRD_PARTY = (
    "import azure.functions, fastapi, pydantic, pydantic_settings, sqlalchemy, sqlalchemy.orm, httpx, tenacity"
)
FORBIDDEN = ("torch", "alembic", "azure.identity", "azure.monitor", "opentelemetry", "numpy", "pandas")

PROBE = """
import json, sys, time
t = time.perf_counter()
exec({code!r})
dt = time.perf_counter() - t
print(json.dumps({{"seconds": dt, "modules": sorted(m for m in sys.modules)}}))
"""


def measure(code: str) -> tuple[float, set[str]]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(code=code)], cwd=ROOT, capture_output=True, text=True, check=True
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return result["seconds"], set(result["modules"])


def main() -> None:
    deps: list[float] = []
    app: list[float] = []
    modules: set[str] = set()
    for _ in range(RUNS):  # interleaved so machine noise hits both alike
        deps.append(measure(THIRD_PARTY)[0])
        seconds, modules = measure("import function_app")
        app.append(seconds)
    deps_median, app_median = statistics.median(deps), statistics.median(app)
    loaded = sorted(m for m in FORBIDDEN if any(x == m or x.startswith(m + ".") for x in modules))
    print(f"third-party deps alone : median {deps_median * 1000:7.1f} ms  (runs: {RUNS})")
    print(f"import function_app    : median {app_median * 1000:7.1f} ms")
    print(f"overhead               : {(app_median / deps_median - 1) * 100:+.1f}%  (target <= +15%)")
    print(f"heavy modules imported : {loaded or 'none'}")


if __name__ == "__main__":
    main()
