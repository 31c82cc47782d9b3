// End to end: the built dashboard against a real running race, in headless Chromium. Screenshots of every
// page go to build/screenshots/ (CI keeps them as artifacts).
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";

import { launchBrowser, SCREENSHOTS, startRace } from "./race.mjs";

let race;
let browser;
let page;

before(async () => {
  mkdirSync(SCREENSHOTS, { recursive: true });
  race = await startRace();
  browser = await launchBrowser();
  page = await browser.newPage({ viewport: { width: 1366, height: 900 } });
});

after(async () => {
  await browser?.close();
  await race?.stop();
});

const shot = (name, target = page) => target.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: true });

async function leaderboard() {
  return (await fetch(`${race.url}/api/leaderboard`)).json();
}

test("the race page lists every seeded agent and draws one series per agent", async () => {
  const board = await leaderboard();
  await page.goto(race.url + "/");
  await page.getByTestId("leaderboard").waitFor();
  await page.waitForSelector(`[data-testid=equity-chart][data-series-count="${board.items.length}"] canvas`);
  const names = await page.locator("[data-testid=leaderboard] tbody tr .agent-link").allTextContents();
  assert.deepEqual([...names].sort(), board.items.map((r) => r.name).sort());
  assert.ok(board.items.length >= 8, "the seeded agents: five baselines, the ML agent, two Groq agents");
  // uPlot's legend: one row per series plus the time axis.
  const legendRows = await page.locator("[data-testid=equity-chart] .u-legend .u-series").count();
  assert.equal(legendRows, board.items.length + 1);
  const points = Number(await page.getByTestId("equity-chart").getAttribute("data-points"));
  assert.ok(points > 100, `the chart has the fast-forwarded marks (${points})`);
  await page.waitForTimeout(300);
  await shot("race-desktop");
});

test("a new cycle shows up without a reload", async () => {
  const clock = page.getByTestId("race-clock");
  const before = await clock.textContent();
  await page.waitForFunction(
    (previous) => document.querySelector("[data-testid=race-clock]")?.textContent !== previous,
    before,
    { timeout: 20_000 },
  );
  assert.notEqual(await clock.textContent(), before);
  const { cycles } = await (await fetch(`${race.url}/api/race`)).json();
  const shown = Number((await page.getByTestId("cycle-count").textContent()).replace(/,/g, ""));
  assert.ok(Math.abs(cycles - shown) <= 1, `cycle count shown ${shown}, API ${cycles}`);
});

test("sorting the leaderboard by a column reorders it", async () => {
  await page.getByRole("button", { name: /^Trades/ }).click();
  const headers = await page.locator("[data-testid=leaderboard] thead th").allTextContents();
  const column = headers.findIndex((h) => h.startsWith("Trades")) + 1; // by its header, not its position
  assert.ok(column > 0, headers.join(" | "));
  const cells = page.locator(`[data-testid=leaderboard] tbody tr td:nth-child(${column})`);
  const trades = (await cells.allTextContents()).map((t) => Number(t.replace(/,/g, "")));
  assert.deepEqual(trades, [...trades].sort((a, b) => b - a));
});

test("clicking an agent opens its decisions with reasoning", async () => {
  await page.goto(race.url + "/");
  await page.locator("[data-testid=leaderboard] .agent-link", { hasText: "Momentum" }).first().click();
  await page.waitForURL(/\/agents\/\d+$/);
  await page.getByTestId("decision-log").waitFor();
  const reasoning = await page.getByTestId("reasoning").first().textContent();
  assert.ok(reasoning && reasoning.trim().length > 10, `reasoning shown: ${reasoning}`);
  await page.getByTestId("agent-equity-chart").locator("canvas").waitFor();
  await shot("agent-desktop");
});

test("an unknown agent id shows the not-found page", async () => {
  await page.goto(race.url + "/agents/999999");
  await page.getByTestId("not-found").waitFor();
});

test("the market and health pages render from the API", async () => {
  await page.goto(race.url + "/market");
  await page.getByTestId("prices").waitFor();
  await page.getByTestId("candle-chart").locator("canvas").waitFor();
  await shot("market-desktop");
  await page.goto(race.url + "/health");
  await page.getByTestId("health-checks").waitFor();
  await shot("health-desktop");
});

test("a phone-width viewport has no horizontal scroll", async () => {
  const phone = await browser.newPage({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  try {
    for (const [name, route, ready] of [
      ["race-phone", "/", "equity-chart"],
      ["agent-phone", "/agents/2", "decision-log"],
      ["market-phone", "/market", "candle-chart"],
    ]) {
      await phone.goto(race.url + route);
      await phone.getByTestId(ready).waitFor();
      await phone.waitForTimeout(300);
      const { scroll, client } = await phone.evaluate(() => ({
        scroll: document.documentElement.scrollWidth,
        client: document.documentElement.clientWidth,
      }));
      assert.ok(scroll <= client, `${route}: page is ${scroll}px wide in a ${client}px viewport`);
      await shot(name, phone);
    }
  } finally {
    await phone.close();
  }
});

test("the checked-in API types match the document the race serves", async () => {
  const { default: openapiTS, astToString } = await import("openapi-typescript");
  const { readFileSync } = await import("node:fs");
  const served = await (await fetch(`${race.url}/api/openapi.json`)).json();
  const generated = astToString(await openapiTS(served));
  const checkedIn = readFileSync(new URL("../src/api/schema.d.ts", import.meta.url), "utf8");
  const body = (text) => text.slice(text.indexOf("export "));
  assert.equal(body(checkedIn), body(generated), "src/api/schema.d.ts is stale: run `npm run gen:api` in web/");
});

test("the API going down shows the banner and keeps the last data", async () => {
  await page.goto(race.url + "/");
  await page.getByTestId("leaderboard").waitFor();
  await race.stop();
  await page.getByTestId("api-error-banner").waitFor({ timeout: 30_000 });
  assert.ok((await page.locator("[data-testid=leaderboard] tbody tr").count()) > 0, "the last leaderboard stays");
  assert.equal(await page.getByTestId("live-indicator").textContent(), "Offline");
  await shot("race-api-down");
});
