// End to end: the statistics computed by a real race (fast-forwarded a month, then live) on the dashboard, at
// desktop and phone sizes. Screenshots go to build/screenshots/.
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";

import { launchBrowser, SCREENSHOTS, startRace } from "./race.mjs";

const VIEWPORTS = { desktop: { width: 1366, height: 900 }, phone: { width: 390, height: 844 } };

let race;
let browser;

before(async () => {
  mkdirSync(SCREENSHOTS, { recursive: true });
  race = await startRace({ secondsPerCycle: 5 });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await race?.stop();
});

const json = async (route) => (await fetch(`${race.url}/api${route}`)).json();

test("the leaderboard shows each agent's headline figures and its verdict against buy-and-hold", async () => {
  const board = await json("/leaderboard");
  assert.ok(board.statistics.computed_for, "the fast-forward computed the statistics at its end");
  const momentum = board.items.find((r) => r.name === "Momentum 24h");
  assert.equal(typeof momentum.sharpe, "number");
  assert.equal(momentum.excess_over_buy_and_hold.control_name, "Buy & Hold BTC");

  for (const [name, viewport] of Object.entries(VIEWPORTS)) {
    const page = await browser.newPage({ viewport });
    await page.goto(race.url + "/");
    await page.getByTestId("leaderboard").waitFor();
    const row = page.locator("[data-testid=leaderboard] tbody tr", { hasText: "Momentum 24h" });
    const excess = await row.getByTestId("excess").textContent();
    assert.match(excess, /pp (≈ not significant|▲ beats it \(95%\)|▼ trails it \(95%\))95%: .+ to .+ pp/);
    assert.match(await page.getByTestId("statistics-note").textContent(), /Statistics as of/);
    await page.getByTestId("leaderboard").scrollIntoViewIfNeeded();
    await page.screenshot({ path: path.join(SCREENSHOTS, `statistics-leaderboard-${name}.png`), fullPage: true });
    await page.close();
  }
});

test("the agent page shows the statistics panel with the controls and the calibration table", async () => {
  const board = await json("/leaderboard");
  const agent = board.items.find((r) => r.name === "Momentum 24h");
  const stats = await json(`/agents/${agent.agent_id}/stats`);
  assert.equal(stats.statistics.versus_controls.length, 4);

  for (const [name, viewport] of Object.entries(VIEWPORTS)) {
    const page = await browser.newPage({ viewport });
    await page.goto(`${race.url}/agents/${agent.agent_id}`);
    const panel = page.getByTestId("statistics");
    await panel.waitFor();
    for (const group of ["Performance", "Trades", "Cost of thinking", "Discipline", "Calibration"])
      assert.ok(await panel.getByRole("group", { name: group }).isVisible(), group);
    const controls = await page.locator("[data-testid=versus-controls] tbody tr").allTextContents();
    assert.deepEqual(
      controls.map((text) => text.split(/[+−]/)[0]).sort(),
      ["Always Hold", "Buy & Hold BTC", "Equal-Weight Buy & Hold", "Random Trader"],
    );
    // Nothing wider than the screen: the tables scroll inside their cards, the page itself does not.
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `the page is ${overflow}px wider than the ${name} screen`);
    await panel.scrollIntoViewIfNeeded();
    await page.screenshot({ path: path.join(SCREENSHOTS, `statistics-agent-${name}.png`), fullPage: true });
    await panel.screenshot({ path: path.join(SCREENSHOTS, `statistics-panel-${name}.png`) });
    await page.close();
  }
});
