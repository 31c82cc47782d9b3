// Starts a real local race (python -m shared.local_race) on a free loopback port, with its own SQLite file,
// fast-forwarded a few weeks and then one simulated hour every couple of seconds; and Debian's Chromium.
import { spawn } from "node:child_process";
import { mkdtempSync, openSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { chromium } from "playwright-core";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const SCREENSHOTS = path.join(ROOT, "build", "screenshots");

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

// `database`: a SQLite file to race in (e.g. prepared with more agents); default a fresh one in a temp folder.
export async function startRace({ fastForward = "2024-02-01", secondsPerCycle = 2, database = null, startupS = 120 } = {}) {
  const port = await freePort();
  const dir = mkdtempSync(path.join(tmpdir(), "race-e2e-"));
  const python = process.env.PYTHON ?? path.join(ROOT, ".venv", "bin", "python");
  const log = path.join(dir, "race.log");
  const out = openSync(log, "w");
  const child = spawn(
    python,
    [
      "-m",
      "shared.local_race",
      "--no-ml",
      ...(fastForward ? ["--fast-forward", fastForward] : []), // null: race on from where `database` stands
      "--seconds-per-cycle",
      String(secondsPerCycle),
    ],
    {
      cwd: ROOT,
      stdio: ["ignore", out, out],
      env: {
        ...process.env,
        ConnectionStrings__TradingDb: `sqlite:///${database ?? path.join(dir, "race.db")}`,
        Local__Port: String(port),
        Local__Host: "127.0.0.1",
      },
    },
  );
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + startupS * 1000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the race exited (${child.exitCode}); see ${log}`);
    try {
      const response = await fetch(`${url}/api/leaderboard`);
      const page = await fetch(`${url}/`);
      if (response.ok && page.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`the race did not start in ${startupS} s; see ${log}`);
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
  return {
    url,
    log,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.kill("SIGINT");
        setTimeout(() => child.kill("SIGKILL"), 10_000).unref();
      }),
  };
}

export function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-dev-shm-usage",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
    ],
  });
}
