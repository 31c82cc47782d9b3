"""ml_service: decision latency p50/p99 and throughput for 5 assets, cached (idempotent) replay latency, cold
start (process start -> /health/ready) and resident memory. Runs the real service with uvicorn on loopback.

    .venv/bin/python bench/bench_ml_service.py [--requests 300] [--device cpu] [--redis URL]

Uses Redis when `--redis` or TEST_REDIS_URL (set by scripts/with-services.sh, so `make bench`) is given, else the
in-memory store. Prints medians of repeated measurements; this is a noisy 2-core machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ml_service.data import load_all  # noqa: E402

KEY = "bench-ml-key-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def body(series: dict, end: int, count: int = 48) -> bytes:
    assets = []
    for symbol in ("BNB", "BTC", "ETH", "SOL", "XRP"):
        s = series[symbol]
        assets.append(
            {
                "symbol": symbol,
                "candles": [
                    {"open_time": t.isoformat(), "open": r[0], "high": r[1], "low": r[2], "close": r[3], "volume": r[4]}
                    for t, r in zip(s.open_times[end - count : end], s.rows[end - count : end], strict=True)
                ],
            }
        )
    request = {
        "agent_id": 1,
        "cycle_time": series["BTC"].open_times[end].isoformat(),
        "assets": assets,
        "portfolio": {"cash": 100000, "positions": {"ETH": 3.0}},
    }
    return json.dumps(request).encode()


def start(port: int, device: str, redis: str | None) -> tuple[subprocess.Popen[bytes], float]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "MlService__ApiKey": KEY, "MlService__Device": device}
    env.pop("Redis__ConnectionString", None)
    if redis:
        env["Redis__ConnectionString"] = redis
    command = [sys.executable, "-m", "uvicorn", "ml_service.app:create_app", "--factory", "--port", str(port)]
    command += ["--host", "127.0.0.1", "--log-level", "warning"]
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=REPO, env=env)
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=1).status_code == 200:
                return process, time.perf_counter() - started
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            raise SystemExit("ml_service exited during start")
        time.sleep(0.02)


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    process.wait(timeout=10)


def rss_mib(pid: int) -> tuple[float, float]:
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def timed_posts(client: httpx.Client, bodies: list[bytes], keys: list[str]) -> list[float]:
    latencies = []
    for payload, key in zip(bodies, keys, strict=True):
        t = time.perf_counter()
        response = client.post("/v1/decisions", content=payload, headers={"X-API-Key": KEY, "Idempotency-Key": key})
        latencies.append((time.perf_counter() - t) * 1000)
        assert response.status_code == 200, response.text
    return latencies


async def concurrent_throughput(base_url: str, bodies: list[bytes], concurrency: int) -> float:
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30) as client:
        semaphore = asyncio.Semaphore(concurrency)

        async def one(payload: bytes) -> None:
            async with semaphore:
                headers = {"X-API-Key": KEY, "Idempotency-Key": f"bench-{uuid.uuid4().hex}"}
                response = await client.post("/v1/decisions", content=payload, headers=headers)
                assert response.status_code == 200

        started = time.perf_counter()
        await asyncio.gather(*(one(b) for b in bodies))
        return len(bodies) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--device", default="cpu", help="cpu, cuda, auto (MlService__Device)")
    parser.add_argument("--redis", default=os.environ.get("TEST_REDIS_URL"))
    parser.add_argument("--cold-starts", type=int, default=3)
    args = parser.parse_args()

    series = load_all()
    bodies = [body(series, 1000 + i) for i in range(args.requests)]
    print(
        f"ml_service bench: 5 assets x 48 candles ({len(bodies[0]) / 1024:.0f} KiB a request), device {args.device}, "
        f"idempotency store {'Redis' if args.redis else 'memory'}, {os.cpu_count()} CPUs"
    )

    colds = []
    for _ in range(args.cold_starts):
        process, seconds = start(free_port(), args.device, args.redis)
        colds.append(seconds)
        stop(process)
    print(
        f"cold start (process start -> /health/ready 200): median {statistics.median(colds):.2f} s "
        f"(runs: {', '.join(f'{c:.2f}' for c in colds)})"
    )

    port = free_port()
    process, _ = start(port, args.device, args.redis)
    base_url = f"http://127.0.0.1:{port}"
    try:
        idle_rss, _ = rss_mib(process.pid)
        with httpx.Client(base_url=base_url, timeout=30) as client:
            timed_posts(client, bodies[:20], [f"warm-{uuid.uuid4().hex}" for _ in range(20)])
            fresh_keys = [f"bench-{uuid.uuid4().hex}" for _ in bodies]
            started = time.perf_counter()
            fresh = timed_posts(client, bodies, fresh_keys)
            sequential_rps = len(bodies) / (time.perf_counter() - started)
            replay = timed_posts(client, [bodies[0]] * len(bodies), [fresh_keys[0]] * len(bodies))
            metrics = client.get("/metrics").text
        concurrent_rps = asyncio.run(concurrent_throughput(base_url, bodies, concurrency=8))
        rss, peak = rss_mib(process.pid)
    finally:
        stop(process)

    inference = {
        line.split()[0]: float(line.split()[1])
        for line in metrics.splitlines()
        if line.startswith("ml_inference_duration_seconds_")
    }
    mean_inference_ms = (
        inference["ml_inference_duration_seconds_sum"] / inference["ml_inference_duration_seconds_count"] * 1000
    )
    print(
        f"decision (new key, computed):   p50 {pct(fresh, 0.5):.2f} ms   p99 {pct(fresh, 0.99):.2f} ms   "
        f"({len(fresh)} requests, one client, keep-alive)"
    )
    print(f"  of which features + forward pass (server side, mean): {mean_inference_ms:.2f} ms")
    print(f"cached replay (same key):       p50 {pct(replay, 0.5):.2f} ms   p99 {pct(replay, 0.99):.2f} ms")
    print(f"throughput: {sequential_rps:.0f} decisions/s sequential, {concurrent_rps:.0f} decisions/s with 8 in flight")
    print(f"resident memory: {idle_rss:.0f} MiB after start, {rss:.0f} MiB after the run (peak {peak:.0f} MiB)")


if __name__ == "__main__":
    main()
