// The dashboard's figures (bench/README.md): gzipped JS of the first page; navigation -> leaderboard and
// chart drawn, p50 over several loads, on a real local race fast-forwarded through UNTIL (default: all of
// 2024, 8,760 hourly marks per agent); and what an idle dashboard costs the API per minute.
// Run: bench/bench_web.py [UNTIL | none] (builds web/dist, prepares a race of 20 trading agents in BENCH_WEB_DB, then
// runs this in Chromium); node bench/bench_web.mjs alone races the local race's default agents.
import { readFileSync } from "node:fs";
import path from "node:path";
import { gzipSync } from "node:zlib";

import { launchBrowser, ROOT, startRace } from "../web/e2e/race.mjs";

const UNTIL = process.argv[2] ?? "2025-01-01";
const LOADS = 7;
const IDLE_S = Number(process.env.BENCH_IDLE_S ?? 120); // several 30 s long polls
const dist = path.join(ROOT, "web", "dist");

const html = readFileSync(path.join(dist, "index.html"), "utf8");
const scripts = [...html.matchAll(/(?:src|href)="\/(assets\/[^"]+\.js)"/g)].map((m) => m[1]);
const gz = scripts.reduce((sum, file) => sum + gzipSync(readFileSync(path.join(dist, file)), { level: 9 }).length, 0);
console.log(`first-page JS: ${scripts.length} file(s), ${(gz / 1024).toFixed(1)} KB gzipped (target < 150 KB)`);

const started = Date.now();
// --seconds-per-cycle huge: after the fast-forward the live race runs one cycle at once, then none for an
// hour, so once that one has landed the idle figure is "nothing changes".
const race = await startRace({
  fastForward: UNTIL === "none" ? null : UNTIL, // "none": BENCH_WEB_DB is fast-forwarded already
  secondsPerCycle: 3600,
  database: process.env.BENCH_WEB_DB ?? null,
  startupS: 900, // a year of 20 agents takes ~1-2 minutes on a busy 2-core machine
});
console.log(`race fast-forwarded to ${UNTIL} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
const raceVersion = async () => (await (await fetch(`${race.url}/api/race`)).json()).version;
const fastForwarded = await raceVersion();
for (const deadline = Date.now() + 60_000; Date.now() < deadline && (await raceVersion()) === fastForwarded; )
  await new Promise((resolve) => setTimeout(resolve, 500));
const browser = await launchBrowser();
try {
  const board = await (await fetch(`${race.url}/api/leaderboard`)).json();
  const agents = board.items.length;
  const status = await (await fetch(`${race.url}/api/race`)).json();
  const times = [];
  let apiCalls = [];
  for (let i = 0; i < LOADS; i++) {
    const context = await browser.newContext({ viewport: { width: 1366, height: 900 } });
    const page = await context.newPage();
    const calls = [];
    page.on("request", (r) => r.url().includes("/api/") && calls.push(new URL(r.url()).pathname));
    const t0 = Date.now();
    await page.goto(race.url + "/");
    await page.waitForSelector(`[data-testid=leaderboard] tbody tr:nth-child(${agents})`);
    await page.waitForFunction(
      (n) => {
        const chart = document.querySelector("[data-testid=equity-chart]");
        return chart?.getAttribute("data-series-count") === String(n) && Number(chart.getAttribute("data-points")) > 0 && chart.querySelector("canvas");
      },
      agents,
    );
    times.push(Date.now() - t0);
    if (i === LOADS - 1) apiCalls = calls;
    await context.close();
  }
  times.sort((a, b) => a - b);
  console.log(
    `navigation -> leaderboard + chart (${agents} agents, ${status.cycles} cycles): p50 ${times[Math.floor(LOADS / 2)]} ms, ` +
      `min ${times[0]} ms, max ${times.at(-1)} ms over ${LOADS} cold loads (target < 1,000 ms)`,
  );
  console.log(`API calls on load (${apiCalls.length}): ${[...new Set(apiCalls)].join(", ")}`);

  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(race.url + "/");
  await page.getByTestId("equity-chart").locator("canvas").waitFor();
  await page.waitForTimeout(2000);
  let requests = 0;
  let bytes = 0;
  let bodyBytes = 0;
  const pending = [];
  const seen = new Map(); // "GET /api/race 304" -> count
  page.on("requestfinished", (request) => {
    if (!request.url().includes("/api/")) return;
    requests += 1;
    pending.push(
      Promise.all([request.sizes(), request.response()]).then(([s, response]) => {
        bytes += s.requestHeadersSize + s.requestBodySize + s.responseHeadersSize + s.responseBodySize;
        bodyBytes += s.responseBodySize;
        const key = `${new URL(request.url()).pathname} ${response?.status() ?? "?"}`;
        seen.set(key, (seen.get(key) ?? 0) + 1);
      }),
    );
  });
  const idleFrom = await raceVersion();
  await page.waitForTimeout(IDLE_S * 1000);
  await Promise.all(pending);
  if ((await raceVersion()) !== idleFrom) console.log("(the race version moved during the idle window: not idle)");
  const perMinute = 60 / IDLE_S;
  console.log(
    `idle dashboard (${IDLE_S} s, no new cycle): ${(requests * perMinute).toFixed(1)} API requests/min, ` +
      `${((bytes * perMinute) / 1024).toFixed(2)} KB/min on the wire incl. headers, ` +
      `${((bodyBytes * perMinute) / 1024).toFixed(2)} KB/min of response bodies (target < 2 KB/min)`,
  );
  console.log(`idle requests: ${[...seen].map(([key, n]) => `${n} x ${key}`).join(", ") || "none"}`);
  await context.close();
} finally {
  await browser.close();
  await race.stop();
}
