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
# The timers never serve HTTP, so even FastAPI waits for the first HTTP request (shared/api/lazy.py).
FORBIDDEN = (
    "fastapi",
    "pydantic",
    "torch",
    "alembic",
    "azure.identity",
    "azure.keyvault",
    "azure.monitor",
    "opentelemetry.sdk",
    "numpy",
    "pandas",
    "scipy",
    "arch",  # the race statistics' bootstrap: imported when the equity timer computes them, never at import
)
OWN = ("shared", "function_app", "bench")

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


def third_party_loaded_by(modules: set[str]) -> str:
    """An import statement for exactly the third-party top-level packages a run loaded (azure.* by subpackage)."""
    names = set()
    for name in modules:
        top = name.split(".")[0]
        if top in sys.stdlib_module_names or top in OWN or top.startswith("_"):
            continue
        names.add(".".join(name.split(".")[:2]) if top == "azure" else top)
    names.discard("azure")
    return "import " + ", ".join(sorted(names))


def main() -> None:
    _, modules = measure("import function_app")
    exact_deps = third_party_loaded_by(modules)
    deps: list[float] = []
    exact: list[float] = []
    app: list[float] = []
    for _ in range(RUNS):  # interleaved so machine noise hits all alike
        deps.append(measure(THIRD_PARTY)[0])
        exact.append(measure(exact_deps)[0])
        app.append(measure("import function_app")[0])
    deps_median, exact_median, app_median = (statistics.median(x) for x in (deps, exact, app))
    loaded = sorted(m for m in FORBIDDEN if any(x == m or x.startswith(m + ".") for x in modules))
    print(f"the stack's deps ({THIRD_PARTY[7:]}): median {deps_median * 1000:7.1f} ms  (runs: {RUNS})")
    print(f"the deps function_app loads at import   : median {exact_median * 1000:7.1f} ms")
    print(f"import function_app                     : median {app_median * 1000:7.1f} ms")
    print(f"overhead vs the stack's deps            : {(app_median / deps_median - 1) * 100:+.1f}%  (target <= +15%)")
    print(f"overhead vs the deps it loads           : {(app_median / exact_median - 1) * 100:+.1f}%  (own code)")
    print(f"heavy modules imported                  : {loaded or 'none'}")


if __name__ == "__main__":
    main()
